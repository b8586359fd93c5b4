"""Render W&B-style ``${name}`` templates against the fields of a webhook.

A string that is exactly ``${name}`` takes the field's JSON value; any other string is
interpolated; a missing field renders empty, as W&B renders it. No expressions, no code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bridge.routing.limits import json_text

_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_PLACEHOLDER = re.compile(r"\$\{(" + _NAME + r")\}")
_WHOLE = re.compile(r"^\$\{(" + _NAME + r")\}$")
_OPEN = re.compile(r"\$\{([^}]*)\}?")


def lookup(fields: Mapping[str, Any], name: str) -> Any:
    """A field by exact name, else by dotted path into nested objects; None if absent."""
    if name in fields:
        return fields[name]
    node: Any = fields
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def as_text(value: Any) -> str:
    """A field's value as text: a string as is, None as empty, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json_text(value)


def render(template: Any, fields: Mapping[str, Any]) -> Any:
    """Render ``template`` (a string, or lists/mappings of them) against ``fields``."""
    if isinstance(template, str):
        whole = _WHOLE.match(template)
        if whole:
            value = lookup(fields, whole.group(1))
            return "" if value is None else value
        return _PLACEHOLDER.sub(lambda m: as_text(lookup(fields, m.group(1))), template)
    if isinstance(template, Mapping):
        return {str(k): render(v, fields) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, fields) for v in template]
    return template


def variables(template: Any) -> set[str]:
    """The variable names ``template`` refers to."""
    if isinstance(template, str):
        return set(_PLACEHOLDER.findall(template))
    if isinstance(template, Mapping):
        return {v for value in template.values() for v in variables(value)}
    if isinstance(template, list):
        return {v for value in template for v in variables(value)}
    return set()


def template_problems(template: Any) -> list[str]:
    """Malformed placeholders in ``template``, as messages (empty when it is fine)."""
    if isinstance(template, str):
        return [
            f"{m.group(0)!r} is not a valid placeholder; write ${{name}} with a W&B "
            "variable name such as ${artifact_version_string}"
            for m in _OPEN.finditer(template)
            if not _PLACEHOLDER.fullmatch(m.group(0))
        ]
    if isinstance(template, Mapping):
        return [p for v in template.values() for p in template_problems(v)]
    if isinstance(template, list):
        return [p for v in template for p in template_problems(v)]
    return []
