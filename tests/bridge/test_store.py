"""The store's semantics, run against every backend (see conftest's ``store`` fixture)."""

import hashlib
import os
import socket
import sqlite3
import threading
import time
from contextlib import closing

import psycopg
import pytest

from bridge.errors import NotFound, StoreUnavailable
from bridge.ids import new_id
from bridge.store import open_store
from bridge.store.models import Attempt, NewDelivery, NewEvent
from bridge.store.postgres import PostgresStore

T0 = 1_700_000_000.0
SVC_A = "/repos/acme/svc-a/dispatches"
SVC_B = "/repos/acme/svc-b/dispatches"


def event(eid, body=b'{"a": 1}', source="wandb", at=T0, endpoint="/webhooks/wandb"):
    return NewEvent(eid, source, endpoint, at, body, hashlib.sha256(body).hexdigest())


def delivery(did, repo="acme/svc"):
    return NewDelivery(did, "route", repo, "DEPLOY", '{"k":"v"}')


def committed(store_url, query):
    """The one value ``query`` reads on a connection of the test's own: only what the
    store committed."""
    if store_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(store_url.removeprefix("sqlite:///"))) as conn:
            return conn.execute(query).fetchone()[0]
    with psycopg.connect(store_url) as conn:
        return conn.execute(query).fetchone()[0]


def schema_version(store_url):
    """The version a store was migrated to."""
    return committed(store_url, "SELECT MAX(version) FROM schema_version")


def test_migrate_is_idempotent_and_versioned(store, store_url):
    store.migrate()
    store.migrate()
    assert schema_version(store_url) == len(store.migrations)


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
    assert store.finish(c, "w1", ok, "delivered", T0 + 2)
    ev = store.get_event("evt_1")
    (d,) = ev.deliveries
    assert d.state == "delivered" and d.attempts == 1 and d.history[0].status == 204
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


def test_dedupe_is_per_request_path(store):
    body = b'{"event_type": "DEPLOY", "client_payload": {}}'

    def accept(eid, endpoint, at=T0):
        return store.accept(event(eid, body, at=at, endpoint=endpoint), [delivery(eid)], 600)

    assert accept("evt_a", SVC_A).duplicate_of is None
    assert accept("evt_b", SVC_B).duplicate_of is None  # another repository: another event
    assert accept("evt_w", "/webhooks/wandb").duplicate_of is None
    assert accept("evt_a2", SVC_A, T0 + 5).duplicate_of == "evt_a"
    assert accept("evt_b2", SVC_B, T0 + 6).duplicate_of == "evt_b"
    assert {e.id for e in store.list_events(None, 10)} == {"evt_a", "evt_b", "evt_w"}
    assert store.stats().by_state["queued"] == 3


def test_concurrent_identical_accepts_store_one_per_path(store_factory):
    body = b'{"race": 1}'
    results = []
    barrier = threading.Barrier(8)

    def go(i):
        s = store_factory()
        barrier.wait()
        endpoint = (SVC_A, SVC_B)[i % 2]
        accepted = s.accept(event(f"evt_{i}", body, endpoint=endpoint), [delivery(f"d{i}")], 600)
        results.append((endpoint, accepted))
        s.close()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for endpoint in (SVC_A, SVC_B):
        mine = [a for e, a in results if e == endpoint]
        (original,) = [a.event_id for a in mine if a.duplicate_of is None]
        assert {a.duplicate_of for a in mine if a.duplicate_of} == {original}


