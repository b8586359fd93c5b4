"""The shared store for several replicas: PostgreSQL through psycopg 3.

Each process keeps a pool of connections (:mod:`psycopg_pool`, up to ``POOL_SIZE``, made
anew after a fork): a transaction borrows one, so a process with many request threads
holds a few connections, not one per thread. The pool checks a connection before lending
it, for anything to read (which an idle connection never has); a dead one (the server
restarted, or its postmaster was killed) is discarded with every other idle one, and the
transaction gets a fresh connection. A transaction that
fails on a broken connection is StoreUnavailable, and the pool discards that connection
instead of lending it again. A claim locks its rows with FOR UPDATE SKIP LOCKED, so
replicas claiming at once take disjoint sets; dedupe rests on the primary key of
``dedupe``. A transaction that queues work sends a NOTIFY, which PostgreSQL delivers only
if it commits; one listener thread per process LISTENs (reconnecting after a failure)
and wakes that process's workers. Messages name the host and database, never the URL:
it may hold a password.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from bridge.errors import ConfigError, StoreUnavailable
from bridge.store import migrations, wake
from bridge.store.sql import Cursor, SqlStore, Tx

log = logging.getLogger(__name__)

CHANNEL = "wandb_bridge_work"
POOL_SIZE = 8  # connections per process; transactions are short, threads take turns
# Seconds a transaction waits for a live connection before a 503: long enough to ride
# out a fast restart of the server, short enough to answer a webhook sender in time.
POOL_WAIT = 5.0
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
    _row_lock = " FOR UPDATE"

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
        # One pool per process id. A forked child makes its own and leaves its parent's
        # alone, referenced: closing (or collecting) it would end the parent's sessions,
        # whose sockets the child shares.
        self._pools: dict[int, ConnectionPool[psycopg.Connection[Any]]] = {}

    def _unavailable(self, doing: str, exc: psycopg.Error) -> StoreUnavailable:
        message = str(exc).strip()
        if self._password:
            message = message.replace(self._password, "***")
        return StoreUnavailable(f"{doing} the PostgreSQL store at {self.where}: {message}")

    def _pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        """This process's pool, opened on first use."""
        pid = os.getpid()
        with self._lock:
            pool = self._pools.get(pid)
            if pool is None:
                pool = ConnectionPool(
                    self._url,
                    kwargs={"autocommit": True, **self._options},
                    min_size=0,  # connect on demand: one process of many may stay idle
                    max_size=POOL_SIZE,
                    open=False,
                    check=self._check,
                    timeout=POOL_WAIT,
                    # Connection attempts back off (1 s, 2 s, ...); giving up after a
                    # transaction's wait lets the next transaction try at once, so a
                    # server back after a long outage is used within seconds.
                    reconnect_timeout=POOL_WAIT,
                    name=f"wandb-bridge {self.where}",
                )
                pool.open(wait=False)
                self._pools[pid] = pool
            return pool

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's test of a connection before lending it, without a round trip.

        An idle connection of ours has nothing to read: the server speaks only when
        asked. One with something to read was closed by the server (a restart, a
        failover: PostgreSQL says so, or the socket ends). Then the others opened before
        it are dead too: replace them all at once rather than have each transaction find
        out in turn."""
        try:
            dead = conn.closed or bool(select.select([conn.fileno()], [], [], 0)[0])
        except (OSError, ValueError, psycopg.Error):
            dead = True
        if dead:
            self._pool().drain()
            raise psycopg.OperationalError("the server closed the connection")

    @contextmanager
    def _begin(self, write: bool) -> Iterator[Cursor]:
        pool = self._pool()
        try:
            with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except PoolTimeout:
            raise StoreUnavailable(
                f"no connection to the PostgreSQL store at {self.where} within "
                f"{POOL_WAIT:g} s: the server is down or unreachable, or all {POOL_SIZE} "
                "connections of this process stayed busy"
            ) from None
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

    def check_room(self, need: int) -> None:
        """Nothing to check from here: the server's disk is its own, and a server short of
        room fails the heartbeat's commit (``check_writable``)."""

    def close(self) -> None:
        """Close this process's pool and its connections (a parent's are left alone)."""
        with self._lock:
            pool = self._pools.pop(os.getpid(), None)
        if pool is not None:
            pool.close()
