"""Which YAML key sets each field of a config dataclass, and what the field is when absent.

A field is set by the key of its name unless its ``metadata["key"]`` names another one:
``"id"``, or ``"admin.tokens"`` for a key one mapping down, or ``None`` for a field the
loader derives from other keys rather than reads.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, fields
from typing import Any


def yaml_fields(cls: type) -> dict[str, Field[Any]]:
    """``cls``'s fields that YAML sets, by the key that sets each, in declaration order."""
    out = {}
    for f in fields(cls):
        key = f.metadata.get("key", f.name)
        if key is not None:
            out[key] = f
    return out


def known_keys(cls: type) -> dict[str, list[str]]:
    """The keys a mapping of ``cls`` may hold, each with the keys allowed under it
    (empty for a key that takes a value itself)."""
    out: dict[str, list[str]] = {}
    for key in yaml_fields(cls):
        outer, _, inner = key.partition(".")
        out.setdefault(outer, [])
        if inner:
            out[outer].append(inner)
    return out


def has_default(f: Field[Any]) -> bool:
    return f.default is not MISSING or f.default_factory is not MISSING


def default(f: Field[Any]) -> Any:
    """The value ``f`` takes when its key is absent (a fresh one from a factory)."""
    if f.default_factory is not MISSING:
        return f.default_factory()
    if f.default is MISSING:
        raise ValueError(f"field {f.name} has no default")
    return f.default
