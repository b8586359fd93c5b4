"""Text from elsewhere made safe to show: one line, printable, and of bounded length.

Every part of the bridge that puts another server's or a request's text into a log line,
an error or a terminal uses :func:`printable`; it sits here, on the ground floor, so
intake, delivery, the W&B client and the CLI can all look down at it.
"""

from __future__ import annotations


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with control and other non-printable characters as ``\\xNN`` escapes,
    cut to ``limit`` characters (never through an escape) with the count of the rest.

    Wrap text from another server (GitHub's message, a workflow's name) in it when it
    goes into a log line, with a limit: a terminal shows it as typed, and a long answer
    cannot bury the line."""
    if text.isprintable() and (limit is None or len(text) <= limit):
        return text
    out: list[str] = []
    size = 0
    for i, c in enumerate(text):
        piece = c if c.isprintable() else repr(c)[1:-1]
        if limit is not None and size + len(piece) > limit:
            return "".join(out) + f"... ({len(text) - i} more characters)"
        out.append(piece)
        size += len(piece)
    return "".join(out)
