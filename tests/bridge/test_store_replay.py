"""Replay on every backend: idempotent for what is queued or in flight, safe beside prune."""

from __future__ import annotations

import hashlib
import threading

import psycopg
import pytest

from bridge.errors import NotFound
from bridge.ids import new_id
from bridge.store.models import Attempt, NewDelivery, NewEvent
from harness.wait import wait_until

T0 = 1_700_000_000.0
on_postgres = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


def accept(store, event_id, *delivery_ids):
    body = event_id.encode()
    event = NewEvent(
        event_id, "wandb", "/webhooks/wandb", T0, body, hashlib.sha256(body).hexdigest()
    )
    deliveries = [NewDelivery(d, "route", "acme/svc", "DEPLOY", "{}") for d in delivery_ids]
    store.accept(event, deliveries, 0)


def finish_all(store, state, at=T0):
    for c in store.claim("w", 100, 60, at):
        attempt = Attempt(c.attempt, at, at, 404, "dead", "Not Found", None, "w")
        store.finish(c, "w", attempt, state, at)


def test_replay_leaves_queued_and_in_flight_deliveries_alone_and_says_so(store):
    accept(store, "evt_1", "dlv_1", "dlv_2")
    finish_all(store, "dead")
    assert store.replay("evt_1", T0 + 1).queued == ["dlv_1", "dlv_2"]
    (in_flight,) = store.claim("w", 1, 60, T0 + 2)
    before = {d.id: d for d in store.get_event("evt_1").deliveries}

    again = store.replay("evt_1", T0 + 3)

    assert again.queued == []
    assert again.pending == ["dlv_1", "dlv_2"]
    after = {d.id: d for d in store.get_event("evt_1").deliveries}
    assert after == before  # nothing changed: not the state, the due time or the attempts
    assert after[in_flight.id].state == "in_flight"
    assert {d.state for d in after.values()} == {"in_flight", "queued"}


def test_replay_says_what_it_queued_and_what_was_pending_already(store):
    accept(store, "evt_1", "dlv_1", "dlv_2")
    finish_all(store, "delivered")
    store.replay("evt_1", T0 + 1)
    c = {c.id: c for c in store.claim("w", 10, 60, T0 + 2)}["dlv_2"]  # dlv_1 stays in flight
    store.finish(c, "w", Attempt(c.attempt, T0, T0, 204, "ok", "", None, "w"), "delivered", T0)

    replayed = store.replay("evt_1", T0 + 3)

    assert (replayed.queued, replayed.pending) == (["dlv_2"], ["dlv_1"])
    with pytest.raises(NotFound):
        store.replay("evt_nope", T0)


def test_many_replays_at_once_queue_a_dead_delivery_once(store_factory):
    first = store_factory()
    accept(first, "evt_1", "dlv_1")
    finish_all(first, "dead")
    stores = [store_factory() for _ in range(30)]
    for s in stores:
        s.stats()  # connected before the race
    queued: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(30)

    def replay(n: int) -> None:
        try:
            start.wait()
            queued.extend(stores[n].replay("evt_1", T0 + 1).queued)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=replay, args=(n,)) for n in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert queued == ["dlv_1"]
    assert store_factory().replay_dead(T0 + 2) == []


def waiting_for_a_lock(url: str) -> int:
    """How many sessions on the database wait for a lock another holds."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        return int(row[0]) if row else 0


@pytest.mark.postgres
@on_postgres
@pytest.mark.parametrize("how", ["event", "dead"])
def test_replay_and_prune_at_once_leave_no_lie_and_no_orphan(store_factory, store_url, how):
    """Prune has chosen an event to delete when a replay queues one of its deliveries
    again: either the replay wins (the event stays, its delivery queued) or the prune
    does (the replay finds nothing), never a replay that says "queued" of a deleted one."""
    store = store_factory()
    event_id = new_id("evt", T0)
    accept(store, event_id, "dlv_1")
    finish_all(store, "dead")
    results: dict[str, object] = {}

    def run(name, call):
        try:
            results[name] = call()
        except NotFound as exc:
            results[name] = exc

    # Hold up the prune once it is under way: an outside session locks the attempts it
    # is about to delete.
    with psycopg.connect(store_url) as blocker:
        blocker.execute("SELECT 1 FROM attempts FOR UPDATE")
        prune = threading.Thread(target=run, args=("prune", lambda: store.prune(T0 + 86400)))
        prune.start()
        wait_until(lambda: waiting_for_a_lock(store_url) == 1, what="the prune waited", timeout=10)
        other = store_factory()
        if how == "event":
            call = lambda: other.replay(event_id, T0 + 1).queued  # noqa: E731
        else:
            call = lambda: other.replay_dead(T0 + 1)  # noqa: E731
        replay = threading.Thread(target=run, args=("replay", call))
        replay.start()
        wait_until(
            lambda: not replay.is_alive() or waiting_for_a_lock(store_url) == 2,
            what="the replay finished or waited",
            timeout=10,
        )
        blocker.rollback()
    prune.join(10)
    replay.join(10)

    left = {d.id: d.state for e in store.list_events(None, 10) for d in e.deliveries}
    if results["prune"] == 1:  # the prune won: the replay queued nothing
        assert left == {}
        assert results["replay"] == [] or isinstance(results["replay"], NotFound)
    else:  # the replay won: the event and its queued delivery stay
        assert results["prune"] == 0
        assert left == {"dlv_1": "queued"}
        assert results["replay"] == ["dlv_1"]
