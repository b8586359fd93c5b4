"""The store's logic, written once in SQL that SQLite and PostgreSQL both speak.

Intake and delivery live here; reading and replaying in :mod:`bridge.store.operations`;
what a backend must supply in :mod:`bridge.store.base`.

Atomicity, the two races that matter:
- dedupe: a unique (source, body hash) row is inserted with ON CONFLICT ... DO UPDATE
  only when the old row is outside the window. Two identical requests at the same
  instant: one insert wins, the other sees the conflict and answers ``duplicate_of``.
- claim: rows are selected and leased in one transaction (SQLite: the write lock taken
  by BEGIN IMMEDIATE; PostgreSQL: FOR UPDATE SKIP LOCKED), so two workers never hold
  the same delivery; a worker that dies leaves its rows to be claimed when the lease ends.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.store.base import ATTEMPT_COLS, PENDING, Cursor, Waiter
from bridge.store.models import (
    ABANDONED,
    DEAD,
    DELIVERED,
    IN_FLIGHT,
    QUEUED,
    Accepted,
    Attempt,
    Claimed,
    NewDelivery,
    NewEvent,
)
from bridge.store.operations import Operations

__all__ = ["Cursor", "SqlStore", "Waiter"]


class SqlStore(Operations):
    """Everything the bridge stores; see the module docstring for the guarantees."""

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
                + f" WHERE {PENDING} AND due_at <= ? ORDER BY due_at LIMIT ?"
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
            f"INSERT INTO attempts (delivery_id, {ATTEMPT_COLS}) "
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
                f"SELECT MIN(due_at) FROM deliveries{self._pending_index} WHERE {PENDING}",
            ).fetchone()
            return None if row is None or row[0] is None else float(row[0])

    def prune_dedupe(self, before: float) -> int:
        with self._transaction() as cur:
            return self._exec(cur, "DELETE FROM dedupe WHERE seen_at < ?", (before,)).rowcount