def test_retry_schedule_and_expired_lease(store):
    store.accept(event("evt_1"), [delivery("dlv_1")], 600)
    (c,) = store.claim("w1", 1, 30, T0)
    retry = Attempt(1, T0, T0, 502, "retry", "GitHub answered 502", 5.0, "w1")
    store.finish(c, "w1", retry, "queued", T0 + 5)
    assert store.claim("w1", 1, 30, T0 + 4) == []
    assert store.next_due() == T0 + 5
    (c2,) = store.claim("w1", 1, 30, T0 + 5)
    assert c2.attempt == 2
    # w1 dies holding the lease; w2 takes over after it expires, and says so in the history
    assert store.claim("w2", 1, 30, T0 + 34) == []
    (c3,) = store.claim("w2", 1, 30, T0 + 36)
    assert c3.attempt == 3
    late = Attempt(2, T0 + 5, T0 + 40, 204, "delivered", "delivered", None, "w1")
    assert not store.finish(c2, "w1", late, "delivered", T0 + 40)  # lease lost
    (d,) = store.get_event("evt_1").deliveries
    assert d.state == "in_flight"
    # every attempt is on record: the abandoned lease (w1's) and w1's late answer alike
    assert [(a.attempt, a.outcome, a.worker) for a in d.history] == [
        (1, "retry", "w1"),
        (2, "abandoned", "w1"),
        (2, "delivered", "w1"),
    ]


def test_dead_and_replay(store):
    store.accept(event("evt_1"), [delivery("dlv_1"), delivery("dlv_2", "acme/other")], 600)
    for c in store.claim("w", 10, 60, T0):
        store.finish(c, "w", Attempt(1, T0, T0, 404, "dead", "Not Found", None, "w"), "dead", T0)
    assert store.stats().by_state["dead"] == 2
    assert [e.id for e in store.list_events("dead", 10)] == ["evt_1"]
    assert store.list_events("queued", 10) == []
    assert sorted(store.replay_dead(T0 + 1)) == ["dlv_1", "dlv_2"]
    claimed = store.claim("w", 10, 60, T0 + 1)
    assert {c.round_attempts for c in claimed} == {1} and {c.attempt for c in claimed} == {2}
    with pytest.raises(NotFound):
        store.replay("evt_nope", T0)
    assert store.replay("evt_1", T0).queued == []  # nothing finished: both are in flight


def test_stats_and_list_order(store):
    for i in range(3):
        store.accept(event(f"evt_{i}", body=b"%d" % i, at=T0 + i), [delivery(f"dlv_{i}")], 600)
    assert [e.id for e in store.list_events(None, 2)] == ["evt_2", "evt_1"]
    stats = store.stats()
    assert stats.by_state["queued"] == 3 and stats.oldest_queued_at == T0


def test_prune_dedupe_forgets_old_rows_only(store):
    store.accept(event("evt_1", b"1"), [], 600)
    store.accept(event("evt_2", b"2", at=T0 + 100), [], 600)
    assert store.prune_dedupe(T0 + 50) == 1
    assert store.accept(event("evt_3", b"1", at=T0 + 101), [], 600).duplicate_of is None
    assert store.accept(event("evt_4", b"2", at=T0 + 101), [], 600).duplicate_of == "evt_2"


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


# -- rate-limit pauses and readiness ---------------------------------------------------------


def test_a_pause_is_shared_and_keeps_the_later_end(store_factory):
    a, b = store_factory(), store_factory()
    assert a.paused_until("app:1", T0) is None
    a.pause("app:1", T0 + 60)
    assert b.paused_until("app:1", T0) == T0 + 60  # another store object sees it
    b.pause("app:1", T0 + 30)  # an earlier end does not shorten the pause
    assert a.paused_until("app:1", T0) == T0 + 60
    b.pause("app:1", T0 + 90)
    assert a.paused_until("app:1", T0 + 60) == T0 + 90
    assert a.paused_until("app:1", T0 + 90) is None  # over at its end
    assert a.paused_until("token:2", T0) is None  # per credential


def _beat_at(store_url):
    """The heartbeat as another connection sees it: only what was committed."""
    return committed(store_url, "SELECT beat_at FROM heartbeat WHERE id = 1")


def test_check_writable_commits_a_heartbeat(store, store_url):
    store.check_writable(T0)
    assert _beat_at(store_url) == T0
    store.check_writable(T0 + 1)
    assert _beat_at(store_url) == T0 + 1
    store.accept(event("evt_1"), [delivery("dlv_1")], 600)  # and leaves the store as it was
    assert store.stats().by_state["queued"] == 1


# -- migrations ---------------------------------------------------------------------------


