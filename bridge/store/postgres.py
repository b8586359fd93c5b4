"""The shared store for several replicas: PostgreSQL through psycopg 3.

Each process and thread opens its own connection (after a fork too), and drops one that
broke so the next transaction reconnects. A claim locks its rows with FOR UPDATE SKIP
LOCKED, so replicas claiming at once take disjoint sets; dedupe rests on the primary key
of ``dedupe``. Waiting workers LISTEN on one channel; NOTIFY is sent inside the writing
transaction, and PostgreSQL delivers it only if that transaction commits. Messages name
the host and database, never the URL: it may hold a password.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bridge.errors import ConfigError, StoreUnavailable
from bridge.store.sql import Cursor, SqlStore, Waiter

CHANNEL = "wandb_bridge_work"
_MIGRATION_LOCK = 0x77616E6462  # pg_advisory_xact_lock key: replicas migrate one at a time
_DEFAULTS = {
    "connect_timeout": 5,
    "application_name": "wandb-bridge",
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        id TEXT COLLATE "C" PRIMARY KEY,
        source TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        body_sha256 TEXT NOT NULL,
        body BYTEA NOT NULL
    );
    CREATE TABLE dedupe (
        source TEXT NOT NULL,
        body_sha256 TEXT NOT NULL,
        event_id TEXT NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (source, body_sha256)
    );
    CREATE TABLE deliveries (
        id TEXT COLLATE "C" NOT NULL,
        event_id TEXT COLLATE "C" NOT NULL REFERENCES events (id),
        route TEXT NOT NULL,
        repository TEXT NOT NULL,
        event_type TEXT NOT NULL,
        client_payload TEXT NOT NULL,
        state TEXT NOT NULL,
        due_at DOUBLE PRECISION NOT NULL,
        lease_owner TEXT,
        attempts INTEGER NOT NULL,
        round_attempts INTEGER NOT NULL,
        round_started_at DOUBLE PRECISION NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        last_status INTEGER,
        last_error TEXT,
        PRIMARY KEY (event_id, id)
    );
    CREATE INDEX deliveries_pending ON deliveries (due_at) WHERE state IN ('queued', 'in_flight');
    CREATE INDEX deliveries_state ON deliveries (state);
    CREATE TABLE attempts (
        id BIGSERIAL PRIMARY KEY,
        delivery_id TEXT COLLATE "C" NOT NULL,
        attempt INTEGER NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION NOT NULL,
        status INTEGER,
        outcome TEXT NOT NULL,
        response TEXT,
        wait DOUBLE PRECISION,
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


class PostgresStore(SqlStore):
    migrations = MIGRATIONS
    _claim_lock = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str) -> None:
        try:
            info = conninfo_to_dict(url)
        except psycopg.Error:  # its message may quote the URL, password and all: drop it
            raise ConfigError(["store: not a postgresql://USER:PASSWORD@HOST/DB URL"]) from None
        self._url = url
        self.where = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/" + str(
            info.get("dbname") or info.get("user") or ""
        )
        self._password = str(info.get("password") or "")
        self._options: dict[str, Any] = {k: v for k, v in _DEFAULTS.items() if k not in info}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[int, psycopg.Connection[Any]]] = []

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _unavailable(self, doing: str, exc: psycopg.Error) -> StoreUnavailable:
        message = str(exc).strip()
        if self._password:
            message = message.replace(self._password, "***")
        return StoreUnavailable(f"{doing} the PostgreSQL store at {self.where}: {message}")

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self._url, autocommit=True, **self._options)
        except psycopg.Error as exc:
            raise self._unavailable("cannot connect to", exc) from exc
        with self._lock:
            self._open.append((os.getpid(), conn))
        return conn

    def _forget(self, conn: psycopg.Connection[Any]) -> None:
        conn.close()
        with self._lock:
            self._open = [(pid, c) for pid, c in self._open if c is not conn]

    def _connection(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid() and (conn.closed or conn.broken):
            self._forget(conn)  # it broke during the previous transaction: start afresh
            conn = None
        if conn is None or self._local.pid != os.getpid():
            conn = self._connect()
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Cursor]:
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield cur
        except psycopg.Error as exc:
            if conn.broken:
                self._forget(conn)  # the next transaction reconnects
            raise self._unavailable("a transaction failed on", exc) from exc

    def _notify(self, cur: Cursor) -> None:
        cur.execute(f"NOTIFY {CHANNEL}")

    def waiter(self) -> Waiter:
        return _Listener(self)

    def _lock_schema(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))

    def _describe(self) -> str:
        return f"the PostgreSQL store at {self.where}"

    def close(self) -> None:
        """Close every connection this process opened, in any thread, listeners too.

        Connections inherited across a fork stay open (and referenced): closing one here
        would end the parent's session, which shares its socket.
        """
        pid = os.getpid()
        with self._lock:
            mine = [c for p, c in self._open if p == pid]
            self._open = [(p, c) for p, c in self._open if p != pid]
        for conn in mine:
            conn.close()
        self._local = threading.local()


class _Listener:
    """A worker's wake-up line: its own autocommit connection, LISTENing on the channel.

    After a broken connection it reconnects on the next ``wait`` and answers True once:
    a notification may have been missed meanwhile.
    """

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._conn: psycopg.Connection[Any] | None = None
        with suppress(StoreUnavailable):  # the store is down: wait() tries again, says so
            self._listen()

    def _listen(self) -> None:
        conn = self._store._connect()
        try:
            conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            self._store._forget(conn)
            raise self._store._unavailable("cannot listen on", exc) from exc
        self._conn = conn

    def wait(self, timeout: float) -> bool:
        """True when a notification arrived (all pending are consumed), False on timeout."""
        if self._conn is None:
            self._listen()
            return True
        conn = self._conn
        try:
            if not list(conn.notifies(timeout=max(0.0, timeout), stop_after=1)):
                return False
            while list(conn.notifies(timeout=0)):
                pass
            return True
        except psycopg.Error as exc:
            self._store._forget(conn)
            self._conn = None
            raise self._store._unavailable("lost the notification connection to", exc) from exc

    def close(self) -> None:
        if self._conn is not None:
            self._store._forget(self._conn)
            self._conn = None
