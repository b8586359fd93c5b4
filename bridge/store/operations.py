"""Reading and replaying what the store holds: for operators, the admin API, metrics."""

from __future__ import annotations

from typing import Any

from bridge.errors import NotFound
from bridge.store.base import ATTEMPT_COLS, DELIVERY_COLS, FINISHED, PENDING, Cursor, StoreBase
from bridge.store.models import DEAD, DELIVERED, IN_FLIGHT, QUEUED, Attempt, Delivery, Event, Stats


class Operations(StoreBase):
    def stats(self) -> Stats:
        with self._transaction(write=False) as cur:
            rows = [
                *self._exec(
                    cur,
                    f"SELECT state, COUNT(*) FROM deliveries{self._pending_index} "
                    f"WHERE {PENDING} GROUP BY state",
                ).fetchall(),
                *self._exec(
                    cur,
                    f"SELECT state, COUNT(*) FROM deliveries{self._finished_index} "
                    f"WHERE {FINISHED} GROUP BY state",
                ).fetchall(),
            ]
            oldest = self._exec(
                cur,
                f"SELECT MIN(created_at) FROM deliveries{self._pending_index} WHERE {PENDING}",
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
            f"SELECT {DELIVERY_COLS} FROM deliveries WHERE event_id = ? ORDER BY id",
            (event_id,),
        ).fetchall()
        names = [c.strip() for c in DELIVERY_COLS.split(",")]
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
            f"SELECT {ATTEMPT_COLS} FROM attempts WHERE delivery_id = ? ORDER BY attempt, id",
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
            f"SELECT event_id, id FROM deliveries WHERE {where} AND {FINISHED} ORDER BY id",
            params,
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
