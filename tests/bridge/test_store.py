"""The store's semantics, run against every backend (see conftest's ``store`` fixture)."""

import hashlib
import os
import socket
import threading
import time

import psycopg
import pytest

from bridge.errors import NotFound, StoreUnavailable
from bridge.store import open_store
from bridge.store.models import (
    ABANDONED,
    DEAD,
    DELIVERED,
    IN_FLIGHT,
    QUEUED,
    Attempt,
    NewDelivery,
    NewEvent,
)
from bridge.store.postgres import PostgresStore

T0 = 1_700_000_000.0


def event(eid, body=b'{"a": 1}', source="wandb", at=T0):
    return NewEvent(eid, source, "/webhooks/wandb", at, body, hashlib.sha256(body).hexdigest())


def delivery(did, repo="acme/svc"):
    return NewDelivery(did, "route", repo, "DEPLOY", '{"k":"v"}')


def test_migrate_is_idempotent_and_versioned(store):
    store.migrate()
    store.migrate()
    assert store.schema_version() >= 1


def test_accept_then_claim_deliver(store):
    assert store.accept(event("evt_1"), [delivery("dlv_1")], 600).duplicate_of is None
    (c,) = store.claim("w1", 10, 60, T0 + 1)
    assert (c.id, c.attempt, c.repository, c.client_payload) == (
        "dlv_1",
        1,
        "acme/svc",
        '{"k":"v"}',
    )
    assert store.claim("w2", 10, 60, T0 + 2) == []  # leased to w1
    ok = Attempt(1, T0 + 1, T0 + 2, 204, "delivered", "delivered", None, "w1")
    assert store.finish(c, "w1", ok, DELIVERED, T0 + 2)
    ev = store.get_event("evt_1")
    (d,) = ev.deliveries
    assert d.state == DELIVERED and d.attempts == 1 and d.history[0].status == 204
    assert ev.body == b'{"a": 1}'


def test_dedupe_window(store):
    body = b'{"same": true}'
    assert store.accept(event("evt_1", body), [], 600).duplicate_of is None
    assert store.accept(event("evt_2", body, at=T0 + 10), [], 600).duplicate_of == "evt_1"
    assert (
        store.accept(event("evt_3", body, source="other", at=T0 + 10), [], 600).duplicate_of is None
    )
    assert store.accept(event("evt_4", body, at=T0 + 601), [], 600).duplicate_of is None
    assert store.accept(event("evt_5", body, at=T0 + 602), [], 600).duplicate_of == "evt_4"
    assert store.accept(event("evt_6", body, at=T0 + 603), [], 0).duplicate_of is None
    with pytest.raises(NotFound):
        store.get_event("evt_2")


def test_concurrent_identical_accepts_store_one(store_factory):
    body = b'{"race": 1}'
    results = []
    barrier = threading.Barrier(8)

    def go(i):
        s = store_factory()
        barrier.wait()
        results.append(s.accept(event(f"evt_{i}", body), [delivery(f"dlv_{i}")], 600))
        s.close()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    originals = [r for r in results if r.duplicate_of is None]
    assert len(originals) == 1
    assert {r.duplicate_of for r in results if r.duplicate_of} == {originals[0].event_id}


def test_retry_schedule_and_expired_lease(store):
    store.accept(event("evt_1"), [delivery("dlv_1")], 600)
    (c,) = store.claim("w1", 1, 30, T0)
    retry = Attempt(1, T0, T0, 502, "retry", "GitHub answered 502", 5.0, "w1")
    store.finish(c, "w1", retry, QUEUED, T0 + 5)
    assert store.claim("w1", 1, 30, T0 + 4) == []
    assert store.next_due() == T0 + 5
    (c2,) = store.claim("w1", 1, 30, T0 + 5)
    assert c2.attempt == 2
    # w1 dies holding the lease; w2 takes over after it expires, and says so in the history
    assert store.claim("w2", 1, 30, T0 + 34) == []
    (c3,) = store.claim("w2", 1, 30, T0 + 36)
    assert c3.attempt == 3
    late = Attempt(2, T0 + 5, T0 + 40, 204, "delivered", "delivered", None, "w1")
    assert not store.finish(c2, "w1", late, DELIVERED, T0 + 40)  # lease lost
    (d,) = store.get_event("evt_1").deliveries
    assert d.state == IN_FLIGHT
    # every attempt is on record: the abandoned lease and w1's late answer alike
    assert [(a.attempt, a.outcome) for a in d.history] == [
        (1, "retry"),
        (2, ABANDONED),
        (2, "delivered"),
    ]


