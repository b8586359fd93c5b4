"""How a YAML mapping becomes a config dataclass, every problem collected on the way.

The dataclass's fields are the keys the mapping may hold (:mod:`bridge.config.keys`);
any other key is a problem. An absent or null key gives the field's default. A value is
read by the reader of the field's type (``int``: a whole number >= 1, ``float``: a
duration, ``bool``, ``str``, a secret, a list of secrets or of strings, a nested section)
unless the caller gives a reader of its own for that field, for a check the type cannot
say. A reader records what is wrong, with the key's path, and returns None.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import Field, fields, is_dataclass
from functools import cache, partial
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from bridge.config.keys import default, has_default, known_keys, yaml_fields
from bridge.config.model import parse_duration
from bridge.config.secrets import Secret, resolve_secret
from bridge.text import printable

ReadField = Callable[[Any, str], Any]  # (YAML value, its key path) -> the field's value
T = TypeVar("T")
MAX_KEY = 100  # characters of a key shown in a problem


@cache
def _type_hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)  # evaluates every annotation: slow enough to keep


def join(path: str, key: Any) -> str:
    """The path of ``key`` inside the mapping at ``path`` (``""``: the top level), the
    key escaped and cut (:func:`~bridge.text.printable`): a problem goes to a terminal."""
    shown = printable(str(key), MAX_KEY)
    return f"{path}.{shown}" if path else shown


class SectionReader:
    """Reads YAML into config dataclasses; ``problems`` and ``warnings`` collect what it
    finds, and ``env`` is where ``{env: NAME}`` secrets are looked up."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.env = environ
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def fields_of(
        self,
        cls: type,
        spec: Mapping[str, Any],
        path: str,
        readers: Mapping[str, ReadField] | None = None,
        also: Iterable[str] = (),
    ) -> dict[str, Any]:
        """The keyword arguments for ``cls`` that the mapping ``spec`` at ``path`` gives.

        A field is read by ``readers[its name]``, else by the reader of its type. An
        absent key gives the field's default; for a field without one, a problem, or what
        its reader in ``readers`` makes of None. A field whose value could not be read is
        left out (or takes its default). A key that is no field's, nor one of ``also``
        (which the caller reads itself), is a problem.
        """
        readers = readers or {}
        known = known_keys(cls)
        self.unknown(spec, [*known, *also], path)
        hints = _type_hints(cls)
        values: dict[str, Any] = {}
        for key, f in yaml_fields(cls).items():
            where = join(path, key)
            outer, _, inner = key.partition(".")
            value = spec.get(outer)
            if inner:  # a key one mapping down, such as admin.tokens
                if inner == known[outer][0]:  # the first key of that mapping: check it once
                    under = join(path, outer)
                    self.unknown(self.mapping(value, under), known[outer], under)
                value = value.get(inner) if isinstance(value, Mapping) else None
            if value is None and has_default(f):
                values[f.name] = default(f)
                continue
            if value is None and ("required" in f.metadata or f.name not in readers):
                hint = f.metadata.get("required")
                self.problems.append(f"{where}: is required" + (f" ({hint})" if hint else ""))
                continue
            got = (readers.get(f.name) or self.reader(f, hints[f.name]))(value, where)
            if got is not None:
                values[f.name] = got
            elif has_default(f):
                values[f.name] = default(f)
        return values

    def reader(self, f: Field[Any], hint: Any) -> ReadField:
        """How to read field ``f`` of type ``hint`` (``X | None`` as ``X``: null is absent)."""
        if get_origin(hint) is types.UnionType:
            (hint,) = (a for a in get_args(hint) if a is not type(None))
        by_type: dict[Any, ReadField] = {
            bool: self.boolean,
            int: self.whole_number,
            float: self.duration,  # every float in the config is a time
            str: partial(self.string, choices=f.metadata.get("choices", ())),
            Secret: self.secret,
            tuple[Secret, ...]: self.secrets,
            tuple[str, ...]: partial(self.globs, strings_only=True),
        }
        if hint in by_type:
            return by_type[hint]
        if isinstance(hint, type) and is_dataclass(hint):  # a section such as delivery
            return partial(self.section, hint)
        raise TypeError(f"the config loader has no reader for {f.name!r} of type {hint}")

    def section(self, cls: type[T], raw: Any, path: str) -> T | None:
        """The section ``cls`` at ``path`` (None, with the problems, if it lacks a field)."""
        return self.build(cls, self.fields_of(cls, self.mapping(raw, path), path))

    def build(self, cls: type[T], values: Mapping[str, Any]) -> T | None:
        """``cls(**values)``, or None when a field without a default has no value (its
        problem is already recorded)."""
        if any(f.name not in values and not has_default(f) for f in fields(cls)):  # type: ignore[arg-type]
            return None
        return cls(**values)

    # -- readers of one value ----------------------------------------------------------

    def mapping(self, raw: Any, path: str) -> Mapping[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.problems.append(f"{path or '(top level)'}: must be a mapping")
            return {}
        return raw

    def unknown(self, raw: Mapping[str, Any], known: Iterable[str], path: str) -> None:
        known = sorted(known)
        for key in raw:
            if key not in known:
                self.problems.append(f"{join(path, key)}: unknown key (known: {', '.join(known)})")

    def base_url(self, raw: Any, path: str, *, such_as: str) -> str | None:
        """The http(s) URL of an API, without credentials (the URL is shown, it is no
        secret), its trailing ``/`` dropped."""
        if not isinstance(raw, str) or not re.match(r"https?://[^/@\s]+(/\S*)?\Z", raw):
            self.problems.append(
                f"{path}: must be an http(s) URL without credentials, such as {such_as}"
            )
            return None
        return raw.rstrip("/")

    def whole_number(self, raw: Any, path: str) -> int | None:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            self.problems.append(f"{path}: must be a whole number >= 1")
            return None
        return raw

    def duration(self, raw: Any, path: str) -> float | None:
        value = parse_duration(raw)
        if value is None:
            self.problems.append(f"{path}: must be a duration such as 30s, 10m, 24h or 0")
        return value

    def boolean(self, raw: Any, path: str) -> bool | None:
        if not isinstance(raw, bool):
            self.problems.append(f"{path}: must be true or false")
            return None
        return raw

    def string(self, raw: Any, path: str, choices: tuple[str, ...] = ()) -> str | None:
        """A non-empty string, or one of ``choices`` in any case."""
        for choice in choices:
            if str(raw).casefold() == choice.casefold():
                return choice
        if choices:
            self.problems.append(f"{path}: must be {', '.join(choices[:-1])} or {choices[-1]}")
            return None
        if not isinstance(raw, str) or not raw:
            self.problems.append(f"{path}: must be a non-empty string")
            return None
        return raw

    def secret(self, raw: Any, path: str) -> Secret | None:
        return resolve_secret(raw, path, self.env, self.problems, self.warnings)

    def secrets(self, raw: Any, path: str) -> tuple[Secret, ...]:
        items = raw if isinstance(raw, list) else [raw]
        found = (self.secret(item, f"{path}[{i}]") for i, item in enumerate(items))
        return tuple(s for s in found if s is not None)

    def globs(self, raw: Any, path: str, *, strings_only: bool = False) -> tuple[str, ...]:
        """A string or a list of them (numbers too, unless ``strings_only``)."""
        items = raw if isinstance(raw, list) else [raw]
        # bool is an int to Python, but `true` is never a glob anyone meant
        allowed = (str,) if strings_only else (str, int, float)
        if not items or not all(isinstance(x, allowed) and not isinstance(x, bool) for x in items):
            self.problems.append(f"{path}: must be a string or a list of strings")
            return ()
        return tuple(str(x) for x in items)