@pytest.mark.parametrize("start", [1, 2])
def test_an_older_store_migrates_with_its_rows(store_url, start):
    """A store at an older version (dedupe per source and body, before pauses and the
    heartbeat) keeps its events, deliveries and dedupe rows; each dedupe row takes its
    event's request path."""
    store = open_store(store_url)
    try:
        latest = store.migrations
        store.migrations = latest[:start]
        store.migrate()
        assert schema_version(store_url) == start
        _insert_old_rows(store)
        store.migrations = latest
        store.migrate()
        assert schema_version(store_url) == len(latest)
        assert store.stats().by_state == {"queued": 1, "in_flight": 0, "delivered": 1, "dead": 1}
        # the old dedupe row now has evt_1's path: a repeat there is a duplicate ...
        again = store.accept(event("evt_9", b"same", at=T0 + 10, endpoint=SVC_A), [], 600)
        assert again.duplicate_of == "evt_1"
        # ... the same body to another path is an event of its own
        other = store.accept(event("evt_8", b"same", at=T0 + 10, endpoint=SVC_B), [], 600)
        assert other.duplicate_of is None
        assert [e.id for e in store.list_events("dead", 10)] == ["evt_1"]
        assert store.replay_dead(T0 + 1) == ["dlv_3"]
        assert [c.id for c in store.claim("w", 10, 60, T0 + 1)] == ["dlv_1", "dlv_3"]
        store.check_writable(T0 + 2)
        store.pause("app:1", T0 + 60)
        assert store.paused_until("app:1", T0) == T0 + 60
    finally:
        store.close()


def _insert_old_rows(store):
    """Rows as the bridge wrote them before migration 3, with its statements."""
    digest = hashlib.sha256(b"same").hexdigest()
    with store._transaction() as tx:
        tx.run(
            "INSERT INTO events (id, source, endpoint, received_at, body_sha256, body) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ("evt_1", "wandb", SVC_A, T0, digest, b"same"),
        )
        tx.run(
            "INSERT INTO dedupe (source, body_sha256, event_id, seen_at) VALUES (?, ?, ?, ?)",
            ("wandb", digest, "evt_1", T0),
        )
        for did, state, finished in (
            ("dlv_1", "queued", None),
            ("dlv_2", "delivered", T0),
            ("dlv_3", "dead", T0),
        ):
            tx.run(
                "INSERT INTO deliveries (id, event_id, route, repository, event_type, "
                "client_payload, state, due_at, attempts, round_attempts, round_started_at, "
                "created_at, updated_at, finished_at) "
                "VALUES (?, ?, 'r', 'acme/svc-a', 'DEPLOY', '{}', ?, ?, 0, 0, ?, ?, ?, ?)",
                (did, "evt_1", state, T0, T0, T0, T0, finished),
            )


def test_a_newer_schema_is_refused(store):
    with store._transaction() as tx:
        tx.run("INSERT INTO schema_version (version) VALUES (?)", (len(store.migrations) + 1,))
    with pytest.raises(StoreUnavailable, match="newer than this bridge knows"):
        store.migrate()


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
        assert errors == [] and schema_version(store_url) == len(stores[0].migrations)
    finally:
        for s in stores:
            s.close()


def test_store_works_in_a_forked_child_and_after(store):
    store.stats()  # connected
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
    store.stats()  # connected
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    # the pool tests a connection before lending it: the dead one is replaced, unseen
    store.stats()
    store.check_writable(T0)


@pytest.mark.postgres
@on_postgres
def test_postgres_transaction_on_a_connection_that_dies_is_unavailable_then_recovers(
    store, postgres_url
):
    store.accept(event("evt_1"), [delivery("dlv_1")], 600)
    (claimed,) = store.claim("w", 10, 60, T0)
    attempt = Attempt(1, T0, T0 + 1, 204, "delivered", "", None, "w")
    with pytest.raises(StoreUnavailable), store._transaction() as tx:
        pid = tx.run("SELECT pg_backend_pid()").fetchone()[0]
        tx.run("UPDATE deliveries SET state = 'dead' WHERE id = 'dlv_1'")
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        tx.run("SELECT 1")
    # nothing of the broken transaction was kept, and the next one gets a live connection
    assert store.finish(claimed, "w", attempt, "delivered", T0 + 1)
    assert [h.outcome for h in store.get_event("evt_1").deliveries[0].history] == ["delivered"]


