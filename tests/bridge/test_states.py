"""Each state is one ``StrEnum``: the drivers store its members as the very words rows
already hold, and the SQL built from them agrees with the code that reads them."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing

import psycopg
import pytest

from bridge.console.pages import run_outcome
from bridge.delivery.follow import RunFollower
from bridge.delivery.senders import Sent
from bridge.delivery.worker import DeliveryWorker
from bridge.metrics import Metrics
from bridge.states import (
    AttemptOutcome,
    DeliveryKind,
    DeliveryState,
    Origin,
    RunState,
    WatchState,
)
from bridge.store.models import NewDelivery, NewEvent, NewRun
from tests.bridge.fakeclock import Clock
from tests.bridge.test_follow import ScriptedGitHub, config, run_obj

ENUMS = (DeliveryState, AttemptOutcome, DeliveryKind, Origin, WatchState, RunState)
MEMBERS = [m for enum in ENUMS for m in enum]
# Every conclusion GitHub documents for a completed run, and a run completed without one.
CONCLUSIONS = [
    "success",
    "failure",
    "neutral",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
    "stale",
    "startup_failure",
    None,
]


def test_sqlite_binds_a_member_as_its_word():
    with closing(sqlite3.connect(":memory:")) as conn:
        for m in MEMBERS:
            assert conn.execute("SELECT ?, typeof(?)", (m, m)).fetchone() == (m.value, "text")


@pytest.mark.postgres
def test_psycopg_binds_a_member_as_its_word_not_its_name(postgres_url):
    # psycopg dumps a plain Enum by its name; a StrEnum must go as the str it is
    with psycopg.connect(postgres_url) as conn:
        for m in MEMBERS:
            assert conn.execute("SELECT %s::text", (m,)).fetchone() == (m.value,)
        conn.execute("CREATE TEMPORARY TABLE t (state TEXT)")
        conn.execute("INSERT INTO t VALUES (%s)", (DeliveryState.IN_FLIGHT,))
        row = conn.execute("SELECT state FROM t WHERE state = %s", ("in_flight",)).fetchone()
        assert row == ("in_flight",)


class NamedRuns:
    """Answers each workflow dispatch with run details: run ``n`` for ``dlv_n``."""

    dry_run = False

    def send(self, claimed):
        n = int(claimed.id.removeprefix("dlv_"))
        return Sent(200, NewRun(n, "deploy.yml", None, "queued", None, None, None))


def test_events_list_run_filters_agree_with_the_followers_outcome(store_factory):
    """``--run succeeded`` / ``--run failed`` (SQL), the run_succeeded / run_failed
    notifications (the follower) and the console's words, for every conclusion."""
    clock = Clock()
    outcomes = ["run_succeeded", "run_failed"]
    hook = {"name": "hook", "outcomes": outcomes, "webhook": {"url": "http://127.0.0.1:9/"}}
    cfg = config(notify=[hook])
    store = store_factory()
    github = ScriptedGitHub()
    conclusion_of = {}
    for n, conclusion in enumerate(CONCLUSIONS, start=1):
        body = b"%d" % n
        store.accept(
            NewEvent(
                f"evt_{n}", "w", "/webhooks/w", clock.now, body, hashlib.sha256(body).hexdigest()
            ),
            [
                NewDelivery(
                    f"dlv_{n}", "deploy", "acme/svc", "", "{}", "workflow", "deploy.yml", "main"
                )
            ],
            600,
        )
        github.runs[n] = run_obj(
            n, "Deploy", "completed", conclusion, event="workflow_dispatch", created=clock.now
        )
        conclusion_of[f"evt_{n}"] = conclusion
    metrics = Metrics(store.stats, clock)
    worker = DeliveryWorker(cfg, store, NamedRuns(), metrics, clock=clock, owner="w1")
    assert worker.drain() == len(CONCLUSIONS)  # delivered; each run followed at once
    follower = RunFollower(cfg, store, github, metrics, clock, "w1", "cred")
    clock.now += 30
    while follower.step():
        pass

    announced: dict[str, set[str]] = {"run_succeeded": set(), "run_failed": set()}
    words = {}
    for event in store.list_events(None, 100):
        for d in event.deliveries:
            if d.kind == "notify" and d.event_type in announced:
                announced[d.event_type].add(event.id)
            for run in d.runs:
                assert run.state == "concluded" and run.conclusion == conclusion_of[event.id]
                words[event.id] = run_outcome(run)
    succeeded = {e.id for e in store.list_events(None, 100, "succeeded")}
    failed = {e.id for e in store.list_events(None, 100, "failed")}

    assert succeeded == announced["run_succeeded"]
    assert failed == announced["run_failed"]
    assert succeeded | failed == set(conclusion_of) and not succeeded & failed
    assert {e for e, w in words.items() if w == "success"} == succeeded
    assert {e for e, w in words.items() if w == "failure"} == failed
    assert {conclusion_of[e] for e in succeeded} == {"success", "neutral", "skipped"}
