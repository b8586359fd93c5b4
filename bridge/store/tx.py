"""A transaction as the store's statements see it, and the one way an event is stored and
a delivery queued."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from bridge.states import DeliveryState
from bridge.store.clauses import FINISHED
from bridge.store.models import NewDelivery, NewEvent

ECHO_CHUNK = 500  # items looked up in one statement (bound parameters have a limit)


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Tx:
    """A cursor inside an open transaction. Set ``queued`` when it queues work: workers
    are woken once it commits."""

    def __init__(self, cur: Cursor, placeholder: str) -> None:
        self.cur = cur
        self.queued = False
        self._placeholder = placeholder

    def run(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Execute ``sql``, written with ``?`` placeholders, and return the cursor."""
        self.cur.execute(sql.replace("?", self._placeholder), params)
        return self.cur


def insert_event(tx: Tx, event: NewEvent) -> None:
    """Store ``event`` (its deliveries go in with :func:`insert_delivery`)."""
    tx.run(
        "INSERT INTO events (id, source, endpoint, received_at, body_sha256, body, origin, "
        "model) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.id,
            event.source,
            event.endpoint,
            event.received_at,
            event.body_sha256,
            event.body,
            event.origin,
            event.model,
        ),
    )


def echoed(tx: Tx, items: Sequence[str], now: float) -> bool:
    """Whether any of ``items`` is a write-back of the bridge's, noted until after ``now``."""
    for start in range(0, len(items), ECHO_CHUNK):
        chunk = list(items[start : start + ECHO_CHUNK])
        marks = ", ".join("?" * len(chunk))
        row = tx.run(
            f"SELECT 1 FROM echoes WHERE item IN ({marks}) AND until_at > ? LIMIT 1",
            (*chunk, now),
        ).fetchone()
        if row is not None:
            return True
    return False


def insert_delivery(
    tx: Tx, event_id: str, d: NewDelivery, now: float, unless_echo: Sequence[str] = ()
) -> bool:
    """Queue ``d`` under ``event_id``, due at once; with ``unless_echo`` (at most
    ``ECHO_CHUNK`` items), only when none of them is noted as the bridge's own write-back
    (:func:`echoed`, in the same statement). Whether it was queued."""
    values = (
        d.id,
        event_id,
        d.route,
        d.repository,
        d.event_type,
        d.client_payload,
        DeliveryState.QUEUED,
        now,
        now,
        now,
        now,
        d.kind,
        d.workflow,
        d.ref,
        d.notifier,
    )
    columns = (
        "INSERT INTO deliveries (id, event_id, route, repository, event_type, "
        "client_payload, state, due_at, attempts, round_attempts, round_started_at, "
        "created_at, updated_at, kind, workflow, ref, notifier) "
    )
    row = "?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?"
    if not unless_echo:
        return tx.run(f"{columns}VALUES ({row})", values).rowcount == 1
    if len(unless_echo) > ECHO_CHUNK:
        raise ValueError(f"at most {ECHO_CHUNK} items")
    marks = ", ".join("?" * len(unless_echo))
    return (
        tx.run(
            f"{columns}SELECT {row} WHERE NOT EXISTS "
            f"(SELECT 1 FROM echoes WHERE item IN ({marks}) AND until_at > ?)",
            (*values, *unless_echo, now),
        ).rowcount
        == 1
    )


def requeue(tx: Tx, where: str, params: Sequence[Any], now: float) -> list[str]:
    """Queue again, due at once, the finished (delivered or dead) deliveries ``where``
    holds; their ids, sorted.

    One statement that checks the state as it updates: a replay running at the same time
    (PostgreSQL re-reads a row another transaction just changed) finds the delivery
    queued and leaves it."""
    rows = tx.run(
        "UPDATE deliveries SET state = ?, due_at = ?, round_attempts = 0, "
        "round_started_at = ?, updated_at = ?, finished_at = NULL "
        f"WHERE {where} AND {FINISHED} RETURNING id",
        (DeliveryState.QUEUED, now, now, now, *params),
    ).fetchall()
    tx.queued = bool(rows)
    return sorted(r[0] for r in rows)
