"""``wandb-bridge worker --burst``, run in-process (``bridge.cli.main``) against a real
store (a SQLite file, and PostgreSQL), the fake GitHub and a fake Slack: it delivers
what is due in every lane, leaves what is due later, and returns."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from bridge.cli import main
from bridge.store import open_store
from bridge.store.models import NewDelivery, NewEvent
from tests.fakes.github import FakeGitHub
from tests.fakes.receivers import Receiver

GH_TOKEN = "ghp_burstToken0000abcd"


@pytest.fixture
def github():
    with FakeGitHub(tokens=[GH_TOKEN]) as gh:
        yield gh


@pytest.fixture
def slack():
    with Receiver("slack") as receiver:
        yield receiver


def write_config(tmp_path, monkeypatch, store_url, github, slack, **delivery):
    monkeypatch.setenv("BURST_GH_TOKEN", GH_TOKEN)
    cfg = {
        "store": store_url,
        "sources": {"w": {"allow_unauthenticated": True}},
        "github": {"api_url": github.url, "token": {"env": "BURST_GH_TOKEN"}},
        "notify": [{"name": "ops", "outcomes": ["delivered"], "slack": {"webhook_url": slack.url}}],
        # a failed attempt is retried an hour later: long after the burst is over
        "delivery": {"initial_backoff": "1h", "max_backoff": "1h", "timeout": "5s", **delivery},
    }
    path = tmp_path / "bridge.yaml"
    path.write_text(json.dumps(cfg))  # YAML reads JSON
    return str(path)


def queue(store_url, n, at=None):
    """``n`` events, each one dispatch to acme/svc, received ``at`` (a minute ago)."""
    at = time.time() - 60 if at is None else at
    store = open_store(store_url)
    try:
        store.migrate()  # as the bridge that took them did
        for i in range(n):
            body = b'{"n": %d}' % i
            payload = json.dumps({"n": i, "bridge_event_id": f"evt_{i}"})
            store.accept(
                NewEvent(
                    f"evt_{i}", "w", "/webhooks/w", at, body, hashlib.sha256(body).hexdigest()
                ),
                [NewDelivery(f"dlv_{i}", "deploy", "acme/svc", "DEPLOY", payload)],
                600,
            )
    finally:
        store.close()


def states(store_url):
    store = open_store(store_url)
    try:
        return {
            d.id: d.state
            for e in store.list_events(None, 100)
            for d in e.deliveries
            if d.kind == "dispatch"
        }
    finally:
        store.close()


def test_a_burst_delivers_every_lane_and_returns(
    tmp_path, monkeypatch, capsys, store_url, github, slack
):
    queue(store_url, 5)
    cfg = write_config(tmp_path, monkeypatch, store_url, github, slack, concurrency=2)
    assert main(["worker", "--burst", "--config", cfg]) == 0
    assert sorted(d.client_payload["n"] for d in github.dispatches) == [0, 1, 2, 3, 4]
    assert set(states(store_url).values()) == {"delivered"}
    # each dispatch queued its "delivered" notification, which a later pass sent
    assert len(slack.accepted) == 5
    out = capsys.readouterr().out
    assert "made 10 delivery attempt(s); 0 queued for later" in out


def test_a_retry_due_later_is_left_for_later(
    tmp_path, monkeypatch, capsys, store_url, github, slack
):
    queue(store_url, 3)
    github.fail_next(502)  # the first dispatch it sees
    cfg = write_config(tmp_path, monkeypatch, store_url, github, slack)
    assert main(["worker", "--burst", "--config", cfg]) == 0
    assert len(github.dispatches) == 2
    assert len(github.attempts_for("acme/svc")) == 3  # no second attempt at the failed one
    assert sorted(states(store_url).values()) == ["delivered", "delivered", "queued"]
    assert "made 5 delivery attempt(s); 1 queued for later" in capsys.readouterr().out
    # a second burst finds nothing due yet, and sends nothing
    assert main(["worker", "--burst", "--config", cfg]) == 0
    assert len(github.attempts_for("acme/svc")) == 3 and len(slack.received) == 2


def test_a_burst_finds_the_runs_started_and_does_not_wait_for_their_end(
    tmp_path, monkeypatch, store_url, github, slack
):
    run_name = "Deploy (${{ github.event.client_payload.bridge_event_id }})"
    github.add_workflow("acme/svc", run_name=run_name, queued_for=None, runs_for=None)
    queue(store_url, 2)
    cfg = write_config(tmp_path, monkeypatch, store_url, github, slack)
    assert main(["worker", "--burst", "--config", cfg]) == 0
    store = open_store(store_url)
    try:
        for i in range(2):
            (d,) = [d for d in store.get_event(f"evt_{i}").deliveries if d.kind == "dispatch"]
            (run,) = d.runs  # found by the burst's look for runs
            assert d.state == "delivered" and run.state == "following"
    finally:
        store.close()
    assert all(r.status != "completed" for r in github.runs)


def test_a_burst_with_nothing_queued_returns_at_once(
    tmp_path, monkeypatch, capsys, store_url, github, slack
):
    queue(store_url, 0)
    cfg = write_config(tmp_path, monkeypatch, store_url, github, slack)
    assert main(["worker", "--burst", "--config", cfg]) == 0
    assert github.requests == [] and slack.received == []
    assert "made 0 delivery attempt(s)" in capsys.readouterr().out


def test_a_burst_without_its_store_fails_and_creates_none(
    tmp_path, monkeypatch, capsys, github, slack
):
    missing = tmp_path / "nowhere.db"
    cfg = write_config(tmp_path, monkeypatch, f"sqlite:///{missing}", github, slack)
    assert main(["worker", "--burst", "--config", cfg]) == 1
    err = capsys.readouterr().err
    assert err.startswith("wandb-bridge: ") and f"no SQLite database at {missing}" in err
    assert not missing.exists() and github.requests == []


def test_a_burst_on_an_unreachable_postgres_fails_with_the_reason(
    tmp_path, monkeypatch, capsys, github, slack
):
    url = "postgresql://bridge@127.0.0.1:9/bridge?connect_timeout=2"  # the discard port
    cfg = write_config(tmp_path, monkeypatch, url, github, slack)
    assert main(["worker", "--burst", "--config", cfg]) == 1
    last = capsys.readouterr().err.splitlines()[-1]  # after the pool's own warnings
    assert last.startswith("wandb-bridge: no connection to the PostgreSQL store at 127.0.0.1:9")
    assert github.requests == []