def test_dead_and_replay(store):
    store.accept(event("evt_1"), [delivery("dlv_1"), delivery("dlv_2", "acme/other")], 600)
    for c in store.claim("w", 10, 60, T0):
        store.finish(c, "w", Attempt(1, T0, T0, 404, "dead", "Not Found", None, "w"), DEAD, T0)
    assert store.stats().by_state[DEAD] == 2
    assert [e.id for e in store.list_events(DEAD, 10)] == ["evt_1"]
    assert store.list_events(QUEUED, 10) == []
    assert sorted(store.replay_dead(T0 + 1)) == ["dlv_1", "dlv_2"]
    claimed = store.claim("w", 10, 60, T0 + 1)
    assert {c.round_attempts for c in claimed} == {1} and {c.attempt for c in claimed} == {2}
    with pytest.raises(NotFound):
        store.replay("evt_nope", T0)
    assert store.replay("evt_1", T0) == []  # nothing finished to replay: both are in flight


def test_a_version_1_store_migrates_with_its_rows(store_factory):
    store = store_factory()  # migrated by the fixture: start again from an empty schema
    latest = store.migrations
    assert len(latest) >= 2
    _drop_everything(store)
    store.migrations = latest[:1]
    store.migrate()
    assert store.schema_version() == 1
    store.accept(event("evt_1"), [delivery("dlv_1"), delivery("dlv_2", "acme/x")], 600)
    store.accept(event("evt_2", body=b"2", at=T0 + 1), [delivery("dlv_3")], 600)
    c1, c2 = store.claim("w", 10, 60, T0)  # evt_1's two; evt_2's is not due yet
    ok = Attempt(1, T0, T0, 204, "delivered", "delivered", None, "w")
    store.finish(c1, "w", ok, DELIVERED, T0)
    store.finish(c2, "w", Attempt(1, T0, T0, 404, "dead", "gone", None, "w"), DEAD, T0)
    store.migrations = latest
    store.migrate()
    assert store.schema_version() == len(latest)
    assert store.stats().by_state == {QUEUED: 1, IN_FLIGHT: 0, DELIVERED: 1, DEAD: 1}
    assert [e.id for e in store.list_events(DEAD, 10)] == ["evt_1"]
    assert store.replay_dead(T0 + 1) == [c2.id]
    assert store.stats().by_state == {QUEUED: 2, IN_FLIGHT: 0, DELIVERED: 1, DEAD: 0}


def _drop_everything(store):
    with store._transaction() as cur:
        for table in ("attempts", "deliveries", "dedupe", "events", "schema_version"):
            cur.execute(f"DROP TABLE {table}")


def test_stats_and_list_order(store):
    for i in range(3):
        store.accept(event(f"evt_{i}", body=b"%d" % i, at=T0 + i), [delivery(f"dlv_{i}")], 600)
    assert [e.id for e in store.list_events(None, 2)] == ["evt_2", "evt_1"]
    stats = store.stats()
    assert stats.by_state[QUEUED] == 3 and stats.oldest_queued_at == T0


def test_waiter_is_woken_by_accept(store):
    waiter = store.waiter()
    try:
        assert not waiter.wait(0.05)
        store.accept(event("evt_w"), [delivery("dlv_w")], 600)
        assert waiter.wait(5)
    finally:
        waiter.close()


def test_concurrent_claims_are_disjoint(store_factory):
    store_factory().accept(event("evt_1"), [delivery(f"dlv_{i:02}") for i in range(24)], 600)
    claimed, barrier = [], threading.Barrier(6)

    def go(i):
        s = store_factory()
        barrier.wait()
        while batch := s.claim(f"w{i}", 3, 60, T0):
            claimed.extend(c.id for c in batch)
        s.close()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == [f"dlv_{i:02}" for i in range(24)]


def test_replicas_migrate_at_once(store_url):
    stores = [open_store(store_url) for _ in range(4)]
    barrier, errors = threading.Barrier(4), []

    def go(s):
        barrier.wait()
        try:
            s.migrate()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == [] and {s.schema_version() for s in stores} == {len(stores[0].migrations)}
    finally:
        for s in stores:
            s.close()


