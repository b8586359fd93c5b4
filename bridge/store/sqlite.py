"""The embedded default store: one SQLite file in WAL mode, shared by local processes.

Each process and thread opens its own connection (after a fork too). Writers queue on
a kernel lock (:mod:`bridge.store.writelock`), then take SQLite's write lock up front
(BEGIN IMMEDIATE) so a transaction never has to upgrade a read lock halfway.

Durability: a commit is in the WAL before the bridge answers 202, so it survives the
process being killed at any point. ``synchronous=normal`` (the default, as Rails and
most servers on SQLite run it) fsyncs at checkpoints, not at every commit: a power cut
or kernel crash can take the last moments of commits with it. ``?synchronous=full`` on
the store URL fsyncs every commit, at several times the cost per event.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from bridge.errors import StoreUnavailable
from bridge.store import wake
from bridge.store.sql import Cursor, SqlStore, Waiter
from bridge.store.walindex import WalIndex
from bridge.store.writelock import WriteLock

log = logging.getLogger(__name__)

# Every accept writes one row to each of events, dedupe and deliveries: the tables are
# clustered on their keys (WITHOUT ROWID) and a delivery is keyed under its event, so
# an accept updates four b-trees, not eight (see migration 2).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        received_at REAL NOT NULL,
        body_sha256 TEXT NOT NULL,
        body BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE dedupe (
        source TEXT NOT NULL,
        body_sha256 TEXT NOT NULL,
        event_id TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (source, body_sha256)
    ) WITHOUT ROWID;
    CREATE TABLE deliveries (
        id TEXT NOT NULL,
        event_id TEXT NOT NULL REFERENCES events (id),
        route TEXT NOT NULL,
        repository TEXT NOT NULL,
        event_type TEXT NOT NULL,
        client_payload TEXT NOT NULL,
        state TEXT NOT NULL,
        due_at REAL NOT NULL,
        lease_owner TEXT,
        attempts INTEGER NOT NULL,
        round_attempts INTEGER NOT NULL,
        round_started_at REAL NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL,
        last_status INTEGER,
        last_error TEXT,
        PRIMARY KEY (event_id, id)
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_pending ON deliveries (due_at) WHERE state IN ('queued', 'in_flight');
    CREATE INDEX deliveries_state ON deliveries (state);
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        delivery_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL NOT NULL,
        status INTEGER,
        outcome TEXT NOT NULL,
        response TEXT,
        wait REAL,
        worker TEXT
    );
    CREATE INDEX attempts_delivery ON attempts (delivery_id, attempt);
    """,
    # 2: the state index only holds finished rows. Intake inserts queued rows, so it no
    # longer writes to it (one b-tree fewer per accept); pending rows have their own index.
    """
    DROP INDEX deliveries_state;
    CREATE INDEX deliveries_finished ON deliveries (state) WHERE state IN ('delivered', 'dead');
    """,
)


SYNCHRONOUS = ("normal", "full")
# WAL frames (pages) after which a writer checkpoints, once it has let go of the write
# lock (SQLite's own default is 1000, inside the COMMIT). An accept rewrites the same few
# leaf pages, which a checkpoint copies once however often they were written, and each
# checkpoint costs two fsyncs: checkpointing every 4000 frames instead of 1000 makes a
# SQLite accept about a fifth cheaper in CPU on ext4.
CHECKPOINT_FRAMES = 4000
# SQLite's own automatic checkpoint stays on, further out, in case the wal-index cannot
# be read (see bridge.store.walindex).
WAL_AUTOCHECKPOINT = 4 * CHECKPOINT_FRAMES


def parse_sqlite_url(url: str) -> tuple[str, str]:
    """``sqlite:///rel.db`` → (``rel.db``, ``normal``), relative to the working directory;
    ``sqlite:////abs/x.db?synchronous=full`` → (``/abs/x.db``, ``full``).

    Raises ValueError naming what is wrong with an option."""
    path, _, query = url.removeprefix("sqlite:///").partition("?")
    options = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    synchronous = options.pop("synchronous", "normal").lower()
    if synchronous not in SYNCHRONOUS:
        raise ValueError("synchronous must be normal or full")
    if options:
        raise ValueError(f"unknown option {sorted(options)[0]!r} (known: synchronous)")
    if not path:
        raise ValueError("no file name after sqlite:///")
    return path, synchronous


