"""W&B's webhook signature: base64(HMAC-SHA256(secret, raw body)), and bearer tokens.

Both are checked in constant time over the raw bytes as received. ``sign`` and
``verify`` sit side by side so the known-answer test covers both directions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from bridge.config.secrets import Secret


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``X-Wandb-Signature`` value W&B sends for ``body`` under ``secret``."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


def _header_bytes(value: str) -> bytes:
    # WSGI hands headers over as latin-1 decoded text; this gets the wire bytes back.
    return value.strip().encode("latin-1", errors="replace")


def signature_matches(secrets: Sequence[Secret], header: str, body: bytes) -> bool:
    """True when ``header`` is the signature of ``body`` under any of ``secrets``.

    Every secret is tried (no early exit) so timing does not tell which one matched.
    """
    given = _header_bytes(header)
    ok = False
    for secret in secrets:
        expected = sign(secret.value, body).encode("ascii")
        ok |= hmac.compare_digest(expected, given)
    return ok


def bearer_token(authorization: str | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return _header_bytes(token)


def token_matches(tokens: Sequence[Secret], token: bytes) -> bool:
    """True when ``token`` equals any of ``tokens`` (all compared, constant time)."""
    ok = False
    for candidate in tokens:
        ok |= candidate.matches(token)
    return ok
