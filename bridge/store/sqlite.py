"""The embedded default store: one SQLite file in WAL mode, shared by local processes.

Each process and thread opens its own connections (after a fork too): one for reads,
one for write transactions, each with the busy timeout its use needs. A write takes
SQLite's write lock up front (BEGIN IMMEDIATE), so a transaction never has to upgrade a
read lock halfway; a writer that finds it taken waits up to ``BUSY_TIMEOUT`` seconds.
Within a process, writers take turns on a plain lock first: SQLite's busy handler
sleeps and retries, so many threads of one process racing for its lock would leave some
waiting far longer than the writes they wait for.
The WAL is checkpointed (its pages copied into the database file, which fsyncs) by the
writer that just committed, once every ``CHECKPOINT_EVERY`` commits of the store object,
after it has let go of the write lock. SQLite's own automatic checkpoint is off: it runs
inside the commit, so every other writer of the process would wait out its fsyncs (under
load, most of the time writers spent waiting).

Only ``migrate`` creates the database file (and not with ``create=False``, as the
``events`` commands call it). Every connection after that opens an existing file, and
each transaction first checks (one stat) that the path still names the file the store
opened: a database deleted or replaced while the bridge runs is StoreUnavailable until
a restart, never a fresh empty file, and never a new file read through the old one's
write-ahead log (SQLite applies a ``-wal`` to whatever file has the name). When the
file system is in the way (a file or directory this user may not write, no directory,
a read-only mount), the error says which and what to change.

Durability: a commit is in the WAL before the bridge answers 202, so it survives the
process being killed at any point. ``synchronous=normal`` (the default) fsyncs at
checkpoints, not at every commit: a power cut or kernel crash can take the last moments
of commits with it. ``?synchronous=full`` on the store URL fsyncs every commit.
"""

from __future__ import annotations

import os
import pwd
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from bridge.errors import StoreUnavailable
from bridge.store import migrations, wake
from bridge.store.sql import Cursor, SqlStore, Tx

