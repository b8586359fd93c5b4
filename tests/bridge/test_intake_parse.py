"""``parse_object`` refuses a body whose value holds a lone surrogate, however it is
written, and looks for one by scanning the bytes rather than encoding every value again:
the scan must agree with encoding the parsed value, for every body."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import RequestRefused
from bridge.intake.checks import parse_object


def _strict(body: bytes) -> dict | None:
    """What parse_object must return: the object, or None where it must refuse."""
    try:
        value = json.loads(body)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _parsed(body: bytes) -> dict | None:
    try:
        return parse_object(body)
    except RequestRefused as exc:
        assert (exc.status, exc.code) == (400, "invalid_json")
        return None


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "\\ud800"}',
        b'{"a": "\\uDBFF"}',
        b'{"a": "x\\udc00y"}',
        b'{"\\ud83d": 1}',  # a high surrogate without its low one, in a key
        b'{"a": ["\\ude00\\ud83d"]}',  # a pair in the wrong order
        b'{"a": "\xed\xa0\x80"}',  # a surrogate's own UTF-8 bytes
        '{"a": "\\ud800"}'.encode("utf-16"),
        '{"a": "\\ud800"}'.encode("utf-32-le"),
        b'\xef\xbb\xbf{"a": "\\ud800"}',
    ],
)
def test_a_lone_surrogate_is_refused(body):
    assert _parsed(body) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "\\ud83d\\ude00"}',  # a pair: one character
        '{"a": "😀 é"}'.encode(),
        b'{"a": "\\\\ud800"}',  # a backslash, then the text ud800
        '{"a": "é"}'.encode("utf-16"),
    ],
)
def test_a_body_without_one_is_accepted(body):
    assert _parsed(body) == json.loads(body)


# JSON escapes (of surrogates, a pair, a backslash), text, and lone surrogates as such
ESCAPES = ["\\ud800", "\\udfff", "\\uD83D", "\\ude00", "\\ud83d\\ude00", "\\\\", "\\u00e9"]
pieces = st.sampled_from([*ESCAPES, "a", "é", "😀", "\udc80", "\ud800"])


@given(
    st.lists(pieces, max_size=6).map("".join),
    st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-8-sig"]),
)
def test_the_scan_agrees_with_encoding_the_value(text, encoding):
    body = ('{"k": "' + text + '"}').encode(encoding, errors="surrogatepass")
    assert _parsed(body) == _strict(body)