def test_store_works_in_a_forked_child_and_after(store):
    store.ping()
    pid = os.fork()
    if pid == 0:  # the child: its own connection; closing must not end the parent's
        code = 1
        try:
            store.accept(event("evt_child"), [], 600)
            store.close()
            code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
    assert store.get_event("evt_child").id == "evt_child"


# -- PostgreSQL only ------------------------------------------------------------------------

on_postgres = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


@pytest.mark.postgres
def test_postgres_notify_wakes_every_replica_on_commit_only(postgres_url):
    writer, a, b = (open_store(postgres_url) for _ in range(3))
    writer.migrate()
    waiters = [a.waiter(), b.waiter()]
    try:
        writer.accept(event("evt_1"), [delivery("dlv_1")], 0)
        assert all(w.wait(5) for w in waiters)
        assert not any(w.wait(0.05) for w in waiters)  # all pending were consumed
        with pytest.raises(StoreUnavailable):  # the same event id again: rolled back
            writer.accept(event("evt_1"), [delivery("dlv_2")], 0)
        assert not any(w.wait(0.2) for w in waiters)
    finally:
        for w in waiters:
            w.close()
        for s in (writer, a, b):
            s.close()


@pytest.mark.postgres
@on_postgres
def test_postgres_claim_skips_rows_locked_by_another_replica(store, postgres_url):
    store.accept(event("evt_1"), [delivery("dlv_1"), delivery("dlv_2")], 600)
    with psycopg.connect(postgres_url) as other:
        other.execute("SELECT id FROM deliveries WHERE id = 'dlv_1' FOR UPDATE")
        started = time.monotonic()
        assert [c.id for c in store.claim("w", 10, 60, T0)] == ["dlv_2"]
        assert time.monotonic() - started < 2  # skipped, not waited for
    assert [c.id for c in store.claim("w", 10, 60, T0)] == ["dlv_1"]


@pytest.mark.postgres
@on_postgres
def test_postgres_reconnects_after_the_connection_breaks(store, postgres_url):
    waiter = store.waiter()
    try:
        store.ping()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StoreUnavailable):
            store.ping()  # this transaction finds the connection gone...
        store.ping()  # ...the next one opens another
        with pytest.raises(StoreUnavailable):
            waiter.wait(5)
        assert waiter.wait(5)  # listening again; a wake-up may have been missed meanwhile
        store.accept(event("evt_1"), [delivery("dlv_1")], 600)
        assert waiter.wait(5)
    finally:
        waiter.close()


@pytest.mark.postgres
def test_postgres_unreachable_is_store_unavailable_without_the_password():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = PostgresStore(f"postgresql://bridge:pw-s3cr3t@127.0.0.1:{port}/bridgedb")
    try:
        with pytest.raises(StoreUnavailable) as info:
            store.ping()
        assert f"127.0.0.1:{port}/bridgedb" in str(info.value)
        assert "pw-s3cr3t" not in str(info.value)
        waiter = store.waiter()  # no server yet: the waiter says so when asked to wait
        with pytest.raises(StoreUnavailable):
            waiter.wait(0.1)
        waiter.close()
    finally:
        store.close()


def test_sqlite_checkpoints_after_the_write_lock_once_the_wal_is_long(tmp_path, monkeypatch):
    from bridge.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_FRAMES", 60)
    store = open_store(f"sqlite:///{tmp_path}/b.db")
    store.migrate()
    checkpoints = []
    real = store._checkpoint_if_due

    def spy():
        assert not store._writers._threads.locked()  # never inside the write lock
        before = store._wal.pending_frames()
        real()
        checkpoints.append((before, store._wal.pending_frames()))

    store._checkpoint_if_due = spy
    try:
        for i in range(60):
            store.accept(event(f"evt_{i:03d}", body=b"%d" % i), [delivery(f"dlv_{i:03d}")], 600)
        seen = [pending for pending, _ in checkpoints]
        assert max(seen) >= 60  # the WAL did reach the threshold ...
        assert all(
            after == 0 for before, after in checkpoints if before >= 60
        )  # ... and was copied back
        assert max(seen) < 60 + 20  # one accept writes a handful of frames, not more
        assert len(store.list_events(None, 100)) == 60
    finally:
        store.close()
