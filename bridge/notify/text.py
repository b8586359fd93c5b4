"""Text from W&B and GitHub made inert for each receiver, and cut to its limits.

Author names, model, workflow and repository names, conclusions and error messages come
from other people: none of them may format, link or mention anything in a message. Each
receiver gets its own escape:

- Slack: ``&``, ``<`` and ``>`` become ``&amp;``, ``&lt;`` and ``&gt;``, as Slack asks of
  every text object; without a ``<`` no link, mention (``<!channel>``) or date forms. The
  values go in ``plain_text`` objects, which Slack never formats (``*bold*`` stays as
  typed: mrkdwn has no escape for it).
- Teams: an Adaptive Card's text is a CommonMark subset, where a backslash before any
  ASCII punctuation character shows that character as typed; so every one gets one, and
  no link, emphasis, list or ``{{DATE()}}`` function forms.
- a webhook: JSON is data, not markup; only bounded.

A value is cut *after* escaping, to the receiver's limit, and never through an escape
(``&am`` or a lone backslash would break what follows): each character's escape is kept
whole or dropped whole, and a cut value ends with an ellipsis. Control characters,
line breaks and other invisible characters (a right-to-left override, a lone surrogate)
become a space first: a fact is one line.
"""

from __future__ import annotations

import string
from collections.abc import Callable

ELLIPSIS = "…"
_SLACK = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_PUNCTUATION = frozenset(string.punctuation)  # the ASCII punctuation CommonMark escapes


def visible(c: str) -> str:
    """``c``, or a space when it is a control, separator or other invisible character."""
    return c if c.isprintable() else " "


def cut(pieces: list[str], limit: int) -> str:
    """The pieces joined, or as many whole pieces as fit in ``limit`` with an ellipsis."""
    if sum(map(len, pieces)) <= limit:
        return "".join(pieces)
    kept: list[str] = []
    size = len(ELLIPSIS)
    for piece in pieces:
        if size + len(piece) > limit:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + ELLIPSIS


def _fit(text: str, limit: int, escape: Callable[[str], str]) -> str:
    return cut([escape(visible(c)) for c in text], limit)


def slack(text: str, limit: int) -> str:
    """``text`` on one line, Slack's three control characters escaped, at most ``limit``."""
    return _fit(text, limit, lambda c: _SLACK.get(c, c))


def teams(text: str, limit: int) -> str:
    """``text`` on one line, every ASCII punctuation character backslash-escaped (Adaptive
    Card markdown), at most ``limit`` characters."""
    return _fit(text, limit, lambda c: "\\" + c if c in _PUNCTUATION else c)


def plain(text: str, limit: int) -> str:
    """``text`` on one line, unescaped, at most ``limit`` characters (a summary, a log)."""
    return _fit(text, limit, str)


def data(text: str, limit: int) -> str:
    """``text`` as JSON data: line breaks kept, a lone surrogate (which no UTF-8 body can
    carry) replaced, at most ``limit`` characters."""
    return cut(["\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text], limit)
