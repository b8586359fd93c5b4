"""Waking delivery workers: in this process directly, from others through the pipe or
LISTEN; and a wake-up that fails never fails the request whose event is committed."""

import logging
import os
import socket
import threading
import time

import psycopg
import pytest

from bridge.errors import StoreUnavailable
from bridge.store import open_store, wake
from bridge.store.models import Attempt
from bridge.store.postgres import CHANNEL
from tests.bridge.test_store import T0, delivery, event

LISTENERS = "store-wake-listener"


def test_waiter_is_woken_by_accept(store):
    waiter = store.waiter()
    try:
        assert not waiter.wait(0.05)
        store.accept(event("evt_w"), [delivery("dlv_w")], 600)
        assert waiter.wait(5)
        assert not waiter.wait(0.3)  # once: its own pipe byte or NOTIFY rings no more
    finally:
        waiter.close()


def test_a_commit_wakes_waiters_of_every_store_object_in_the_process(store_factory):
    writer, reader_a, reader_b = store_factory(), store_factory(), store_factory()
    waiters = [reader_a.waiter(), reader_b.waiter()]
    try:
        writer.accept(event("evt_1"), [delivery("dlv_1")], 600)
        assert all(w.wait(5) for w in waiters)
        assert not any(w.wait(0.05) for w in waiters)
    finally:
        for w in waiters:
            w.close()


def test_closing_a_waiter_ends_a_wait_in_progress(store):
    # How a stopping delivery worker gets its listener thread back without a polling tick.
    waiter, other = store.waiter(), store.waiter()
    answers: list[bool] = []
    thread = threading.Thread(target=lambda: answers.append(waiter.wait(3600)))
    thread.start()
    try:
        time.sleep(0.1)
        waiter.close()
        thread.join(30)
        assert not thread.is_alive() and answers == [False]
        assert not waiter.wait(3600)  # a closed waiter never blocks again
        store.accept(event("evt_c"), [delivery("dlv_c")], 600)
        assert other.wait(5)  # the other waiter of the process still hears commits
    finally:
        waiter.close()  # closing twice is harmless
        other.close()
        thread.join(1)


def test_sqlite_wakes_in_process_without_the_pipe(tmp_path, caplog):
    store = open_store(f"sqlite:///{tmp_path}/b.db")
    store.migrate()
    os.mkdir(store.wake_path)  # no pipe can be made there: only the in-process bell is left
    waiter = store.waiter()
    try:
        with caplog.at_level(logging.WARNING, "bridge.store.wake"):
            store.accept(event("evt_1"), [delivery("dlv_1")], 600)
            started = time.monotonic()
            assert waiter.wait(5)
            assert time.monotonic() - started < 0.5
            _eventually(lambda: "is not a named pipe" in caplog.text or "Is a dir" in caplog.text)
    finally:
        waiter.close()
        store.close()


def test_finish_into_queued_and_replay_wake_too(store):
    store.accept(event("evt_1"), [delivery("dlv_1")], 600)
    waiter = store.waiter()
    try:
        (c,) = store.claim("w", 1, 60, T0)
        retry = Attempt(1, T0, T0, 502, "retry", "502", 5.0, "w")
        assert store.finish(c, "w", retry, "queued", T0 + 5)
        assert waiter.wait(5)
        (c,) = store.claim("w", 1, 60, T0 + 5)
        assert not waiter.wait(0.05)  # a claim queues nothing
        dead = Attempt(2, T0 + 5, T0 + 5, 404, "dead", "404", None, "w")
        store.finish(c, "w", dead, "dead", T0 + 5)
        assert not waiter.wait(0.05)  # nor does a delivery going dead
        store.replay("evt_1", T0 + 6)
        assert waiter.wait(5)
    finally:
        waiter.close()


def test_a_rolled_back_transaction_wakes_nobody(store):
    store.accept(event("evt_1"), [delivery("dlv_1")], 0)
    waiter = store.waiter()
    try:
        with pytest.raises(StoreUnavailable):  # the same event id again: rolled back
            store.accept(event("evt_1"), [delivery("dlv_2")], 0)
        assert not waiter.wait(0.3)
    finally:
        waiter.close()


def test_an_event_without_deliveries_wakes_nobody(store):
    waiter = store.waiter()
    try:
        store.accept(event("evt_1"), [], 600)
        assert not waiter.wait(0.3)
    finally:
        waiter.close()


def test_a_failing_wake_up_does_not_fail_the_committed_accept(store, monkeypatch, caplog):
    def broken():
        raise RuntimeError("wake-up broke")

    monkeypatch.setattr(store, "_announce_committed", broken)
    with caplog.at_level(logging.ERROR, "bridge.store.sql"):
        accepted = store.accept(event("evt_1"), [delivery("dlv_1")], 600)
    assert accepted.duplicate_of is None
    assert store.get_event("evt_1").deliveries[0].state == "queued"
    assert "wake-up broke" in caplog.text


def test_listener_threads_stop_when_their_waiters_close(store):
    waiters = [store.waiter() for _ in range(3)]
    assert _listeners(store) == 1  # one per process and database, however many waiters
    for w in waiters:
        w.close()
        w.close()  # twice is harmless
    _eventually(lambda: _listeners(store) == 0)
    waiter = store.waiter()  # and a new waiter starts one again
    try:
        assert _listeners(store) == 1
        store.accept(event("evt_1"), [delivery("dlv_1")], 600)
        assert waiter.wait(5)
    finally:
        waiter.close()


