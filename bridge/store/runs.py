"""Following the workflow runs that delivered dispatches started, in the store.

A *watch* is the search for a delivery's runs: it starts in the transaction that records
the delivery as delivered, and ends ``done`` (runs found) or ``no_run`` (none within the
window). Each run found is followed until it concludes or the bridge gives up on it; a
run belongs to one dispatch at most (a unique index on its id).
Watches and runs are leased to one worker at a time, like deliveries. Notifications of
an outcome are queued in the same transaction as the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import astuple
from typing import Any

from bridge.states import DeliveryKind, RunState, WatchState
from bridge.store.models import NewDelivery, NewRun, Run, Searched, Watch
from bridge.store.tx import Tx, insert_delivery

RUN_COLS = (  # in the order of Run's fields
    "run_id, workflow, html_url, status, conclusion, created_at, updated_at, "
    "delivery_id, event_id, repository, seen_at, state, etag, checks"
)
WATCH_COLS = (
    "delivery_id, event_id, repository, kind, workflow, ref, dispatched_at, search_until, "
    "etag, checks"
)
BUDGET_WINDOW = 3600.0
FINISH_BATCH = 100  # looks recorded per transaction: intake waits for no long one


def start_watch(tx: Tx, watch: Watch, run: NewRun | None, now: float) -> None:
    """Begin looking for ``watch``'s runs; a run GitHub already named is followed at once."""
    state = WatchState.SEARCHING if run is None else WatchState.DONE
    tx.run(
        f"INSERT INTO watches ({WATCH_COLS}, state, due_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id) DO UPDATE "
        "SET state = excluded.state, due_at = excluded.due_at, "
        "dispatched_at = excluded.dispatched_at, search_until = excluded.search_until, "
        "etag = NULL, checks = 0, lease_owner = NULL",
        (
            watch.delivery_id,
            watch.event_id,
            watch.repository,
            watch.kind,
            watch.workflow,
            watch.ref,
            watch.dispatched_at,
            watch.search_until,
            None,
            0,
            state,
            now,
        ),
    )
    if run is not None:
        insert_run(tx, watch, run, now)


def insert_run(tx: Tx, watch: Watch, run: NewRun, now: float, actor: str | None = None) -> bool:
    """Follow ``run`` for ``watch``'s delivery from now on. A run belongs to at most one
    dispatch: one already known (for this delivery or another) is left as it is, and
    False is returned."""
    return (
        tx.run(
            f"INSERT INTO runs ({RUN_COLS}, actor, due_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                *astuple(run),
                watch.delivery_id,
                watch.event_id,
                watch.repository,
                now,
                RunState.FOLLOWING,
                None,
                0,
                actor,
                now,
            ),
        ).rowcount
        == 1
    )


def runs_of_event(tx: Tx, event_id: str) -> list[Run]:
    rows = tx.run(
        f"SELECT {RUN_COLS} FROM runs WHERE event_id = ? ORDER BY delivery_id, run_id",
        (event_id,),
    ).fetchall()
    return [Run(*r) for r in rows]


def watches_of_event(tx: Tx, event_id: str) -> dict[str, str]:
    """Each delivery's search state (searching, done, no_run) by delivery id."""
    rows = tx.run("SELECT delivery_id, state FROM watches WHERE event_id = ?", (event_id,))
    return {r[0]: r[1] for r in rows.fetchall()}


