"""A log line's fields: JSON keys of their own, ``key=value`` in text, never forged."""

from __future__ import annotations

import io
import json
import logging
import re
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.app import create_app
from bridge.config.load import parse_config
from bridge.logs import MAX_FIELD, JsonFormatter, TextFormatter, fields
from bridge.text import printable

TOKEN = "webhook-token-for-tests-123"
HOSTILE = '/webhooks/x status=200 event=evt_forged "q\\" ms=0\n2026-01-01 INFO forged\x1b[31m'
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^ "]+)(?: |$)')


def text_fields(line: str, message: str) -> dict[str, str]:
    """The fields of a text line, read as a logfmt reader would; the whole tail must parse."""
    _, sep, tail = line.partition(f": {message} ")
    assert sep, line
    found: dict[str, str] = {}
    at = 0
    while at < len(tail):
        pair = _PAIR.match(tail, at)
        assert pair, f"unreadable from {tail[at:]!r}"
        key, value = pair.groups()
        assert key not in found, f"{key} twice in {line!r}"
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found[key] = value
        at = pair.end()
    return found


def record(msg: str, extra: dict[str, object]) -> logging.LogRecord:
    rec = logging.LogRecord("bridge.x", logging.INFO, __file__, 1, msg, (), None)
    rec.__dict__.update(extra)
    return rec


@pytest.fixture
def app(tmp_path):
    raw = {
        "store": f"sqlite:///{tmp_path}/b.db",
        "sources": {"w": {"tokens": [TOKEN]}},
        "github": {"dry_run": True},
        "routes": [{"dispatch": {"repository": "acme/x"}}],
    }
    app = create_app(parse_config(raw, {}))
    yield app
    app.extensions["wandb_bridge"].store.close()


@pytest.fixture
def request_lines():
    """Each request line the app writes, as JSON and as text."""
    streams = {"json": io.StringIO(), "text": io.StringIO()}
    handlers = []
    for kind, formatter in (("json", JsonFormatter()), ("text", TextFormatter())):
        handler = logging.StreamHandler(streams[kind])
        handler.setFormatter(formatter)
        handlers.append(handler)
    logger = logging.getLogger("bridge.app")
    level = logger.level
    logger.setLevel(logging.INFO)
    for handler in handlers:
        logger.addHandler(handler)

    def lines() -> tuple[list[dict[str, object]], list[str]]:
        text = streams["text"].getvalue().splitlines()
        return [json.loads(line) for line in streams["json"].getvalue().splitlines()], text

    yield lines
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_request_line_has_its_values_as_json_fields_of_their_type(app, request_lines):
    client = app.test_client()
    sent = client.post("/webhooks/w", json={"event_type": "X"}, headers=_auth())
    sent.close()  # the line is written once the answer is sent
    refused = client.post("/webhooks/w", json={"event_type": "X"}, headers=_auth("wrong-one"))
    refused.close()
    (accepted, unauthorized), text = request_lines()
    event_id = sent.get_json()["event_id"]
    assert accepted["message"] == "request" and accepted["logger"] == "bridge.app"
    assert {k: accepted[k] for k in ("method", "path", "status", "source", "event")} == {
        "method": "POST",
        "path": "/webhooks/w",
        "status": 202,
        "source": "w",
        "event": event_id,
    }
    assert accepted["deliveries"].endswith("->github:acme/x")
    assert isinstance(accepted["ms"], float) and "error" not in accepted
    assert unauthorized["status"] == 401 and unauthorized["error"] == "invalid_token"
    assert "event" not in unauthorized and "source" not in unauthorized
    assert text_fields(text[0], "request")["event"] == event_id
    assert text_fields(text[1], "request")["status"] == "401"
    for line in (*text, *map(json.dumps, request_lines()[0])):
        assert TOKEN not in line and "wrong-one" not in line


def test_a_hostile_path_adds_and_changes_no_field(app, request_lines):
    app.test_client().post(quote(HOSTILE), json={"event_type": "X"}).close()
    (line,), (text,) = request_lines()
    assert set(line) == {"time", "level", "logger", "pid", "message", *_REQUEST}
    assert line["path"] == HOSTILE and line["status"] == 404 and line["message"] == "request"
    assert "\n" not in text and "\x1b" not in text
    shown = text_fields(text, "request")
    assert set(shown) == _REQUEST
    assert shown["path"] == printable(HOSTILE) and shown["status"] == "404"


_REQUEST = {"method", "path", "status", "error", "ms"}


def test_a_delivery_attempt_line_has_its_values_as_json_fields(app, caplog):
    from bridge.delivery.senders import DryRunSender
    from bridge.delivery.worker import DeliveryWorker

    sent = app.test_client().post("/webhooks/w", json={"event_type": "X"}, headers=_auth())
    svc = app.extensions["wandb_bridge"]
    with caplog.at_level(logging.INFO, "bridge.delivery.worker"):
        DeliveryWorker(svc.config, svc.store, DryRunSender("x"), svc.metrics).drain()
    (attempt,) = [r for r in caplog.records if r.getMessage() == "delivery attempt"]
    line = json.loads(JsonFormatter().format(attempt))
    assert line["event"] == sent.get_json()["event_id"] and line["id"].startswith("dlv_")
    assert line["attempt"] == 1 and line["outcome"] == "dry_run"
    assert line["target"] == "github:acme/x" and "status" not in line  # nothing was sent


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@given(st.text(), st.text())
def test_no_value_can_add_or_change_a_text_field(first, last):
    line = TextFormatter().format(record("m", fields(first=first, n=7, last=last)))
    assert "\n" not in line and "\r" not in line
    shown = text_fields(line, "m")
    assert shown == {
        "first": printable(first, MAX_FIELD),
        "n": "7",
        "last": printable(last, MAX_FIELD),
    }


@given(st.sampled_from(["time", "level", "logger", "pid", "message", "exception", "fields"]))
def test_a_field_named_like_a_json_key_of_the_line_goes_under_fields(name):
    line = json.loads(JsonFormatter().format(record("m", fields(**{name: "forged"}, ok=1))))
    assert line["message"] == "m" and line["level"] == "INFO" and line["logger"] == "bridge.x"
    assert isinstance(line["pid"], int) and line["time"] != "forged"
    assert line["fields"] == {name: "forged"} and line["ok"] == 1


def test_numbers_and_booleans_keep_their_type_and_none_is_left_out():
    extra = fields(n=3, x=1.5, yes=True, no=None, nan=float("nan"), s="3")
    line = json.loads(JsonFormatter().format(record("m", extra)))
    assert (line["n"], line["x"], line["yes"], line["nan"], line["s"]) == (3, 1.5, True, "nan", "3")
    assert "no" not in line
    text = TextFormatter().format(record("m", extra))
    assert text.endswith(": m n=3 x=1.5 yes=true nan=nan s=3")


def test_a_long_value_is_cut_in_both_formats():
    extra = fields(reason="x" * (MAX_FIELD * 3), after="kept")
    as_json = json.loads(JsonFormatter().format(record("m", extra)))
    assert len(as_json["reason"]) < MAX_FIELD + 40 and as_json["after"] == "kept"
    shown = text_fields(TextFormatter().format(record("m", extra)), "m")
    assert shown["reason"].endswith(f"... ({MAX_FIELD * 2} more characters)")
    assert shown["after"] == "kept"


def test_an_empty_value_is_shown_as_such():
    assert TextFormatter().format(record("m", fields(a="", b="x"))).endswith(' m a="" b=x')
