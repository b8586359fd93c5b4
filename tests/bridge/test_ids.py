"""Identifiers: Crockford base32 of (milliseconds, random), sortable by creation time."""

from __future__ import annotations

import base64
import re

from hypothesis import given
from hypothesis import strategies as st

from bridge.ids import encode, new_id

_TO_CROCKFORD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789abcdefghjkmnpqrstvwxyz"
)


@given(st.binary(min_size=16, max_size=16))
def test_encode_is_base32_of_the_bytes_in_crockfords_alphabet(raw: bytes) -> None:
    expected = base64.b32encode(raw)[:26].translate(_TO_CROCKFORD).decode("ascii")
    assert encode(int.from_bytes(raw, "big")) == expected


@given(st.floats(min_value=0, max_value=8_000_000_000), st.floats(min_value=0.002, max_value=1e6))
def test_ids_sort_by_time(earlier: float, gap: float) -> None:
    a, b = new_id("evt", earlier), new_id("evt", earlier + gap)
    assert re.fullmatch(r"evt_[0-9a-hjkmnp-tv-z]{26}", a)
    assert a < b


def test_ids_made_in_the_same_millisecond_differ() -> None:
    assert len({new_id("dlv", 1_700_000_000.0) for _ in range(1000)}) == 1000


def test_first_id_sorts_after_every_id_made_before_and_before_every_later_one():
    from bridge.ids import first_id

    t = 1_700_000_000.5
    cutoff = first_id("evt", t)
    assert all(new_id("evt", t - d) < cutoff for d in (0.001, 1, 86400 * 90))
    assert all(new_id("evt", t + d) >= cutoff for d in (0, 0.001, 1))