SYNCHRONOUS = ("normal", "full")
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another's write lock
BUSY_POLL = 0.0001  # s: a writer waiting for another process tries this often again
# Commits of a store between its checkpoints: about SQLite's default of 1,000 pages of
# WAL when they are accepted events (about 10 pages each).
CHECKPOINT_EVERY = 100


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
    migrations = migrations.SQLITE

    def __init__(self, url: str) -> None:
        self.path, self.synchronous = parse_sqlite_url(url)
        self.database = os.path.realpath(self.path)
        self.wake_path = self.path + "-wake"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._writers = (os.getpid(), threading.Lock())  # one writer at a time per process
        self._commits = 0  # commits since this store's last checkpoint (see _checkpoint)
        self._open: list[tuple[int, sqlite3.Connection]] = []
        self._file: tuple[int, int] | None = None  # (device, inode) of the file in use

    # -- connections ------------------------------------------------------------------------

    def _check_file(self) -> None:
        """Raise StoreUnavailable unless the path names the file the store opened."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise StoreUnavailable(
                f"the SQLite database {self.path} does not exist (deleted or moved?); "
                "restore it and restart the bridge"
            ) from None
        except OSError as exc:
            where = os.path.abspath(self.path)
            problems = "".join(f"; {p}" for p in access_problems(self.path))
            raise StoreUnavailable(
                f"cannot reach the SQLite database {where}: {exc.strerror}{problems}"
            ) from exc
        if self._file is None:
            self._file = (st.st_dev, st.st_ino)
        elif self._file != (st.st_dev, st.st_ino):
            raise StoreUnavailable(
                f"the SQLite database {self.path} was replaced by another file while the "
                "bridge ran; restart the bridge"
            )

    def _connection(self, write: bool = False) -> sqlite3.Connection:
        """This thread's connection to the database file for reads, or the one for write
        transactions (new ones after a fork). A read waits up to ``BUSY_TIMEOUT`` for a
        lock; a writer's connection not at all: _begin_immediate does its waiting, and
        once it holds the write lock it never waits for another."""
        self._check_file()
        role = "writer" if write else "reader"
        found: tuple[int, sqlite3.Connection] | None = getattr(self._local, role, None)
        if found is not None and found[0] == os.getpid():
            return found[1]
        uri = f"file:{urllib.parse.quote(self.path)}?mode=rw"  # never creates the file
        timeout = 0.0 if write else BUSY_TIMEOUT
        conn = sqlite3.connect(
            uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint
        except sqlite3.Error:
            conn.close()
            raise
        with self._lock:
            self._open.append((os.getpid(), conn))
        setattr(self._local, role, (os.getpid(), conn))
        return conn

    def _drop(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            self._open = [(pid, c) for pid, c in self._open if c is not conn]
        for role in ("reader", "writer"):
            found = getattr(self._local, role, None)
            if found is not None and found[1] is conn:
                setattr(self._local, role, None)
        with suppress(sqlite3.Error):
            conn.close()

    def _writer_lock(self) -> threading.Lock:
        """This process's writer lock (a forked child makes its own)."""
        with self._lock:
            if self._writers[0] != os.getpid():
                self._writers = (os.getpid(), threading.Lock())
            return self._writers[1]

    @contextmanager
    def _begin(self, write: bool) -> Iterator[Cursor]:
        if not write:
            with self._transaction_on(write=False) as cur:
                yield cur
            return
        # One deadline for the wait behind this process's other writers and for SQLite's
        # lock: a lock held elsewhere must not make each queued request wait it out anew.
        deadline = time.monotonic() + BUSY_TIMEOUT
        lock = self._writer_lock()
        if not lock.acquire(timeout=BUSY_TIMEOUT):
            raise StoreUnavailable(
                f"cannot use the SQLite database {self.path}: database is locked "
                f"(no turn to write within {BUSY_TIMEOUT:g} s)"
            )
        checkpoint = False
        try:
            with self._transaction_on(write=True, deadline=deadline) as cur:
                yield cur
            self._commits += 1
            checkpoint = self._commits >= CHECKPOINT_EVERY
            if checkpoint:
                self._commits = 0
        finally:
            lock.release()
        if checkpoint:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Copy the WAL into the database file, outside the write lock: writers go on
        meanwhile (PASSIVE: it waits for no one, and copies what no reader still needs).

        The transaction before it has committed: a failure here is for the next one."""
        with suppress(sqlite3.Error, StoreUnavailable):
            self._connection(write=True).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    @contextmanager
    def _transaction_on(self, write: bool, deadline: float = 0.0) -> Iterator[Cursor]:
        conn = None
        try:
            conn = self._connection(write)
            cur = conn.cursor()
            if write:
                _begin_immediate(cur, deadline)
            else:
                cur.execute("BEGIN")  # readers block no one (WAL)
        except sqlite3.Error as exc:
            if conn is not None:
                self._drop(conn)
            raise StoreUnavailable(self._failed("cannot use", exc)) from exc
        try:
            try:
                yield cur
                conn.execute("COMMIT")
            finally:
                cur.close()
        except sqlite3.Error as exc:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._drop(conn)  # after a disk or I/O error it may be unusable: start afresh
            raise StoreUnavailable(self._failed("a transaction failed on", exc)) from exc
        except BaseException:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    # -- schema -----------------------------------------------------------------------------

    def migrate(self, create: bool = True) -> None:
        """Create the database file if there is none (the only place that may, and only
        with ``create``), switch it to WAL, then create or upgrade the schema."""
        exists = _exists(self.path)
        if not exists and not create:
            raise StoreUnavailable(self._not_found())
        if not exists and _exists(self.path + "-wal"):
            raise StoreUnavailable(
                f"the SQLite database {self.path} is missing but its write-ahead log "
                f"{self.path}-wal is not; restore the database, or move {self.path}-wal "
                f"and {self.path}-shm away to start with an empty one"
            )
        # SQLite opens a file it may not write read-only, without a word, and a store
        # with nothing to upgrade writes nothing here: the first event would find out.
        problems = access_problems(self.path) if exists else []
        if problems:
            where = os.path.abspath(self.path)
            raise StoreUnavailable(
                f"cannot open the SQLite database {where}: " + "; ".join(problems)
            )
        uri = f"file:{urllib.parse.quote(self.path)}?mode={'rwc' if create else 'rw'}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None)
            try:
                self._enable_wal(conn)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            verb = "open" if exists else "create"
            raise StoreUnavailable(self._failed(f"cannot {verb}", exc)) from exc
        super().migrate(create)

    def _not_found(self) -> str:
        where = os.path.abspath(self.path)
        if not os.path.isabs(self.path):
            where += f" ({self.path} in store: is relative to the directory a command runs in)"
        return (
            f"no SQLite database at {where}; this command uses an existing store "
            "and never creates one: run it in the directory `wandb-bridge serve` runs in, "
            "or give store: an absolute path (sqlite:////path/to/wandb-bridge.db)"
        )

    def _failed(self, what: str, exc: sqlite3.Error) -> str:
        """``what`` the SQLite database, SQLite's reason and, when the file system explains
        it, why and what to change."""
        message = f"{what} the SQLite database {os.path.abspath(self.path)}: {exc}"
        code = getattr(exc, "sqlite_errorcode", 0) or 0  # only errors from SQLite itself
        if code & 0xFF in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY):
            message += "".join(f"; {problem}" for problem in access_problems(self.path))
        return message

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

    def _lock_schema(self, tx: Tx) -> None:
        """Nothing more to take: a write transaction already holds the write lock."""

    # -- wake-ups, and the rest -------------------------------------------------------------

    def _announce(self, tx: Tx) -> None:
        """Nothing inside the transaction: the pipe is written once it has committed."""

    def _announce_committed(self) -> None:
        wake.notify(self.wake_path)

    def _listen(self, bell: wake.Bell) -> None:
        wake.listen_to_pipe(self.wake_path, bell)

    def _describe(self) -> str:
        return f"the SQLite database {self.path}"

    def check_room(self, need: int) -> None:
        """Raise StoreUnavailable when the database's file system has less than ``need``
        bytes free for it (blocks reserved for root not counted): a small write may still
        commit, but a full-size event would not."""
        try:
            fs = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        except OSError as exc:
            raise StoreUnavailable(f"cannot reach the SQLite database {self.path}: {exc}") from exc
        free = fs.f_bavail * fs.f_frsize
        if free < need:
            raise StoreUnavailable(
                f"the disk of the SQLite database {self.path} has {free} bytes free, less "
                f"than the {need} a full-size event may take; free some space on it"
            )

    def close(self) -> None:
        """Close every connection this store opened in this process, in any thread.

        Connections inherited across a fork are left to the parent that opened them."""
        pid = os.getpid()
        with self._lock:
            mine = [c for p, c in self._open if p == pid]
            self._open = [(p, c) for p, c in self._open if p != pid]
        for conn in mine:
            conn.close()
        self._local = threading.local()
        self._file = None  # used again, the store opens whatever file the path names then


def access_problems(path: str) -> list[str]:
    """Why the file system keeps this process from using the SQLite database at ``path``:
    SQLite needs to read and write the file, and to create ``-wal`` and ``-shm`` files
    beside it, so the directory must be writable too. Empty when nothing is in the way."""
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    user = _user()
    try:
        read_only = os.statvfs(directory).f_flag & os.ST_RDONLY
    except (FileNotFoundError, NotADirectoryError):
        return [f"its directory {directory} does not exist; create it, or fix store: in the config"]
    except OSError as exc:
        return [f"{user} cannot reach its directory {directory}: {exc.strerror}"]
    if read_only:
        return [f"{directory} is on a read-only file system; the store needs a writable one"]
    problems = []
    if _exists(path) and not os.access(path, os.R_OK | os.W_OK):
        problems.append(
            f"{name} is not readable and writable by {user}; make it so (e.g. chown it to "
            "the user the bridge runs as)"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        problems.append(
            f"its directory {directory} is not writable by {user}: SQLite creates {name}-wal "
            f"and {name}-shm beside the database, so the directory must be writable by the "
            "user the bridge runs as"
        )
    return problems


def _exists(path: str) -> bool:
    """False only when nothing is there (a file this user may not see counts as there)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return True


def _user() -> str:
    uid = os.geteuid()
    try:
        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _begin_immediate(cur: sqlite3.Cursor, deadline: float) -> None:
    """Take the write lock, waiting until ``deadline`` (monotonic) for others to let go.

    Another process's writers hold it for well under a millisecond at a time. SQLite's
    own busy handler sleeps whole milliseconds between tries, more the longer it waits
    (up to 100 ms a time), so a writer of one process would sleep through most of the
    moments the other's leave the lock free, and every writer queued behind it in its
    process with it: under load, most of a write's time went to that sleep. Here a try
    that finds the lock taken fails at once (the writer's connection has no busy
    timeout), and the next follows ``BUSY_POLL`` later, until the deadline.
    """
    while True:
        try:
            cur.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
        time.sleep(BUSY_POLL)