class RunTracking:
    """The statements of run tracking, over the store's transactions."""

    def __init__(
        self, transaction: Callable[..., AbstractContextManager[Tx]], claim_lock: str = ""
    ) -> None:
        self._transaction = transaction
        self._claim_lock = claim_lock

    def _due(self, tx: Tx, table: str, cols: str, state: str, now: float, limit: int) -> list[Any]:
        """Up to ``limit`` rows of ``table`` in ``state`` that are due, locked to claim."""
        return tx.run(
            f"SELECT {cols} FROM {table} WHERE state = '{state}' AND due_at <= ? "
            f"ORDER BY due_at LIMIT ?{self._claim_lock}",
            (now, limit),
        ).fetchall()

    def claim_watches(self, owner: str, limit: int, lease: float, now: float) -> list[Watch]:
        """Lease up to ``limit`` searches that are due."""
        with self._transaction() as tx:
            rows = self._due(tx, "watches", WATCH_COLS, WatchState.SEARCHING, now, limit)
            watches = []
            for r in rows:
                tx.run(
                    "UPDATE watches SET due_at = ?, lease_owner = ? WHERE delivery_id = ?",
                    (now + lease, owner, r[0]),
                )
                known = tx.run("SELECT run_id FROM runs WHERE delivery_id = ?", (r[0],))
                found = tuple(int(k[0]) for k in known.fetchall())
                watches.append(
                    Watch(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], found)
                )
            return watches

    def finish_watches(self, looks: Sequence[Searched], owner: str, now: float) -> list[bool]:
        """Record the looks of one search, a transaction per ``FINISH_BATCH``; for each,
        False when ``owner`` no longer held the watch (nothing of it is recorded)."""
        held: list[bool] = []
        for start in range(0, len(looks), FINISH_BATCH):
            with self._transaction() as tx:
                for look in looks[start : start + FINISH_BATCH]:
                    held.append(_finish(tx, look, owner, now))
        return held

    def attributed(self, run_ids: Sequence[int]) -> dict[int, str]:
        """The delivery each of ``run_ids`` is attributed to, for those that are."""
        found: dict[int, str] = {}
        with self._transaction(write=False) as tx:
            for start in range(0, len(run_ids), 500):
                chunk = list(run_ids[start : start + 500])
                marks = ", ".join("?" * len(chunk))
                rows = tx.run(
                    f"SELECT run_id, delivery_id FROM runs WHERE run_id IN ({marks})", chunk
                ).fetchall()
                found.update((int(r[0]), str(r[1])) for r in rows)
        return found

    def own_actor(self) -> str | None:
        """Who triggers the bridge's runs, as GitHub showed it on the latest run found by
        its event id (a repository dispatch's run: certainly the bridge's); None before
        there is one."""
        with self._transaction(write=False) as tx:
            row = tx.run(
                "SELECT r.actor FROM runs r JOIN watches w ON w.delivery_id = r.delivery_id "
                f"WHERE r.actor IS NOT NULL AND w.kind = '{DeliveryKind.DISPATCH}' "
                "ORDER BY r.seen_at DESC LIMIT 1"
            ).fetchone()
        return None if row is None else str(row[0])

    def claim_runs(self, owner: str, limit: int, lease: float, now: float) -> list[Run]:
        """Lease up to ``limit`` followed runs that are due for a look."""
        with self._transaction() as tx:
            rows = self._due(tx, "runs", RUN_COLS, RunState.FOLLOWING, now, limit)
            for r in rows:
                tx.run(
                    "UPDATE runs SET due_at = ?, lease_owner = ? "
                    "WHERE delivery_id = ? AND run_id = ?",
                    (now + lease, owner, r[7], r[0]),
                )
            return [Run(*r) for r in rows]

    def finish_run(
        self,
        run: Run,
        owner: str,
        now: float,
        *,
        seen: NewRun | None,
        state: str,
        due_at: float,
        etag: str | None,
        notices: Sequence[NewDelivery] = (),
    ) -> bool:
        """Record one look at ``run``: what GitHub said (``seen``; None for a 304)."""
        with self._transaction() as tx:
            sets, params = ["state = ?", "due_at = ?", "etag = ?"], [state, due_at, etag]
            if seen is not None:
                sets += [
                    "status = ?",
                    "conclusion = ?",
                    "updated_at = ?",
                    "html_url = ?",
                    "workflow = COALESCE(?, workflow)",
                    # a workflow dispatch's run details carry no time: the first look does
                    "created_at = COALESCE(created_at, ?)",
                ]
                params += [
                    seen.status,
                    seen.conclusion,
                    seen.updated_at,
                    seen.html_url,
                    seen.workflow,
                    seen.created_at,
                ]
            if state != RunState.FOLLOWING:
                sets.append("finished_at = ?")
                params.append(now)
            held = (
                tx.run(
                    f"UPDATE runs SET {', '.join(sets)}, lease_owner = NULL, "
                    "checks = checks + 1 WHERE delivery_id = ? AND run_id = ? "
                    "AND lease_owner = ?",
                    (*params, run.delivery_id, run.run_id, owner),
                ).rowcount
                == 1
            )
            if held:
                for notice in notices:
                    insert_delivery(tx, run.event_id, notice, now)
                tx.queued = bool(notices)
            return held

    def next_due(self) -> float | None:
        """When the earliest search or followed run is due (None: nothing to follow)."""
        with self._transaction(write=False) as tx:
            rows = [
                tx.run(
                    f"SELECT MIN(due_at) FROM watches WHERE state = '{WatchState.SEARCHING}'"
                ).fetchone(),
                tx.run(
                    f"SELECT MIN(due_at) FROM runs WHERE state = '{RunState.FOLLOWING}'"
                ).fetchone(),
            ]
        dues = [float(r[0]) for r in rows if r is not None and r[0] is not None]
        return min(dues) if dues else None

    def budget_left(self, credential: str, now: float, per_hour: int) -> bool:
        """Whether a request of this hour's budget is left (reads only)."""
        with self._transaction(write=False) as tx:
            row = tx.run(
                "SELECT window_start, used FROM budget WHERE credential = ?", (credential,)
            ).fetchone()
        return row is None or row[0] <= now - BUDGET_WINDOW or int(row[1]) < per_hour

    def take_budget(self, credential: str, now: float, per_hour: int) -> bool:
        """Spend one GitHub request of ``credential``'s hourly budget for following runs;
        False when the budget of this hour is spent (every worker, every replica)."""
        with self._transaction() as tx:
            tx.run(
                "INSERT INTO budget (credential, window_start, used) VALUES (?, ?, 0) "
                "ON CONFLICT (credential) DO NOTHING",
                (credential, now),
            )
            expired = now - BUDGET_WINDOW
            params: tuple[Any, ...] = (expired, now, expired, credential, expired, per_hour)
            return (
                tx.run(
                    "UPDATE budget SET "
                    "window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END, "
                    "used = CASE WHEN window_start <= ? THEN 1 ELSE used + 1 END "
                    "WHERE credential = ? AND (window_start <= ? OR used < ?)",
                    params,
                ).rowcount
                == 1
            )


def _finish(tx: Tx, look: Searched, owner: str, now: float) -> bool:
    watch = look.watch
    held = (
        tx.run(
            "UPDATE watches SET state = ?, due_at = ?, etag = ?, lease_owner = NULL, "
            "checks = checks + 1 WHERE delivery_id = ? AND lease_owner = ?",
            (look.state, look.due_at, look.etag, watch.delivery_id, owner),
        ).rowcount
        == 1
    )
    if held:
        found = look.found
        kept = [insert_run(tx, watch, r, now, look.actors.get(r.run_id)) for r in found]
        if found and not any(kept) and not watch.found and look.state == WatchState.DONE:
            # another replica attributed it first: this dispatch keeps looking
            tx.run(
                "UPDATE watches SET state = ? WHERE delivery_id = ?",
                (WatchState.SEARCHING, watch.delivery_id),
            )
        for notice in look.notices:
            insert_delivery(tx, watch.event_id, notice, now)
        tx.queued = tx.queued or bool(look.notices)
    return held
