"""Identifiers: a prefix and 26 Crockford base32 characters, sortable by creation time."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, in bit order


def encode(value: int) -> str:
    """128 bits as 26 characters, most significant first (padded with 2 zero bits)."""
    bits = value << 2
    return "".join(_ALPHABET[(bits >> shift) & 31] for shift in range(125, -1, -5))


def new_id(prefix: str, now: float | None = None) -> str:
    """``evt_01j...``: 48 bits of milliseconds then 80 random bits (like a ULID)."""
    ms = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    return f"{prefix}_{encode((ms << 80) | int.from_bytes(os.urandom(10), 'big'))}"


def first_id(prefix: str, t: float) -> str:
    """The smallest id ``new_id`` can make at time ``t``: every id made before sorts
    before it."""
    return f"{prefix}_{encode((int(t * 1000) & ((1 << 48) - 1)) << 80)}"
