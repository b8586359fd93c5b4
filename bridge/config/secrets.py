"""Secret values: a plain string, ``{env: NAME}`` or ``{file: PATH}``.

A :class:`Secret` never shows its value in ``repr``/``str``, so it cannot leak into a log
line or an error message by accident; code that needs the value asks for ``.value``.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.config.files import MAX_SECRET_BYTES, UnreadableFile, others_can_read, read_text


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
            value = environ.get(name, "").strip()
            if not value:
                problems.append(f"{path}: environment variable {name} is not set or empty")
                return None
            if value != environ[name]:
                # A Kubernetes secret made from a file keeps the file's final newline, and
                # GitHub refuses a token with one: strip it, as for a secret file.
                warnings.append(
                    f"{path}: environment variable {name} has spaces or a line break around "
                    "its value; the bridge strips them (remove them where the variable is set)"
                )
            return Secret(value, f"env:{name}")
        if kind == "file" and isinstance(name, str) and name:
            try:
                value = read_text(name, MAX_SECRET_BYTES).strip()
            except UnreadableFile as exc:
                problems.append(f"{path}: cannot read secret file {name}: {exc}")
                return None
            if not value:
                problems.append(f"{path}: secret file {name} is empty")
                return None
            if others_can_read(name):
                warnings.append(
                    f"{path}: the secret file {name} is open to other users of this machine "
                    f"(its group or everyone); run chmod 600 {name} (in Kubernetes, give the "
                    "secret's volume defaultMode: 0400)"
                )
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
        plain = {v for s in secrets for v in (s.value, *s.value.splitlines()) if len(v) >= 4}
        encoded = {form for v in plain for form in base64_forms(v) if len(form) >= 4}
        # Longest first, so a secret that contains another is replaced whole.
        self.values = sorted(plain | encoded, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, "***")
        return _TOKEN_SHAPES.sub(_mask, text)


def base64_forms(value: str) -> set[str]:
    """The base64 text that ``value`` becomes inside any base64-encoded string.

    A server may echo a credential encoded: W&B's API key travels as HTTP Basic
    ``base64("api:" + key)``, and other Basic credentials are ``base64("user:" + secret)``.
    Which prefix comes first cannot be listed, but it does not matter: base64 turns each 3
    bytes into 4 characters, so wherever the value starts (0, 1 or 2 bytes into a group)
    its encoding holds one of three runs of characters made of its bits alone. Those runs
    (and their URL-safe spelling) are what is redacted; the at most two characters at
    either end, which mix the value's bits with its neighbours', stay.
    """
    raw = value.encode("utf-8")
    forms = set()
    for shift in range(3):
        text = base64.b64encode(bytes(shift) + raw).decode("ascii")
        # character i encodes bits 6i..6i+5; keep those that lie wholly within the value
        first = -(-8 * shift // 6)
        last = 8 * (shift + len(raw)) // 6
        run = text[first:last]
        forms |= {run, run.replace("+", "-").replace("/", "_")}
    return forms


def private_key_problem(key: Secret) -> str | None:
    """Why ``key`` cannot sign a GitHub App's tokens, or None when it can (an RSA private
    key in PEM). Never quotes the key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    fix = (
        "give the .pem file GitHub generated for the App (App settings -> Private keys), "
        "which starts with -----BEGIN RSA PRIVATE KEY-----"
    )
    try:
        loaded = load_pem_private_key(key.value.encode("utf-8"), password=None)
    except TypeError:  # what cryptography raises for a key that needs a password
        return f"the key from {key.origin} is encrypted with a passphrase; {fix}"
    except (ValueError, UnicodeError, UnsupportedAlgorithm):
        return f"the key from {key.origin} is not a PEM private key; {fix}"
    if not isinstance(loaded, RSAPrivateKey):
        return f"the key from {key.origin} is not an RSA key; {fix}"
    return None


def _mask(match: re.Match[str]) -> str:
    prefix = re.match(r"(?i)(bearer|token|basic)\s+", match.group(0))
    return (prefix.group(0) if prefix else "") + "***"
