"""Pruning: finished events older than ``retention.events`` go, with all they hold.

An event is finished when none of its deliveries is queued or in flight, no search for
its runs is going on and none of its runs is still followed. Work in progress is never
touched. Batches keep each write transaction short. Event ids sort by the time they were
made, so the old ones are a range of the primary key: no index of its own to write on
every accept. An event's ``changes`` rows go with it (catch-up remembers what it saw in
``registry_seen``, so a change long past is not dispatched again). Dedupe rows are not
touched here: they expire after ``dedupe_window``; the notes of write-backs (``echoes``)
when their window ends.
"""

from __future__ import annotations

from bridge.ids import first_id
from bridge.states import RunState, WatchState
from bridge.store.clauses import PENDING
from bridge.store.tx import Tx

_FINISHED_EVENT = (
    "e.id < ? AND e.received_at < ? "
    "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id "
    f"AND d.{PENDING}) "
    "AND NOT EXISTS (SELECT 1 FROM watches w WHERE w.event_id = e.id "
    f"AND w.state = '{WatchState.SEARCHING}') "
    "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.event_id = e.id "
    f"AND r.state = '{RunState.FOLLOWING}')"
)


def prunable(tx: Tx, before: float, limit: int) -> list[str]:
    """Up to ``limit`` ids of finished events received before ``before``, oldest first."""
    rows = tx.run(
        f"SELECT e.id FROM events e WHERE {_FINISHED_EVENT} ORDER BY e.id LIMIT ?",
        (first_id("evt", before), before, limit),
    ).fetchall()
    return [r[0] for r in rows]


def delete_events(tx: Tx, ids: list[str], before: float, lock: str) -> list[str]:
    """Delete those of the events ``ids`` still finished, and everything recorded under
    them; the ids deleted.

    ``lock`` (PostgreSQL's FOR UPDATE) takes the events' rows first, in id order, and
    the check is made again after: a replay locks its event before queueing one of its
    deliveries, so it either finished first (and the check sees the queued delivery) or
    waits for this transaction and finds the event gone.
    """
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    tx.run(f"SELECT id FROM events WHERE id IN ({marks}) ORDER BY id{lock}", ids).fetchall()
    rows = tx.run(
        f"SELECT e.id FROM events e WHERE e.id IN ({marks}) AND {_FINISHED_EVENT} ORDER BY e.id",
        (*ids, first_id("evt", before), before),
    ).fetchall()
    finished = [r[0] for r in rows]
    for event_id in finished:
        deliveries = [
            r[0]
            for r in tx.run("SELECT id FROM deliveries WHERE event_id = ?", (event_id,)).fetchall()
        ]
        for delivery_id in deliveries:
            tx.run("DELETE FROM attempts WHERE delivery_id = ?", (delivery_id,))
        tx.run("DELETE FROM runs WHERE event_id = ?", (event_id,))
        tx.run("DELETE FROM watches WHERE event_id = ?", (event_id,))
        tx.run("DELETE FROM changes WHERE event_id = ?", (event_id,))
        tx.run("DELETE FROM deliveries WHERE event_id = ?", (event_id,))
        tx.run("DELETE FROM events WHERE id = ?", (event_id,))
    return finished