def _listeners(store):
    return sum(
        t.name == LISTENERS and wake.bell(store.database)._listener is t
        for t in threading.enumerate()
    )


def _eventually(check, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# -- notify(): the SQLite pipe writer never fails and never blocks ----------------------------


def test_notify_wakes_a_listener_on_the_pipe(tmp_path):
    path = str(tmp_path / "w")
    fd = wake._open_pipe(path)
    try:
        wake.notify(path)
        assert os.read(fd, 100) == wake.process_token()
    finally:
        os.close(fd)


def test_notify_never_raises(tmp_path):
    regular = tmp_path / "regular"
    regular.write_bytes(b"keep me")
    directory = tmp_path / "dir"
    directory.mkdir()
    fifo = str(tmp_path / "nobody-reads")
    os.mkfifo(fifo)
    for path in (
        str(regular),
        str(directory),
        str(tmp_path / "missing"),
        str(tmp_path / "no" / "such" / "dir"),
        fifo,  # a pipe nobody listens on: ENXIO
        str(tmp_path / ("x" * 5000)),  # ENAMETOOLONG
        str(tmp_path / "nul\0byte"),  # ValueError, not OSError
        "",
    ):
        started = time.monotonic()
        assert wake.notify(path) is None
        assert time.monotonic() - started < 1
    assert regular.read_bytes() == b"keep me"  # nothing is written to what is not a pipe


def test_notify_on_a_full_pipe_neither_blocks_nor_raises(tmp_path):
    path = str(tmp_path / "full")
    fd = wake._open_pipe(path)  # a listener that never reads
    try:
        with pytest.raises(BlockingIOError):
            while True:
                os.write(fd, b"x" * 4096)
        started = time.monotonic()
        wake.notify(path)
        assert time.monotonic() - started < 1
    finally:
        os.close(fd)


# -- PostgreSQL: LISTEN/NOTIFY for other processes -------------------------------------------


@pytest.fixture
def pg_waiter(postgres_url):
    """A waiter on a migrated PostgreSQL store, closed with its store afterwards."""
    store = open_store(postgres_url)
    store.migrate()
    waiter = store.waiter()
    yield waiter
    waiter.close()
    store.close()


@pytest.mark.postgres
def test_postgres_listener_is_woken_by_another_sessions_notify(postgres_url, pg_waiter):
    with psycopg.connect(postgres_url, autocommit=True) as other:
        _notify_until_woken(other, pg_waiter)
        other.execute(f"NOTIFY {CHANNEL}, '{wake.process_token().hex()}'")
        assert not pg_waiter.wait(0.3)  # this process's own NOTIFY: its waiters were rung


@pytest.mark.postgres
def test_postgres_listener_reconnects_after_the_connection_breaks(postgres_url, pg_waiter, caplog):
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        _notify_until_woken(admin, pg_waiter)
        with caplog.at_level(logging.WARNING, "bridge.store.postgres"):
            admin.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert pg_waiter.wait(10)  # listening again: a NOTIFY may have been missed
        assert "cannot listen for wake-ups" in caplog.text
        _notify_until_woken(admin, pg_waiter)


@pytest.mark.postgres
def test_postgres_waiter_without_a_server_waits_and_says_so(caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = open_store(f"postgresql://bridge:pw-s3cr3t@127.0.0.1:{port}/bridgedb")
    with caplog.at_level(logging.WARNING, "bridge.store.postgres"):
        waiter = store.waiter()  # no server: the waiter is made all the same
        try:
            assert not waiter.wait(0.1)
            _eventually(lambda: "cannot listen for wake-ups" in caplog.text)
        finally:
            waiter.close()
            store.close()
    assert f"127.0.0.1:{port}/bridgedb" in caplog.text
    assert "pw-s3cr3t" not in caplog.text


def _notify_until_woken(conn, waiter, seconds=10.0):
    """NOTIFY as another process would until the waiter wakes (its listener may still be
    connecting)."""
    deadline = time.monotonic() + seconds
    while True:
        conn.execute(f"NOTIFY {CHANNEL}, 'another process'")
        if waiter.wait(0.2):
            while waiter.wait(0.3):  # NOTIFYs sent while the listener was connecting
                pass
            return
        assert time.monotonic() < deadline, "the waiter was not woken by NOTIFY"


def test_a_process_with_a_worker_of_its_own_tells_no_other_process(tmp_path, monkeypatch):
    store = open_store(f"sqlite:///{tmp_path}/b.db")
    store.migrate()
    written: list[str] = []
    monkeypatch.setattr(wake, "notify", written.append)
    waiter = store.waiter()
    try:
        store.accept(event("evt_1", body=b"1"), [delivery("dlv_1")], 600)
        assert waiter.wait(5) and written == []  # woken here, no system call for the others
    finally:
        waiter.close()
    store.accept(event("evt_2", body=b"2"), [delivery("dlv_2")], 600)
    assert written == [store.wake_path]  # no worker here: the others are told
    store.close()
