"""SQLite's writers: the WAL is copied into the database file by the writer that just
committed, every ``CHECKPOINT_EVERY`` commits of its process, once it has let go of the
write lock (not inside a commit, where every other writer of the process would wait for
its fsyncs); a write transaction has a connection of its own, whose busy timeout is the
short one its wait for the lock needs."""

import os
import sqlite3

from bridge.store import sqlite
from tests.bridge.test_store import delivery, event


def _accept(store, n):
    store.accept(event(f"evt_{n:05d}", body=b'{"n": %d}' % n), [delivery(f"dlv_{n:05d}")], 600)


def test_the_database_file_takes_the_wal_every_so_many_commits(sqlite_store):
    _accept(sqlite_store, 0)  # the connection's first write: the count starts from here
    sqlite_store._commits = 0
    size = os.path.getsize(sqlite_store.path)
    for n in range(1, sqlite.CHECKPOINT_EVERY):  # SQLite's own would have run by now
        _accept(sqlite_store, n)
    assert os.path.getsize(sqlite_store.path) == size  # everything still in the WAL
    _accept(sqlite_store, sqlite.CHECKPOINT_EVERY)
    assert os.path.getsize(sqlite_store.path) > size
    assert sqlite_store._commits == 0
    with sqlite3.connect(sqlite_store.path) as conn:  # and nothing was lost on the way
        assert conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == (
            sqlite.CHECKPOINT_EVERY + 1
        )


def test_the_checkpoint_runs_after_the_write_lock_is_let_go(sqlite_store, monkeypatch):
    held = []
    checkpoint = sqlite_store._checkpoint

    def watched() -> None:
        held.append(sqlite_store._writer_lock().locked())
        checkpoint()

    monkeypatch.setattr(sqlite_store, "_checkpoint", watched)
    for n in range(2 * sqlite.CHECKPOINT_EVERY):
        _accept(sqlite_store, n)
    assert held == [False, False]


def test_a_failed_checkpoint_leaves_the_commit_before_it_alone(sqlite_store, monkeypatch):
    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY", 1)
    calls = []
    connection = sqlite_store._connection

    def failing_second_time(write: bool = False) -> sqlite3.Connection:
        calls.append(write)
        if len(calls) == 2:  # the checkpoint's, after the commit
            raise sqlite3.OperationalError("disk I/O error")
        return connection(write)

    monkeypatch.setattr(sqlite_store, "_connection", failing_second_time)
    assert sqlite_store.accept(event("evt_1"), [delivery("dlv_1")], 600).kept == ("dlv_1",)
    assert calls == [True, True]
    monkeypatch.undo()
    assert [e.id for e in sqlite_store.list_events()] == ["evt_1"]


def test_writes_and_reads_wait_for_locks_each_as_their_use_needs(sqlite_store):
    """A write transaction's connection never waits in SQLite's busy handler (its wait
    is _begin_immediate's loop); a read waits as long as SQLite lets it."""
    _accept(sqlite_store, 1)
    assert sqlite_store.get_event("evt_00001").deliveries[0].id == "dlv_00001"
    writer = sqlite_store._connection(write=True)
    reader = sqlite_store._connection()
    assert writer is not reader
    assert writer.execute("PRAGMA busy_timeout").fetchone()[0] == 0
    assert reader.execute("PRAGMA busy_timeout").fetchone()[0] == sqlite.BUSY_TIMEOUT * 1000
