"""The shared store for several replicas: PostgreSQL through psycopg 3.

Each process keeps a small pool of connections (``POOL_SIZE``, opened after a fork too):
a transaction takes one and gives it back, so a process with many request threads holds
a few connections, not one per thread; a connection that broke is dropped. A claim locks
its rows with FOR UPDATE SKIP LOCKED, so replicas claiming at once take disjoint sets;
dedupe rests on the primary key of ``dedupe``. A transaction that queues work sends a
NOTIFY, which PostgreSQL delivers only if it commits; one listener thread per process
LISTENs and wakes that process's workers. Messages name the host and database, never
the URL: it may hold a password.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bridge.errors import ConfigError, StoreUnavailable
from bridge.store import migrations, wake
from bridge.store.sql import Cursor, SqlStore, Tx

log = logging.getLogger(__name__)

CHANNEL = "wandb_bridge_work"
POOL_SIZE = 8  # connections per process; transactions are short, threads take turns
POOL_WAIT = 10.0  # seconds a transaction waits for a free connection before a 503
_MIGRATION_LOCK = 0x77616E6462  # pg_advisory_xact_lock key: replicas migrate one at a time
_DEFAULTS = {
    "connect_timeout": 5,
    "application_name": "wandb-bridge",
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class PostgresStore(SqlStore):
    migrations = migrations.POSTGRES
    _placeholder = "%s"
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
        self.database = self.where  # one wake-up bell per database, whatever the URL says
        self._password = str(info.get("password") or "")
        self._options: dict[str, Any] = {k: v for k, v in _DEFAULTS.items() if k not in info}
        self._lock = threading.Lock()
        self._open: list[tuple[int, psycopg.Connection[Any]]] = []
        self._pool_pid = os.getpid()
        self._idle: list[psycopg.Connection[Any]] = []
        self._slots = threading.BoundedSemaphore(POOL_SIZE)

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

    def _pool_here(self) -> None:
        """A forked child starts with an empty pool (the parent's sockets are not ours)."""
        if self._pool_pid != os.getpid():
            self._pool_pid = os.getpid()
            self._idle = []
            self._slots = threading.BoundedSemaphore(POOL_SIZE)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Lend a pooled connection for one transaction."""
        with self._lock:
            self._pool_here()
            slots = self._slots
        if not slots.acquire(timeout=POOL_WAIT):
            raise StoreUnavailable(
                f"all {POOL_SIZE} connections of this process to the PostgreSQL store at "
                f"{self.where} stayed busy for {POOL_WAIT:g} s"
            )
        conn: psycopg.Connection[Any] | None = None
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is not None and (conn.closed or conn.broken):
                self._forget(conn)
                conn = None
            if conn is None:
                conn = self._connect()
            yield conn
        finally:
            if conn is not None:
                if conn.closed or conn.broken:
                    self._forget(conn)  # the next transaction connects afresh
                else:
                    with self._lock:
                        self._idle.append(conn)
            slots.release()

    @contextmanager
    def _begin(self, write: bool) -> Iterator[Cursor]:
        with self._connection() as conn:
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            except psycopg.Error as exc:
                raise self._unavailable("a transaction failed on", exc) from exc

    def _lock_schema(self, tx: Tx) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def _announce(self, tx: Tx) -> None:
        tx.run("SELECT pg_notify(?, ?)", (CHANNEL, wake.process_token().hex()))

    def _announce_committed(self) -> None:
        """Nothing more: PostgreSQL delivered the NOTIFY with the commit."""

    def _listen(self, bell: wake.Bell) -> None:
        """LISTEN on a connection of its own; ring ``bell`` for other processes' NOTIFYs.

        After a failure it reconnects and rings once: a NOTIFY may have been missed."""
        own, conn, failing = wake.process_token().hex(), None, False
        try:
            while bell.listening():
                try:
                    if conn is None:
                        conn = psycopg.connect(self._url, autocommit=True, **self._options)
                        conn.execute(f"LISTEN {CHANNEL}")
                        if failing:
                            bell.ring()
                        failing = False
                    got = list(conn.notifies(timeout=wake.POLL_SECONDS, stop_after=1))
                    while more := list(conn.notifies(timeout=0)):
                        got += more
                    if any(n.payload != own for n in got):
                        bell.ring()
                except psycopg.Error as exc:
                    if not failing and bell.listening():
                        log.warning(
                            "%s; workers in this process see work queued by other processes "
                            "only when they poll",
                            self._unavailable("cannot listen for wake-ups on", exc),
                        )
                    failing = True
                    if conn is not None:
                        conn.close()
                        conn = None
                    time.sleep(wake.POLL_SECONDS)
        finally:
            if conn is not None:
                conn.close()

    def _describe(self) -> str:
        return f"the PostgreSQL store at {self.where}"

    def close(self) -> None:
        """Close every connection this store opened in this process, in any thread.

        Connections inherited across a fork stay open (and referenced): closing one here
        would end the parent's session, which shares its socket.
        """
        pid = os.getpid()
        with self._lock:
            mine = [c for p, c in self._open if p == pid]
            self._open = [(p, c) for p, c in self._open if p != pid]
            self._idle = [c for c in self._idle if all(c is not m for m in mine)]
        for conn in mine:
            conn.close()
