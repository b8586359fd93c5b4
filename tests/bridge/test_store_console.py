"""The console's store (``store.console``) on every backend: events by filter a page at a
time, replays by an admin and their log, sessions, the sign-in throttle, workers'
heartbeats, the Now report; and ``events.model``, filled at intake, by catch-up and by
migration 10 from the bodies already stored."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from bridge.app import create_app
from bridge.config.load import parse_config
from bridge.delivery import worker as worker_mod
from bridge.delivery.worker import DeliveryWorker
from bridge.metrics import Metrics
from bridge.routing.changes import item
from bridge.store import console as console_mod
from bridge.store import open_store
from bridge.store.models import Attempt, EventFilter, NewDelivery, NewEvent, NewRun, Searched, Watch
from tests.bridge.fakeclock import T0
from tests.bridge.test_store import schema_version
from tests.bridge.test_worker import ScriptedSender
from tests.bridge.wandb.test_catchup import (
    REGISTRY,
    V1_PROD,
    churn,
    deploy_watcher,
    make_config,
    one_pass,
)

ALL = EventFilter()
EVERY = [  # the seeded events, newest first
    "evt_7_new",
    "evt_6_flight",
    "evt_5_norun",
    "evt_4_run",
    "evt_3_fail",
    "evt_2_dead",
    "evt_1_ok",
]


def body_of(model: str | None, shaped: bool = False) -> bytes:
    fields = {"event_type": "ADD_ARTIFACT_ALIAS", "artifact_version_string": model}
    if shaped:
        return json.dumps({"event_type": "DEPLOY", "client_payload": fields}).encode()
    return json.dumps(fields).encode()


def add(store, eid, model, deliveries, at=T0):
    """Accept event ``eid`` naming ``model``, with (delivery id, repository, route, kind)."""
    body = body_of(model)
    event = NewEvent(
        eid, "wandb", "/webhooks/wandb", at, body, hashlib.sha256(body).hexdigest(), model=model
    )
    planned = [
        NewDelivery(did, route, repo, "DEPLOY", "{}", kind=kind, notifier="ops")
        for did, repo, route, kind in deliveries
    ]
    store.accept(event, planned, 0)


def settle(store, outcomes, at=T0 + 1):
    """Claim every due delivery and finish it in the state ``outcomes`` gives its id
    (left in flight when absent); a delivered one with a run conclusion starts a run."""
    for c in store.claim("w", 1000, 60, at):
        if c.id not in outcomes:
            continue
        state, run = outcomes[c.id]
        ok = state == "delivered"
        attempt = Attempt(
            1, at, at, 204 if ok else 422, state, "delivered" if ok else f"refused {c.id}"
        )
        watch = Watch(c.id, c.event_id, c.repository, c.kind, None, None, at, at + 60, None, 0)
        found = None
        if run is not None and run != "no_run":
            found = NewRun(int(c.id.split("_")[1]), "ci", "https://x", "queued", None, at, at)
        store.finish(c, "w", attempt, state, at, watch=watch if ok else None, run=found)


def conclude(store, conclusions, at=T0 + 2):
    """Give the followed runs of ``conclusions`` (delivery id -> conclusion or "unknown")
    their end; watches of "no_run" deliveries end without a run."""
    for w in store.runs.claim_watches("f", 1000, 60, at):
        if conclusions.get(w.delivery_id) == "no_run":
            store.runs.finish_watches([Searched(w, at, "no_run")], "f", at)
    for r in store.runs.claim_runs("f", 1000, 60, at):
        end = conclusions.get(r.delivery_id)
        if end is None:
            continue
        seen = NewRun(r.run_id, "ci", "https://x", "completed", end, at, at)
        state = "unknown" if end == "unknown" else "concluded"
        store.runs.finish_run(
            r, "f", at, seen=None if state == "unknown" else seen, state=state, due_at=at, etag=None
        )


@pytest.fixture
def seeded(store):
    """Six events, oldest first: what became of each is in its name."""
    add(store, "evt_1_ok", "acme/reg/churn:v1", [("dlv_1", "acme/a", "deploy", "dispatch")])
    add(store, "evt_2_dead", "acme/reg/churn:v2", [("dlv_2", "acme/b", "deploy", "dispatch")])
    add(store, "evt_3_fail", "acme/reg/Fraud:v1", [("dlv_3", "acme/a", "train", "dispatch")])
    add(store, "evt_4_run", "acme/reg/fraud:v2", [("dlv_4", "acme/b", "train", "dispatch")])
    add(
        store,
        "evt_5_norun",
        "acme/reg/100%_sure:v1",
        [("dlv_5", "acme/a", "deploy", "dispatch"), ("dlv_5n", "", "deploy", "notify")],
    )
    add(store, "evt_6_flight", None, [("dlv_6", "acme/c", "deploy", "dispatch")])
    settle(
        store,
        {
            "dlv_1": ("delivered", "success"),
            "dlv_2": ("dead", None),
            "dlv_3": ("delivered", "failure"),
            "dlv_4": ("delivered", "running"),
            "dlv_5": ("delivered", "no_run"),
            "dlv_5n": ("dead", None),
        },
    )
    store.accept(  # dlv_6 queued again: claimed above, never finished; a fresh one
        NewEvent("evt_7_new", "wandb", "/webhooks/wandb", T0, b"x", "h7"),
        [NewDelivery("dlv_7", "deploy", "acme/c", "DEPLOY", "{}")],
        0,
    )
    conclude(store, {"dlv_1": "success", "dlv_3": "failure", "dlv_5": "no_run"})
    return store


def ids(page):
    return [e.id for e in page.events]


def test_events_newest_first_with_deliveries_runs_and_model(seeded):
    page = seeded.console.events(ALL, None)
    assert ids(page) == EVERY
    assert page.next_before is None
    by_id = {e.id: e for e in page.events}
    ok = by_id["evt_1_ok"]
    assert ok.model == "acme/reg/churn:v1" and ok.body == body_of("acme/reg/churn:v1")
    (d,) = ok.deliveries
    assert (d.state, d.watch, [(r.run_id, r.conclusion, r.state) for r in d.runs]) == (
        "delivered",
        "done",
        [(1, "success", "concluded")],
    )
    assert d.history == ()  # attempts only on the event's own page
    assert [(x.id, x.state) for x in by_id["evt_5_norun"].deliveries] == [
        ("dlv_5", "delivered"),
        ("dlv_5n", "dead"),
    ]
    assert by_id["evt_5_norun"].deliveries[0].watch == "no_run"
    assert by_id["evt_6_flight"].model is None


def test_keyset_pages(seeded):
    first = seeded.console.events(ALL, None, limit=3)
    assert ids(first) == ["evt_7_new", "evt_6_flight", "evt_5_norun"]
    assert first.next_before == "evt_5_norun"
    second = seeded.console.events(ALL, first.next_before, limit=3)
    assert ids(second) == ["evt_4_run", "evt_3_fail", "evt_2_dead"]
    last = seeded.console.events(ALL, second.next_before, limit=3)
    assert ids(last) == ["evt_1_ok"] and last.next_before is None
    exact = seeded.console.events(ALL, "evt_4_run", limit=3)  # exactly a page left
    assert ids(exact) == ["evt_3_fail", "evt_2_dead", "evt_1_ok"] and exact.next_before is None


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (EventFilter(state="dead"), ["evt_2_dead"]),  # a dead notification is not a dead dispatch
        (EventFilter(state="queued"), ["evt_7_new"]),
        (EventFilter(state="in_flight"), ["evt_6_flight"]),
        (EventFilter(state="delivered"), ["evt_5_norun", "evt_4_run", "evt_3_fail", "evt_1_ok"]),
        (EventFilter(run="succeeded"), ["evt_1_ok"]),
        (EventFilter(run="failed"), ["evt_3_fail"]),
        (EventFilter(run="running"), ["evt_4_run"]),
        (EventFilter(run="no_run"), ["evt_5_norun"]),
        (EventFilter(repository="acme/a"), ["evt_5_norun", "evt_3_fail", "evt_1_ok"]),
        (EventFilter(route="train"), ["evt_4_run", "evt_3_fail"]),
        (EventFilter(q="evt_3_fail"), ["evt_3_fail"]),  # an exact id
        (EventFilter(q="evt_"), EVERY),
        (EventFilter(q="evt_4"), ["evt_4_run"]),  # the start of one
        (EventFilter(q="FRAUD"), ["evt_4_run", "evt_3_fail"]),  # part of the model, any case
        (EventFilter(q="churn:v2"), ["evt_2_dead"]),
        (EventFilter(q="100%_s"), ["evt_5_norun"]),  # % and _ are themselves
        (EventFilter(q="0%_"), ["evt_5_norun"]),
        (EventFilter(q="%"), ["evt_5_norun"]),
        (EventFilter(q="_"), ["evt_5_norun"]),
        (EventFilter(q="nothing-like-it"), []),
        (EventFilter(state="delivered", repository="acme/b", run="running"), ["evt_4_run"]),
        (EventFilter(state="dead", route="train"), []),
    ],
)
@pytest.mark.parametrize("sparse", [2000, 1])  # their events listed, or each event checked
def test_filters(seeded, filters, expected, sparse, monkeypatch):
    monkeypatch.setattr(console_mod, "SPARSE", sparse)
    assert ids(seeded.console.events(filters, None)) == expected
    dead = sum(
        d.state == "dead" for e in seeded.console.events(filters, None).events for d in e.deliveries
    )
    assert seeded.console.dead_count(filters) == dead


def test_an_unknown_state_or_outcome_is_refused(store):
    with pytest.raises(ValueError, match="state must be one of"):
        store.console.events(EventFilter(state="gone' OR 1=1 --"), None)
    with pytest.raises(ValueError, match="run must be one of"):
        store.console.events(EventFilter(run="won"), None)


def test_unknown_run_outcome(store):
    add(store, "evt_a", "m:v1", [("dlv_10", "acme/a", "deploy", "dispatch")])
    settle(store, {"dlv_10": ("delivered", "x")})
    conclude(store, {"dlv_10": "unknown"})
    assert ids(store.console.events(EventFilter(run="unknown"), None)) == ["evt_a"]
    assert ids(store.console.events(EventFilter(run="running"), None)) == []


def test_replay_of_one_dead_delivery_is_logged_and_happens_once(seeded):
    console = seeded.console
    waiter = seeded.waiter()
    try:
        assert console.replay_delivery("dlv_2", T0 + 10, "env:BRIDGE_ADMIN_TOKEN")
        assert waiter.wait(5)  # the workers are woken
    finally:
        waiter.close()
    assert not console.replay_delivery("dlv_2", T0 + 11, "env:BRIDGE_ADMIN_TOKEN")  # queued now
    assert not console.replay_delivery("dlv_1", T0 + 11, "x")  # delivered: not dead
    assert not console.replay_delivery("dlv_nope", T0 + 11, "x")
    (action,) = console.actions()
    assert (action.at, action.label, action.action, action.target, action.detail) == (
        T0 + 10,
        "env:BRIDGE_ADMIN_TOKEN",
        "replay",
        "dlv_2",
        "event evt_2_dead",
    )
    (d,) = seeded.get_event("evt_2_dead").deliveries
    assert (d.state, d.due_at) == ("queued", T0 + 10)
    assert sorted(c.id for c in seeded.claim("w2", 10, 60, T0 + 10)) == ["dlv_2", "dlv_7"]


def test_bulk_replay_takes_the_dead_of_the_filter_all_pages(store):
    for n in range(1, 8):
        repo = "acme/a" if n % 2 else "acme/b"
        add(store, f"evt_{n}", f"m:v{n}", [(f"dlv_{n}", repo, "deploy", "dispatch")])
    settle(store, {f"dlv_{n}": ("dead" if n != 3 else "delivered", None) for n in range(1, 8)})
    only_a = EventFilter(state="dead", repository="acme/a")
    assert ids(store.console.events(only_a, None, limit=2)) == ["evt_7", "evt_5"]
    assert store.console.dead_count(only_a) == 3  # 1, 5, 7 (3 was delivered)
    assert store.console.dead_count(ALL) == 6
    assert store.console.replay_dead(only_a, T0 + 10, "file:admin") == ["dlv_1", "dlv_5", "dlv_7"]
    assert store.console.replay_dead(only_a, T0 + 11, "file:admin") == []  # nothing twice
    assert store.console.dead_count(only_a) == 0 and store.console.dead_count(ALL) == 3
    (action,) = store.console.actions()
    assert (action.action, action.target, action.label) == (
        "replay_dead",
        "state=dead repository=acme/a",
        "file:admin",
    )
    assert action.detail == "3 deliveries: dlv_1 dlv_5 dlv_7"
    queued = sorted(c.id for c in store.claim("w2", 10, 60, T0 + 10))
    assert queued == ["dlv_1", "dlv_5", "dlv_7"]


def test_actions_latest_first_and_limited(seeded):
    for n in range(3):
        seeded.console.replay_dead(ALL, T0 + 10 + n, f"label{n}")
        settle(seeded, {"dlv_2": ("dead", None), "dlv_5n": ("dead", None)}, at=T0 + 10 + n)
    assert [a.label for a in seeded.console.actions(2)] == ["label2", "label1"]


def test_sessions_expire_and_end(store):
    console = store.console
    console.create_session("h1", "env:BRIDGE_ADMIN_TOKEN", "csrf1", T0, 3600)
    s = console.session("h1", T0 + 10)
    assert s is not None
    assert (s.label, s.csrf, s.created_at, s.expires_at) == (
        "env:BRIDGE_ADMIN_TOKEN",
        "csrf1",
        T0,
        T0 + 3600,
    )
    assert console.session("h2", T0 + 10) is None
    assert console.session("h1", T0 + 3600) is None  # ended
    console.create_session("h2", "file:t", "csrf2", T0 + 3600, 3600)  # forgets h1
    with store._transaction(write=False) as tx:
        assert [r[0] for r in tx.run("SELECT id_hash FROM console_sessions").fetchall()] == ["h2"]
    console.end_session("h2")
    assert console.session("h2", T0 + 3601) is None


def test_sign_in_throttle_per_address_and_window(store_factory):
    a, b = store_factory(), store_factory()  # two workers or replicas
    for n in range(1, 5):
        assert a.console.sign_in_failed("10.0.0.1", T0 + n) == n
        assert b.console.sign_in_blocked("10.0.0.1", T0 + n) is None
    assert b.console.sign_in_failed("10.0.0.1", T0 + 5) == 5
    assert a.console.sign_in_blocked("10.0.0.1", T0 + 100) == pytest.approx(501)
    assert a.console.sign_in_blocked("10.0.0.2", T0 + 100) is None
    assert a.console.sign_in_blocked("10.0.0.1", T0 + 601) is None  # the window ended
    assert a.console.sign_in_failed("10.0.0.1", T0 + 601) == 1  # a new window
    a.console.sign_in_failed("10.0.0.2", T0 + 601)
    a.console.sign_in_cleared("10.0.0.2")
    assert a.console.sign_in_failed("10.0.0.2", T0 + 602) == 1


def test_workers_by_heartbeat(store):
    store.console.beat("host:1", T0, T0)
    store.console.beat("host:2", T0 - 50, T0 + 60)
    store.console.beat("host:1", T0, T0 + 30)
    assert [(w.owner, w.started_at, w.seen_at) for w in store.console.workers(T0 + 100)] == [
        ("host:1", T0, T0 + 30),
        ("host:2", T0 - 50, T0 + 60),
    ]
    assert [w.owner for w in store.console.workers(T0 + 121)] == ["host:2"]
    assert store.console.workers(T0 + 100, within=10) == []


def test_now_report(seeded):
    seeded.pause("github", T0 + 100)
    seeded.pause("app:2", T0 + 1)  # over by then
    seeded.runs.take_budget("github", T0, 100)
    seeded.runs.take_budget("github", T0 + 1, 100)
    seeded.runs.take_budget("wandb", T0 - 4000, 100)  # an hour ago and more
    seeded.console.beat("host:1", T0, T0 + 5)
    seeded.console.replay_delivery("dlv_2", T0 + 5, "env:T")
    report = seeded.console.now(T0 + 10)
    assert report.by_state == {"queued": 2, "in_flight": 1, "delivered": 4, "dead": 1}
    assert report.oldest_queued_at == T0
    assert (report.runs_followed, report.searches) == (1, 0)
    assert [(p.credential, p.until) for p in report.pauses] == [("github", T0 + 100)]
    assert [(b.credential, b.used) for b in report.budget] == [("github", 2), ("wandb", 0)]
    assert [(e.delivery_id, e.target, e.state, e.message) for e in report.errors] == [
        ("dlv_2", "github:acme/b", "queued", "refused dlv_2"),
        ("dlv_5n", "notify:ops", "dead", "refused dlv_5n"),
    ]
    assert [(a.action, a.target) for a in report.actions] == [("replay", "dlv_2")]
    assert [w.owner for w in report.workers] == ["host:1"]


def test_the_delivery_worker_beats(tmp_path, store_factory, monkeypatch):
    monkeypatch.setattr(worker_mod, "MAX_IDLE", 0.05)
    cfg = parse_config(
        {"store": "sqlite:///unused.db", "sources": {"w": {"allow_unauthenticated": True}},
         "github": {"dry_run": True}},
        {},
    )  # fmt: skip
    store = store_factory()
    clock = [T0]
    w = DeliveryWorker(cfg, store, ScriptedSender([]), Metrics(store.stats, lambda: clock[0]),
                       clock=lambda: clock[0], owner="host:42")  # fmt: skip
    thread = threading.Thread(target=w.run)
    thread.start()
    try:
        seen = threading.Event()
        for _ in range(600):  # each a look after the loop's safety-net tick
            if store.console.workers(T0 + 1):
                seen.set()
                break
            threading.Event().wait(0.05)
        assert seen.is_set(), "no heartbeat"
        (beat,) = store.console.workers(T0 + 1)
        assert (beat.owner, beat.started_at, beat.seen_at) == ("host:42", T0, T0)
        clock[0] = T0 + 10  # within 30 s of the last beat: none more
        threading.Event().wait(0.3)
        assert store.console.workers(T0 + 10)[0].seen_at == T0
        clock[0] = T0 + 31
        for _ in range(600):
            if store.console.workers(T0 + 31)[0].seen_at == T0 + 31:
                break
            threading.Event().wait(0.05)
        assert store.console.workers(T0 + 31)[0].seen_at == T0 + 31
    finally:
        w.stop()
        thread.join(30)
    assert not thread.is_alive()


# -- events.model ----------------------------------------------------------------------------


def test_intake_keeps_the_model_version(store_url, tmp_path):
    cfg = parse_config(
        {"store": store_url, "sources": {"wandb": {"allow_unauthenticated": True}},
         "github": {"dry_run": True, "repositories": ["acme/*"]},
         "routes": [{"dispatch": {"repository": "acme/x"}}]},
        {},
    )  # fmt: skip
    store = open_store(store_url)
    try:
        times = iter(range(100))
        client = create_app(cfg, store=store, clock=lambda: T0 + next(times)).test_client()
        long = "acme/reg/" + "m" * 400 + ":v1"
        bodies = (body_of("acme/reg/churn:v3"), body_of(long, shaped=True), b'{"event_type": "X"}')
        for body in bodies:
            r = client.post("/webhooks/wandb", data=body, content_type="application/json")
            assert r.status_code == 202, r.get_data(as_text=True)
        models = [e.model for e in store.console.events(ALL, None).events]
        assert models == [None, long[:300], "acme/reg/churn:v3"]
    finally:
        store.close()


def test_catch_up_keeps_the_model_version(tmp_path: Path) -> None:
    before = {item("A1", "link"), item("A1", "alias", "latest")}
    result, _ = one_pass(make_config(tmp_path), [deploy_watcher()], churn(V1_PROD), before)
    (found,) = result.caught_up
    assert found.event.model == f"acme-org/{REGISTRY}/churn:production"


def test_a_store_at_version_9_gets_models_from_its_bodies(store_url):
    store = open_store(store_url)
    try:
        latest = store.migrations
        store.migrations = latest[:9]
        store.migrate()
        long = "e/p/" + "é" * 400
        bodies = {
            "evt_flat": body_of("acme/reg/churn:v1"),
            "evt_shaped": body_of("acme/reg/fraud:v2", shaped=True),
            "evt_long": body_of(long),
            "evt_number": b'{"artifact_version_string": 7}',
            "evt_none": b'{"event_type": "LINK_MODEL"}',
            "evt_list": b"[1, 2]",
            "evt_bad": b"\xff{not json",
            # flat: a client_payload that is not GitHub-shaped (no event_type) is a field
            "evt_cp": b'{"client_payload": {"artifact_version_string": "x:v1"}}',
        }
        extra = {f"evt_z{n:04d}": body_of(f"bulk:v{n}") for n in range(1200)}  # > a batch
        with store._transaction() as tx:
            for eid, body in {**bodies, **extra}.items():
                tx.run(
                    "INSERT INTO events (id, source, endpoint, received_at, body_sha256, body) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (eid, "wandb", "/webhooks/wandb", T0, "h", body),
                )
        store.migrations = latest
        store.migrate()
        assert schema_version(store_url) == len(latest) >= 10
        got = {eid: store.get_event(eid).model for eid in bodies}
        assert got == {
            "evt_flat": "acme/reg/churn:v1",
            "evt_shaped": "acme/reg/fraud:v2",
            "evt_long": long[:300],
            "evt_number": None,
            "evt_none": None,
            "evt_list": None,
            "evt_bad": None,
            "evt_cp": None,
        }
        assert store.get_event("evt_z1199").model == "bulk:v1199"
        page = store.console.events(EventFilter(q="bulk:v119"), None)
        assert ids(page)[:2] == ["evt_z1199", "evt_z1198"] and len(page.events) == 11
    finally:
        store.close()
