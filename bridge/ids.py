"""Identifiers: a prefix and 26 Crockford base32 characters, sortable by creation time."""

from __future__ import annotations

import base64
import secrets
import time

# base32's alphabet, mapped letter for letter onto Crockford's, which sorts like the bits.
_CROCKFORD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789abcdefghjkmnpqrstvwxyz"
)


def new_id(prefix: str, now: float | None = None) -> str:
    """``evt_01j...``: 48 bits of milliseconds then 80 random bits (like a ULID)."""
    ms = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    raw = ms.to_bytes(6, "big") + secrets.token_bytes(10)
    return f"{prefix}_{base64.b32encode(raw)[:26].translate(_CROCKFORD).decode('ascii')}"
