"""The step summary (Markdown): what was fetched, or why not.

Names, aliases, paths and messages may come from the event or from W&B, so every value
goes through :func:`text`, which makes it plain text to a Markdown renderer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from action.artifact import Artifact
from action.progress import human_bytes

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_LINE_BREAKS = re.compile(r"\r\n?|\n|[\u2028\u2029\x85]")


@dataclass(frozen=True)
class Result:
    """What a finished run did, for the summary."""

    artifact: Artifact
    path: str
    files: int
    total_bytes: int
    fetched_files: int
    fetched_bytes: int
    skipped_refs: tuple[str, ...]
    event_type: str
    event_author: str
    seconds: float


def text(value: str) -> str:
    """``value`` as literal text in Markdown, also inside a table cell: line breaks become
    spaces and every ASCII punctuation character is backslash-escaped, so no link, image,
    HTML tag, entity, emphasis, code span or cell border can form."""
    return _PUNCTUATION.sub(r"\\\1", _LINE_BREAKS.sub(" ", value))


def success(result: Result) -> str:
    a = result.artifact
    aliases = f" (aliases: {', '.join(a.aliases)})" if a.aliases else ""
    author = f" by {result.event_author}" if result.event_author else ""
    rate = result.fetched_bytes / result.seconds if result.seconds > 0 else 0.0
    rows = [
        ("version", a.version + aliases),
        ("type", a.type or "-"),
        ("event", (result.event_type or "-") + author),
        (
            "files",
            f"{result.files} ({result.fetched_files} downloaded, "
            f"{result.files - result.fetched_files} already present)",
        ),
        (
            "size",
            f"{human_bytes(result.total_bytes)} ({human_bytes(result.fetched_bytes)} downloaded)",
        ),
        ("path", result.path),
        ("time", f"{result.seconds:.1f} s ({human_bytes(rate)}/s)"),
    ]
    if result.skipped_refs:
        rows.append(("skipped references", str(len(result.skipped_refs))))
    lines = [f"### W&B artifact {text(a.name)}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {text(v)} |" for k, v in rows]
    return "\n".join(lines) + "\n\n"


def skipped(reason: str) -> str:
    return f"### W&B artifact: skipped\n\n{text(reason)}\n\n"


def failure(title: str, message: str) -> str:
    return f"### W&B artifact: failed\n\n**{text(title)}**: {text(message)}\n\n"