class SqliteStore(SqlStore):
    migrations = MIGRATIONS
    # Without statistics SQLite's planner prefers the state index and sorts every pending
    # row on each claim; the partial index is the right one, so name it.
    _pending_index = " INDEXED BY deliveries_pending"
    _finished_index = " INDEXED BY deliveries_finished"

    def __init__(self, url: str) -> None:
        self.path, self.synchronous = parse_sqlite_url(url)
        self.wake_path = self.path + "-wake"
        self._writers = WriteLock(self.path + "-lock")
        self._wal = WalIndex(self.path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        # A connection to a file that was deleted or replaced would commit into a ghost:
        # check, for the price of one stat(), that the path still names our file.
        if conn is not None and (
            self._local.pid != os.getpid() or self._identity() != self._local.identity
        ):
            if self._local.pid == os.getpid():
                conn.close()
            conn = None
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._enable_wal(conn)
            self._wal.close()  # a new connection may be to a new file, with its own -shm
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")
            with self._lock:
                self._open.append(conn)
            self._local.conn, self._local.pid = conn, os.getpid()
            self._local.identity = self._identity()
        return conn

    @staticmethod
    def _enable_wal(conn: sqlite3.Connection) -> None:
        # Switching a new file to WAL needs a moment of exclusive access, and SQLite does
        # not wait for it through the busy handler: processes starting together retry.
        for delay in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 2.0, 2.0):
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                time.sleep(delay)
        conn.execute("PRAGMA journal_mode = WAL")

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Cursor]:
        if not write:  # readers (WAL) never block anyone and queue behind no one
            with self._sqlite_transaction("BEGIN") as cur:
                yield cur
            return
        try:
            self._writers.__enter__()
        except OSError as exc:
            raise StoreUnavailable(f"cannot lock the SQLite store {self.path}: {exc}") from exc
        try:
            with self._sqlite_transaction("BEGIN IMMEDIATE") as cur:
                yield cur
        finally:
            self._writers.__exit__(None, None, None)
        self._after_commit()
        self._checkpoint_if_due()

    def _checkpoint_if_due(self) -> None:
        pending = self._wal.pending_frames()
        if pending is None or pending < CHECKPOINT_FRAMES:
            return
        # PASSIVE: copies what it can without waiting for readers or writers; writers go
        # on meanwhile. Another process checkpointing at the same moment makes it a no-op.
        try:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # the commit is done; the next writer tries again
            log.warning("SQLite checkpoint of %s failed: %s", self.path, exc)

    @contextmanager
    def _sqlite_transaction(self, begin: str) -> Iterator[Cursor]:
        try:
            conn = self._connection()
            cur = conn.cursor()
            cur.execute(begin)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the SQLite store {self.path}: {exc}") from exc
        try:
            yield cur
            conn.execute("COMMIT")
        except BaseException as exc:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreUnavailable(f"the SQLite store {self.path} failed: {exc}") from exc
            raise
        finally:
            cur.close()

    def _notify(self, cur: Cursor) -> None:
        self._local.wake_pending = True

    def _after_commit(self) -> None:
        if getattr(self._local, "wake_pending", False):
            self._local.wake_pending = False
            wake.notify(self.wake_path)

    def waiter(self) -> Waiter:
        return wake.PipeWaiter(self.wake_path)

    def _describe(self) -> str:
        return f"the SQLite store {self.path}"

    def _lock_schema(self, cur: Cursor) -> None:
        """Nothing more to take: a write transaction already holds the write locks."""

    def close(self) -> None:
        """Close every connection this store opened in this process, in any thread."""
        with self._lock:
            conns, self._open = self._open, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
        self._writers.close()
        self._wal.close()
