"""Log lines that cannot be forged, and text from other servers with secrets redacted."""

from __future__ import annotations

import json
import logging

from hypothesis import given
from hypothesis import strategies as st

from bridge.config.load import parse_config
from bridge.config.secrets import Redactor, Secret
from bridge.delivery.build import credential_key
from bridge.logs import JsonFormatter, TextFormatter
from bridge.text import printable


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("bridge.x", logging.INFO, __file__, 1, msg, args, exc_info)


@given(st.text())
def test_a_text_line_is_one_line_whatever_the_message_holds(text):
    line = TextFormatter().format(record("request %s", text))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert printable(text) in line


def test_a_traceback_is_indented_so_no_line_of_it_looks_like_a_log_line():
    try:
        raise ValueError("boom\n2026-01-01 00:00:00,000 INFO forged")
    except ValueError as exc:
        line = TextFormatter().format(record("failed", exc=exc))
    first, *rest = line.split("\n")
    assert first.endswith("bridge.x: failed")
    assert rest and all(r.startswith("    | ") for r in rest)


def test_json_lines_escape_control_characters():
    line = JsonFormatter().format(record("request %s", "/x\n2026 INFO forged"))
    assert "\n" not in line and json.loads(line)["message"] == "request /x\n2026 INFO forged"


def test_printable_escapes_only_what_it_must():
    assert printable("/repos/acme/svc/dispatches é") == "/repos/acme/svc/dispatches é"
    assert printable("a\nb\x1b[31m\u2028") == "a\\nb\\x1b[31m\\u2028"


def test_redactor_replaces_configured_values_and_token_shapes():
    redact = Redactor([Secret("wh-secret-123456"), Secret("-----BEGIN KEY-----\nabcdefgh\n")])
    text = (
        'echo: {"Authorization": "Bearer ghp_0123456789abcdefghij0123"} x=wh-secret-123456 '
        "minted ghs_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123 line abcdefgh basic dXNlcjpwYXNzd29yZA=="
    )
    out = redact(text)
    for leaked in ("ghp_0123", "wh-secret-123456", "ghs_ABC", "abcdefgh", "dXNlcjpw"):
        assert leaked not in out
    assert "Bearer ***" in out and "echo:" in out


def test_the_rate_limit_key_names_the_credential_without_holding_it():
    cfg = parse_config(
        {
            "sources": {"w": {"secrets": ["s3cret-value"]}},
            "github": {"token": "ghp_shouldNotAppearAnywhere0000"},
        },
        {},
    )
    key = credential_key(cfg)
    assert key.startswith("https://api.github.com|token:") and "ghp_" not in key
    assert key == credential_key(cfg)
