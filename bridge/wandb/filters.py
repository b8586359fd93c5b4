"""A route's ``when:`` globs as W&B's event filter, and any W&B filter back in words.

W&B filters artifact events on ``alias`` and ``tag`` with MongoDB-like operators, in the
shape its web app expects: ``{"$or": [{"$and": [<condition>, ...]}]}``. One name is
``$eq``, several are ``$in``, and globs become one anchored ``$regex``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

FILTERABLE = ("alias", "tag")  # the event fields W&B's filters know
_GLOB = re.compile(r"[*?[]")
_SPECIAL = frozenset(".^$*+?{}[]\\|()")  # escaped in a regex (RE2 and PCRE alike)


def is_glob(text: str) -> bool:
    return bool(_GLOB.search(text))


def glob_regex(glob: str) -> str | None:
    """``prod-*`` -> ``prod-.*``: ``*``, ``?`` and ``[...]`` as regex, the rest escaped;
    None for a pattern W&B's regex could read differently (an unclosed ``[``)."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = glob.find("]", i + 2)
            if end < 0:
                return None
            body = glob[i + 1 : end]
            negate = body.startswith("!")
            body = (body[1:] if negate else body).replace("\\", "\\\\")
            if body.startswith("^"):  # a literal caret in a glob, a negation in a regex
                body = "\\" + body
            out.append("[" + ("^" if negate else "") + body + "]")
            i = end
        else:
            out.append("\\" + c if c in _SPECIAL else c)
        i += 1
    return "".join(out)


def condition(field: str, globs: Sequence[str]) -> dict[str, Any] | None:
    """The condition "``field`` matches one of ``globs``"; None if one cannot be said."""
    if not any(is_glob(g) for g in globs):
        values = sorted(set(globs))
        return {field: {"$eq": values[0]}} if len(values) == 1 else {field: {"$in": values}}
    parts = [glob_regex(g) for g in globs]
    if any(p is None for p in parts):
        return None
    alternatives = sorted(set(str(p) for p in parts))
    body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
    return {field: {"$regex": f"^{body}$"}}


def event_filter(conditions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The filter W&B stores: every condition must hold (none: every event)."""
    return {"$or": [{"$and": list(conditions)}]}


_OPS = {
    "$eq": "is",
    "$ne": "is not",
    "$in": "is one of",
    "$nin": "is none of",
    "$regex": "matches",
    "$contains": "contains",
    "$gt": ">",
    "$gte": ">=",
    "$lt": "<",
    "$lte": "<=",
}


def words(value: Any) -> str:
    """A filter for people: ``alias is production and tag matches ^x.*$``; ``any`` when
    empty; W&B's JSON, compact, for what it does not know how to say."""
    text = _words(value)
    return text or "any"


def when(value: Any) -> str:
    """``, when <words>`` for a filter, or nothing for one that lets every event through."""
    text = _words(value)
    return f", when {text}" if text else ""


def _words(value: Any) -> str:
    if isinstance(value, Mapping) and len(value) == 1:
        ((key, inner),) = value.items()
        if key in ("$or", "$and") and isinstance(inner, list):
            parts = [p for p in (_words(v) for v in inner) if p]
            joined = f" {key[1:]} ".join(parts)
            return f"({joined})" if len(parts) > 1 and key == "$or" else joined
        if not key.startswith("$") and isinstance(inner, Mapping) and len(inner) == 1:
            ((op, operand),) = inner.items()
            if op in _OPS:
                shown = ", ".join(map(str, operand)) if isinstance(operand, list) else operand
                return f"{key} {_OPS[op]} {shown}"
    if value in (None, {}, []):
        return ""
    return json.dumps(value, separators=(",", ":"))
