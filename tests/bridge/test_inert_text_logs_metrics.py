"""Text from GitHub in the bridge's logs and metrics: inert and bounded."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.logs import MAX_FIELD, MAX_MESSAGE, JsonFormatter, TextFormatter, fields
from bridge.metrics import Metrics
from bridge.store.models import Stats
from bridge.text import printable

HOSTILE = "\x1b[2J\x1b[31mGitHub answered 500\n2026-01-01 00:00:00,000 INFO forged\u202e "


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(
        "bridge.delivery.worker", logging.WARNING, __file__, 1, msg, args, None
    )


@given(st.text(alphabet=st.sampled_from("ab\n\x1b\u202e\ud800é")), st.integers(0, 50))
def test_printable_with_a_limit_is_inert_bounded_and_never_cuts_an_escape(text, limit):
    shown = printable(text, limit)
    kept, _, rest = shown.partition("... (")
    assert kept.isprintable() and len(kept) <= limit
    if rest:  # what was cut is counted, and what was kept is whole escapes of a prefix
        prefix = text[: len(text) - int(rest.split()[0])]
        assert kept == printable(prefix)
    else:
        assert shown == printable(text)


def test_a_huge_github_message_makes_one_bounded_log_line():
    reason = HOSTILE * 20_000  # 1.3 million characters
    line = TextFormatter().format(record("delivery attempt outcome=dead reason=%s", reason))
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert len(line) < MAX_MESSAGE + 200 and line.endswith("more characters)")
    as_json = json.loads(JsonFormatter().format(record("reason=%s", reason)))
    assert len(as_json["message"]) < MAX_MESSAGE + 100


def test_a_huge_github_message_in_a_field_makes_one_bounded_log_line():
    rec = record("delivery attempt")
    rec.__dict__.update(fields(outcome="dead", reason=HOSTILE * 20_000))
    line = TextFormatter().format(rec)
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert len(line) < MAX_FIELD + 200 and line.endswith('more characters)"')
    as_json = json.loads(JsonFormatter().format(rec))
    assert as_json["outcome"] == "dead" and len(as_json["reason"]) < MAX_FIELD + 100


def test_a_short_message_is_logged_whole():
    line = TextFormatter().format(record("reason=%s", HOSTILE))
    assert line.endswith(printable("reason=" + HOSTILE))


@pytest.fixture
def metrics(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return Metrics(lambda: Stats({}, None), lambda: 0.0)


def test_a_run_conclusion_label_comes_from_a_fixed_set(metrics):
    metrics.run_concluded("acme/svc", "failure")
    metrics.run_concluded("acme/svc", '<b>"pwned"</b>\n' * 500)
    metrics.run_concluded("acme/svc", "startup_failure")
    text = metrics.render()[0].decode()
    runs = sorted(line for line in text.splitlines() if line.startswith("wandb_bridge_runs_total"))
    assert runs == [
        'wandb_bridge_runs_total{conclusion="failure",repository="acme/svc"} 1.0',
        'wandb_bridge_runs_total{conclusion="other",repository="acme/svc"} 1.0',
        'wandb_bridge_runs_total{conclusion="startup_failure",repository="acme/svc"} 1.0',
    ]
    assert "pwned" not in text