@pytest.mark.postgres
def test_postgres_unreachable_is_store_unavailable_without_the_password():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = PostgresStore(f"postgresql://bridge:pw-s3cr3t@127.0.0.1:{port}/bridgedb")
    try:
        for check in (store.stats, lambda: store.check_writable(T0)):
            with pytest.raises(StoreUnavailable) as info:
                check()
            assert f"127.0.0.1:{port}/bridgedb" in str(info.value)
            assert "pw-s3cr3t" not in str(info.value)
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_many_threads_share_a_few_postgres_connections(store, postgres_url):
    from bridge.store.postgres import POOL_SIZE

    barrier = threading.Barrier(40)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            for j in range(5):
                body = f"{i}-{j}".encode()
                store.accept(
                    NewEvent(
                        f"evt_{i}_{j}",
                        "w",
                        "/webhooks/w",
                        time.time(),
                        body,
                        hashlib.sha256(body).hexdigest(),
                    ),
                    [NewDelivery(f"dlv_{i}_{j}", "r", "acme/x", "E", "{}")],
                    600,
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.stats().by_state.get("queued") == 200
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        (held,) = admin.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'wandb-bridge' AND datname = current_database()"
        ).fetchone()
    # the pool's connections, plus the wake-up listener's one
    assert held <= POOL_SIZE + 1


def test_prune_removes_only_finished_events_past_retention(store):
    old, new = T0 - 90 * 86400, T0
    ids = {
        name: new_id("evt", at)
        for name, at in (
            ("old_done", old),
            ("old_queued", old),
            ("old_empty", old),
            ("new_done", new),
        )
    }
    store.accept(event(ids["old_done"], body=b"old_done", at=old), [delivery("dlv_a")], 600)
    store.accept(event(ids["old_queued"], body=b"old_queued", at=old), [delivery("dlv_b")], 600)
    store.accept(event(ids["old_empty"], body=b"old_empty", at=old), [], 600)
    store.accept(event(ids["new_done"], body=b"new_done", at=new), [delivery("dlv_c")], 600)
    for c in store.claim("w", 10, 60, T0):
        if c.id in ("dlv_a", "dlv_c"):
            ok = Attempt(c.attempt, T0, T0, 204, "delivered", "ok")
            store.finish(c, "w", ok, "delivered", T0)
    assert store.prune(T0 - 30 * 86400, dry_run=True) == 2
    assert store.get_event(ids["old_done"])  # a dry run deletes nothing
    assert store.prune(T0 - 30 * 86400, batch=1) == 1
    assert store.prune(T0 - 30 * 86400, batch=10) == 1
    assert store.prune(T0 - 30 * 86400) == 0
    with pytest.raises(NotFound):
        store.get_event(ids["old_done"])
    with pytest.raises(NotFound):
        store.get_event(ids["old_empty"])
    assert store.get_event(ids["old_queued"]).deliveries[0].state == "in_flight"
    assert store.get_event(ids["new_done"])


def test_an_upgrade_of_the_schema_is_logged_once_committed(tmp_path, caplog):
    """An operator's record of an upgrade: one "store upgraded" line with both versions,
    and none when the schema was already current or created anew."""
    from bridge.logs import fields_of

    url = f"sqlite:///{tmp_path}/bridge.db"
    older = open_store(url)
    latest = len(older.migrations)
    older.migrations = older.migrations[:-1]
    with caplog.at_level("INFO", logger="bridge.store"):
        older.migrate()  # created anew at the version before: no upgrade to report
        older.close()
        store = open_store(url)
        store.migrate()
        store.migrate()  # already current: nothing more
        store.close()
    upgraded = [r for r in caplog.records if r.getMessage() == "store upgraded"]
    assert len(upgraded) == 1
    assert fields_of(upgraded[0]) == {
        "store": fields_of(upgraded[0])["store"],
        "schema_from": latest - 1,
        "schema_to": latest,
    }
    assert "bridge.db" in str(fields_of(upgraded[0])["store"])
