"""Secret values: a plain string, ``{env: NAME}`` or ``{file: PATH}``.

A :class:`Secret` never shows its value in ``repr``/``str``, so it cannot leak into a log
line or an error message by accident; code that needs the value asks for ``.value``.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Secret:
    """A resolved secret and where it came from (``env:NAME``, ``file:PATH``, ``inline``)."""

    value: str = field(repr=False)
    origin: str = "inline"

    def __str__(self) -> str:
        return f"<secret from {self.origin}>"

    def matches(self, candidate: bytes) -> bool:
        """Constant-time comparison with ``candidate`` (raw bytes as received)."""
        return hmac.compare_digest(self.value.encode("utf-8"), candidate)


def resolve_secret(
    raw: Any, path: str, environ: Mapping[str, str], problems: list[str], warnings: list[str]
) -> Secret | None:
    """Resolve one secret value, appending problems (with ``path``) instead of raising."""
    if isinstance(raw, str):
        if not raw:
            problems.append(f"{path}: is empty; give a secret value")
            return None
        warnings.append(
            f"{path}: is a plain string in the config file; prefer {{env: NAME}} or {{file: PATH}}"
        )
        return Secret(raw, "inline")
    if isinstance(raw, Mapping) and len(raw) == 1:
        ((kind, name),) = raw.items()
        if kind == "env" and isinstance(name, str) and name:
            value = environ.get(name)
            if not value:
                problems.append(f"{path}: environment variable {name} is not set or empty")
                return None
            return Secret(value, f"env:{name}")
        if kind == "file" and isinstance(name, str) and name:
            try:
                value = Path(name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append(f"{path}: cannot read secret file {name}: {exc.strerror}")
                return None
            if not value:
                problems.append(f"{path}: secret file {name} is empty")
                return None
            return Secret(value, f"file:{name}")
    problems.append(f"{path}: must be a string, {{env: NAME}} or {{file: PATH}}")
    return None


# Credentials GitHub mints or users paste, recognised by their shape even when the bridge
# never saw the value (an App's installation token is minted at run time).
_TOKEN_SHAPES = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"
    r"|(?i:\b(?:bearer|token|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"
)


class Redactor:
    """Replaces every configured secret value, and anything shaped like a GitHub token or
    an Authorization value, with ``***`` in text that came from another server."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.values = sorted(
            {v for s in secrets for v in (s.value, *s.value.splitlines()) if len(v) >= 4},
            key=len,
            reverse=True,
        )

    def __call__(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, "***")
        return _TOKEN_SHAPES.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    prefix = re.match(r"(?i)(bearer|token|basic)\s+", match.group(0))
    return (prefix.group(0) if prefix else "") + "***"
