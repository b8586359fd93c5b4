"""The part of a store that a backend fills in, and what is built on it alone.

A backend subclass supplies connections and transactions (``_transaction``), how a
claim locks rows (``_claim_lock``), how waiting workers are woken (``_notify``,
``waiter``), and the schema migrations. Statements use ``?`` placeholders; a backend
that wants ``%s`` rewrites them in ``_sql``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from bridge.errors import StoreUnavailable
from bridge.store.models import DEAD, DELIVERED, IN_FLIGHT, QUEUED

DELIVERY_COLS = (
    "id, event_id, route, repository, event_type, client_payload, state, attempts, due_at, "
    "created_at, updated_at, finished_at, last_status, last_error"
)
# Written as literals, not parameters, so that the partial index on pending rows applies
# to every plan (a generic prepared plan cannot prove a parameter matches its predicate).
PENDING = f"state IN ('{QUEUED}', '{IN_FLIGHT}')"
FINISHED = f"state IN ('{DELIVERED}', '{DEAD}')"
ATTEMPT_COLS = "attempt, started_at, finished_at, status, outcome, response, wait, worker"


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Waiter(Protocol):
    """Blocks a worker until work may have arrived (or the timeout passes)."""

    def wait(self, timeout: float) -> bool: ...
    def close(self) -> None: ...


class StoreBase(abc.ABC):
    """What a backend supplies, and what every store does with it: schema, statements."""

    @abc.abstractmethod
    def _transaction(self, write: bool = True) -> AbstractContextManager[Cursor]:
        """A cursor inside a transaction, committed on exit, rolled back on error.

        ``write=False`` marks a read-only one, which must not hold up writers.

        Driver errors are translated to StoreUnavailable here, once per backend.
        """

    @abc.abstractmethod
    def _notify(self, cur: Cursor) -> None:
        """Wake waiting workers once the current transaction commits."""

    @abc.abstractmethod
    def waiter(self) -> Waiter: ...

    migrations: tuple[str, ...] = ()  # the backend's schema, one script per version

    @abc.abstractmethod
    def _describe(self) -> str:
        """Which store this is, for messages (never with a password)."""

    @abc.abstractmethod
    def _lock_schema(self, cur: Cursor) -> None:
        """Keep other processes out while migrating, for the rest of the transaction."""

    def migrate(self) -> None:
        """Create or upgrade the schema, recording its version; refuse a newer schema."""
        with self._transaction() as cur:
            self._lock_schema(cur)
            self._exec(cur, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self._exec(cur, "SELECT MAX(version) FROM schema_version").fetchone()
            current = int(row[0] or 0)
            if current > len(self.migrations):
                raise StoreUnavailable(
                    f"{self._describe()} has schema version {current}, newer than this bridge "
                    f"knows ({len(self.migrations)}); upgrade the bridge"
                )
            for version in range(current + 1, len(self.migrations) + 1):
                for statement in self.migrations[version - 1].split(";"):
                    if statement.strip():
                        cur.execute(statement)
                self._exec(cur, "INSERT INTO schema_version (version) VALUES (?)", (version,))

    def schema_version(self) -> int:
        with self._transaction(write=False) as cur:
            row = self._exec(cur, "SELECT MAX(version) FROM schema_version").fetchone()
            return int(row[0] or 0)

    @abc.abstractmethod
    def close(self) -> None: ...

    _claim_lock = ""  # appended to the claim's SELECT (FOR UPDATE SKIP LOCKED on PostgreSQL)
    _pending_index = ""  # how to name the pending-rows index after FROM deliveries, if needed
    _finished_index = ""  # the same for the finished-rows index

    def _sql(self, sql: str) -> str:
        return sql

    def _exec(self, cur: Cursor, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cur.execute(self._sql(sql), params)
        return cur
