"""A writer that finds another process holding SQLite's write lock waits for it, trying
again every tenth of a millisecond, and gives up with a clear error at the deadline; the
connection keeps its long busy timeout for everything else."""

import subprocess
import sys
import threading
import time

import pytest

from bridge.errors import NotFound, StoreUnavailable
from bridge.store import sqlite
from tests.bridge.test_store import delivery, event

# Holds the write lock of the database named by argv[1] until its standard input closes.
HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("COMMIT")
"""


@pytest.fixture
def hold_lock(sqlite_store):
    """Start another process that holds the write lock; returns a function releasing it."""
    holders = []

    def hold() -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, sqlite_store.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        return proc

    yield hold
    for proc in holders:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(10) == 0


def test_a_writer_waits_for_another_process_and_then_commits(sqlite_store, hold_lock):
    holder = hold_lock()
    outcome: list[object] = []

    def accept() -> None:
        try:
            outcome.append(sqlite_store.accept(event("evt_w"), [delivery("dlv_w")], 600))
        except Exception as exc:  # reported below, not lost in the thread
            outcome.append(exc)

    writer = threading.Thread(target=accept)
    writer.start()
    writer.join(0.5)
    assert writer.is_alive() and outcome == []  # still waiting: the lock is taken
    _release(holder)
    writer.join(30)
    assert not writer.is_alive()
    assert [type(o).__name__ for o in outcome] == ["Accepted"]
    assert sqlite_store.get_event("evt_w").deliveries[0].id == "dlv_w"
    # the writer's own waiting was only for taking the lock: reads wait as long as ever
    conn = sqlite_store._connection()
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == sqlite.BUSY_TIMEOUT * 1000


def test_a_writer_gives_up_at_the_deadline_and_stores_nothing(sqlite_store, hold_lock, monkeypatch):
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT", 0.3)
    holder = hold_lock()
    with pytest.raises(StoreUnavailable, match="database is locked"):
        sqlite_store.accept(event("evt_x"), [delivery("dlv_x")], 600)
    _release(holder)
    with pytest.raises(NotFound):
        sqlite_store.get_event("evt_x")
    sqlite_store.accept(event("evt_y"), [delivery("dlv_y")], 600)  # the connection still works
    assert sqlite_store.get_event("evt_y").id == "evt_y"


def test_writers_queued_in_one_process_share_one_deadline(sqlite_store, hold_lock, monkeypatch):
    # With the lock held elsewhere, five writers of this process queue behind each other;
    # each gives up at its own deadline (2 s), not after the ones before it (up to 10 s).
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT", 2.0)
    holder = hold_lock()
    errors: list[BaseException] = []

    def accept(n: int) -> None:
        try:
            sqlite_store.accept(event(f"evt_{n}"), [delivery(f"dlv_{n}")], 600)
        except StoreUnavailable as exc:
            errors.append(exc)

    writers = [threading.Thread(target=accept, args=(n,)) for n in range(5)]
    started = time.monotonic()
    for w in writers:
        w.start()
    for w in writers:  # a generous bound, well short of the 10 s of waits one after another
        w.join(max(0.0, started + 7 - time.monotonic()))
    assert not any(w.is_alive() for w in writers)
    assert len(errors) == 5 and all("database is locked" in str(e) for e in errors)
    _release(holder)
