"""The store's logic, written once in SQL that SQLite and PostgreSQL both speak.

A backend subclass supplies connections and transactions (``_transaction``), how a
claim locks rows (``_claim_lock``), how waiting workers are woken (``_notify``,
``waiter``), and the schema migrations. Statements use ``?`` placeholders; a backend
that wants ``%s`` rewrites them in ``_sql``.

Atomicity, the two races that matter:
- dedupe: a unique (source, body hash) row is inserted with ON CONFLICT ... DO UPDATE
  only when the old row is outside the window. Two identical requests at the same
  instant: one insert wins, the other sees the conflict and answers ``duplicate_of``.
- claim: rows are selected and leased in one transaction (SQLite: the write lock taken
  by BEGIN IMMEDIATE; PostgreSQL: FOR UPDATE SKIP LOCKED), so two workers never hold
  the same delivery; a worker that dies leaves its rows to be claimed when the lease ends.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from bridge.errors import NotFound, StoreUnavailable
from bridge.store.models import (
    ABANDONED,
    DEAD,
    DELIVERED,
    IN_FLIGHT,
    QUEUED,
    Accepted,
    Attempt,
    Claimed,
    Delivery,
    Event,
    NewDelivery,
    NewEvent,
    Stats,
)

_DELIVERY_COLS = (
    "id, event_id, route, repository, event_type, client_payload, state, attempts, due_at, "
    "created_at, updated_at, finished_at, last_status, last_error"
)
# Written as literals, not parameters, so that the partial index on pending rows applies
# to every plan (a generic prepared plan cannot prove a parameter matches its predicate).
_PENDING = f"state IN ('{QUEUED}', '{IN_FLIGHT}')"
_ATTEMPT_COLS = "attempt, started_at, finished_at, status, outcome, response, wait, worker"


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


class SqlStore(abc.ABC):
    """Everything the bridge stores; see the module docstring for the guarantees."""

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

    def _sql(self, sql: str) -> str:
        return sql

    def _exec(self, cur: Cursor, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cur.execute(self._sql(sql), params)
        return cur

    # -- intake -------------------------------------------------------------------------

    def ping(self) -> None:
        with self._transaction(write=False) as cur:
            self._exec(cur, "SELECT 1").fetchone()

    def accept(
        self, event: NewEvent, deliveries: Sequence[NewDelivery], dedupe_window: float
    ) -> Accepted:
        """Commit ``event`` and its deliveries, unless it repeats one within the window."""
        now = event.received_at
        with self._transaction() as cur:
            if dedupe_window > 0:
                self._exec(
                    cur,
                    "INSERT INTO dedupe (source, body_sha256, event_id, seen_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (source, body_sha256) DO UPDATE SET "
                    "event_id = excluded.event_id, seen_at = excluded.seen_at "
                    "WHERE dedupe.seen_at <= ?",
                    (event.source, event.body_sha256, event.id, now, now - dedupe_window),
                )
                if cur.rowcount == 0:
                    row = self._exec(
                        cur,
                        "SELECT event_id FROM dedupe WHERE source = ? AND body_sha256 = ?",
                        (event.source, event.body_sha256),
                    ).fetchone()
                    return Accepted(event.id, duplicate_of=row[0])
            self._exec(
                cur,
                "INSERT INTO events (id, source, endpoint, received_at, body_sha256, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (event.id, event.source, event.endpoint, now, event.body_sha256, event.body),
            )
            for d in deliveries:
                self._insert_delivery(cur, event.id, d, now)
            if deliveries:
                self._notify(cur)
        return Accepted(event.id)

    def _insert_delivery(self, cur: Cursor, event_id: str, d: NewDelivery, now: float) -> None:
        self._exec(
            cur,
            "INSERT INTO deliveries (id, event_id, route, repository, event_type, "
            "client_payload, state, due_at, attempts, round_attempts, round_started_at, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?)",
            (
                d.id,
                event_id,
                d.route,
                d.repository,
                d.event_type,
                d.client_payload,
                QUEUED,
                now,
                now,
                now,
                now,
            ),
        )

    # -- delivery -----------------------------------------------------------------------

    def claim(self, owner: str, limit: int, lease: float, now: float) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries to ``owner`` until ``now + lease``."""
        with self._transaction() as cur:
            rows = self._exec(
                cur,
                "SELECT id, event_id, repository, event_type, client_payload, attempts, "
                "round_attempts, round_started_at, state, lease_owner FROM deliveries"
                + self._pending_index
                + f" WHERE {_PENDING} AND due_at <= ? ORDER BY due_at LIMIT ?"
                + self._claim_lock,
                (now, limit),
            ).fetchall()
            claimed = []
            for r in rows:
                if r[8] == IN_FLIGHT:  # its worker died or hung: say so in the history
                    self._record(
                        cur,
                        r[0],
                        Attempt(
                            r[5],
                            now,
                            now,
                            None,
                            ABANDONED,
                            "no answer recorded before the lease ran out",
                            None,
                            r[9] or "",
                        ),
                    )
                self._exec(
                    cur,
                    "UPDATE deliveries SET state = ?, due_at = ?, lease_owner = ?, "
                    "attempts = attempts + 1, round_attempts = round_attempts + 1, "
                    "updated_at = ? WHERE event_id = ? AND id = ?",
                    (IN_FLIGHT, now + lease, owner, now, r[1], r[0]),
                )
                claimed.append(Claimed(r[0], r[1], r[2], r[3], r[4], r[5] + 1, r[6] + 1, r[7]))
            return claimed

    def _record(self, cur: Cursor, delivery_id: str, a: Attempt) -> None:
        self._exec(
            cur,
            f"INSERT INTO attempts (delivery_id, {_ATTEMPT_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                delivery_id,
                a.attempt,
                a.started_at,
                a.finished_at,
                a.status,
                a.outcome,
                a.response,
                a.wait,
                a.worker,
            ),
        )

    def finish(
        self, claimed: Claimed, owner: str, attempt: Attempt, state: str, due_at: float
    ) -> bool:
        """Record ``attempt`` and move the delivery to ``state`` (due again at ``due_at``).

        Returns False when ``owner`` no longer holds the lease (another worker took the
        delivery over); the attempt is recorded all the same, the state is left alone.
        """
        with self._transaction() as cur:
            self._record(cur, claimed.id, attempt)
            finished = attempt.finished_at if state in (DELIVERED, DEAD) else None
            error = None if state == DELIVERED else attempt.response
            self._exec(
                cur,
                "UPDATE deliveries SET state = ?, due_at = ?, lease_owner = NULL, "
                "updated_at = ?, finished_at = ?, last_status = ?, last_error = ? "
                "WHERE event_id = ? AND id = ? AND lease_owner = ? AND state = ?",
                (
                    state,
                    due_at,
                    attempt.finished_at,
                    finished,
                    attempt.status,
                    error,
                    claimed.event_id,
                    claimed.id,
                    owner,
                    IN_FLIGHT,
                ),
            )
            held = cur.rowcount == 1
            if held and state == QUEUED:
                self._notify(cur)
            return held

    def next_due(self) -> float | None:
        """When the earliest queued or leased delivery falls due (None: nothing pending)."""
        with self._transaction(write=False) as cur:
            row = self._exec(
                cur,
                f"SELECT MIN(due_at) FROM deliveries{self._pending_index} WHERE {_PENDING}",
            ).fetchone()
            return None if row is None or row[0] is None else float(row[0])

    def prune_dedupe(self, before: float) -> int:
        with self._transaction() as cur:
            return self._exec(cur, "DELETE FROM dedupe WHERE seen_at < ?", (before,)).rowcount

    # -- operations ---------------------------------------------------------------------

    def stats(self) -> Stats:
        with self._transaction(write=False) as cur:
            rows = self._exec(
                cur, "SELECT state, COUNT(*) FROM deliveries GROUP BY state"
            ).fetchall()
            oldest = self._exec(
                cur,
                f"SELECT MIN(created_at) FROM deliveries{self._pending_index} WHERE {_PENDING}",
            ).fetchone()
        by_state = {s: 0 for s in (QUEUED, IN_FLIGHT, DELIVERED, DEAD)}
        by_state.update({r[0]: int(r[1]) for r in rows})
        return Stats(by_state, None if oldest is None or oldest[0] is None else oldest[0])

    def list_events(self, state: str | None = None, limit: int = 50) -> list[Event]:
        """Newest first (ids sort by time); with ``state``, only events having a delivery in
        that state."""
        with self._transaction(write=False) as cur:
            if state is None:
                ids = self._exec(
                    cur,
                    "SELECT id FROM events ORDER BY id DESC LIMIT ?",
                    (limit,),
                ).fetchall()
            else:
                ids = self._exec(
                    cur,
                    "SELECT id FROM events e WHERE EXISTS (SELECT 1 FROM deliveries d "
                    "WHERE d.event_id = e.id AND d.state = ?) "
                    "ORDER BY id DESC LIMIT ?",
                    (state, limit),
                ).fetchall()
            return [self._event(cur, r[0], history=False) for r in ids]

    def get_event(self, event_id: str) -> Event:
        with self._transaction(write=False) as cur:
            return self._event(cur, event_id, history=True)

    def _event(self, cur: Cursor, event_id: str, history: bool) -> Event:
        row = self._exec(
            cur,
            "SELECT id, source, endpoint, received_at, body FROM events WHERE id = ?",
            (event_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no event with id {event_id!r}")
        rows = self._exec(
            cur,
            f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE event_id = ? ORDER BY id",
            (event_id,),
        ).fetchall()
        names = [c.strip() for c in _DELIVERY_COLS.split(",")]
        deliveries = tuple(
            Delivery(
                **dict(zip(names, r, strict=True)),
                history=self._history(cur, r[0]) if history else (),
            )
            for r in rows
        )
        return Event(row[0], row[1], row[2], row[3], bytes(row[4]), deliveries)

    def _history(self, cur: Cursor, delivery_id: str) -> tuple[Attempt, ...]:
        rows = self._exec(
            cur,
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE delivery_id = ? ORDER BY attempt, id",
            (delivery_id,),
        ).fetchall()
        return tuple(Attempt(*r) for r in rows)

    def replay(self, event_id: str, now: float) -> list[str]:
        """Queue every delivery of the event again that is not pending; their ids."""
        with self._transaction() as cur:
            self._event(cur, event_id, history=False)  # NotFound for an unknown id
            ids = self._requeue(cur, "event_id = ?", (event_id,), now)
        return ids

    def replay_dead(self, now: float) -> list[str]:
        with self._transaction() as cur:
            return self._requeue(cur, "state = ?", (DEAD,), now)

    def _requeue(self, cur: Cursor, where: str, params: tuple[Any, ...], now: float) -> list[str]:
        rows = self._exec(
            cur,
            f"SELECT event_id, id FROM deliveries WHERE {where} AND state IN (?, ?) ORDER BY id",
            (*params, DELIVERED, DEAD),
        ).fetchall()
        for event_id, delivery_id in rows:
            self._exec(
                cur,
                "UPDATE deliveries SET state = ?, due_at = ?, round_attempts = 0, "
                "round_started_at = ?, updated_at = ?, finished_at = NULL "
                "WHERE event_id = ? AND id = ?",
                (QUEUED, now, now, now, event_id, delivery_id),
            )
        if rows:
            self._notify(cur)
        return [r[1] for r in rows]
