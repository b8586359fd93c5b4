"""What the operator console reads and records in the store.

- Events by filter, newest first, a page at a time (keyset: ``id < before``; ids sort by
  time), with their deliveries and runs, loaded for the whole page in a few statements.
- Replays by an admin: only dead deliveries are queued again (a second click queues
  nothing), each replay recorded in ``admin_actions`` in the same transaction.
- Sessions (kept by the hash of their id, never the id), the sign-in throttle per
  address, the actions log and the delivery workers' heartbeats: shared by every worker
  and replica through the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from bridge.states import DeliveryState, RunState, WatchState
from bridge.store.clauses import DELIVERY_COLS, FINISHED, GITHUB, PENDING, RUN_FILTERS
from bridge.store.models import (
    AdminAction,
    BudgetUse,
    ConsoleSession,
    Delivery,
    Event,
    EventFilter,
    NowReport,
    Page,
    Pause,
    RecentError,
    Run,
    Stats,
    WorkerSeen,
    target_name,
)
from bridge.store.runs import BUDGET_WINDOW, RUN_COLS
from bridge.store.tx import Tx, requeue

EVENT_COLS = "e.id, e.source, e.endpoint, e.received_at, e.body, e.origin, e.model"
SIGN_IN_FAILURES = 5  # wrong tokens from one address ...
SIGN_IN_WINDOW = 600.0  # ... within this many seconds: it waits for the window's end
WORKER_MEMORY = 86400.0  # a worker unseen this long is forgotten
REPLAY, REPLAY_DEAD = "replay", "replay_dead"
_DEAD = f"state = '{DeliveryState.DEAD}'"  # a literal, as FINISHED: its index applies
_LISTED_IDS = 50  # delivery ids a bulk replay's log row names
_CHUNK = 500  # values per IN (...) list
SPARSE = 2000  # deliveries a filter matches, below which their events are listed
_ID_END = "\U0010ffff"  # after every id that starts with a given prefix


def where_clause(tx: Tx, filters: EventFilter) -> tuple[list[str], list[Any]]:
    """The conditions on events ``e`` that ``filters`` make, and their parameters.

    A filter on deliveries (``state``, ``repository``, ``route``) is read from an index
    (pending rows: the pending index; dead ones: the finished index, whose WHERE the
    literal ``FINISHED`` repeats; the repository and route indexes). When few rows
    match (under ``SPARSE``, counted in the index), their events are listed from it and
    looked up; when many do, each event, newest first, is checked for one (a page fills
    after a few thousand events at most). Either way no filter reads every event.
    Raises ValueError for a state or run outcome that does not exist."""
    where: list[str] = []
    params: list[Any] = []

    def deliveries(condition: str, values: list[Any]) -> None:
        found = tx.run(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE {condition} LIMIT ?) AS f",
            (*values, SPARSE),
        ).fetchone()
        if int(found[0]) < SPARSE:
            where.append(f"e.id IN (SELECT event_id FROM deliveries WHERE {condition})")
        else:
            where.append(f"EXISTS (SELECT 1 FROM deliveries WHERE event_id = e.id AND {condition})")
        params.extend(values)

    state = filters.state
    if state is not None:
        if state not in tuple(DeliveryState):
            raise ValueError(f"state must be one of {', '.join(DeliveryState)}")
        # literals: the partial indexes of pending and finished rows apply
        rows = PENDING if state in (DeliveryState.QUEUED, DeliveryState.IN_FLIGHT) else FINISHED
        deliveries(f"{rows} AND {GITHUB} AND state = '{state}'", [])
    if filters.run is not None:
        if filters.run not in RUN_FILTERS:
            raise ValueError(f"run must be one of {', '.join(RUN_FILTERS)}")
        where.append(RUN_FILTERS[filters.run])
    if filters.repository:
        deliveries(f"repository = ? AND {GITHUB}", [filters.repository])
    if filters.route:
        deliveries(f"route = ? AND {GITHUB}", [filters.route])
    q = (filters.q or "").strip()
    if q.startswith("evt_"):  # an event id, or the start of one
        where.append("e.id >= ? AND e.id < ?")
        params += [q, q + _ID_END]
    elif searches_model(filters):
        where.append("LOWER(e.model) LIKE ? ESCAPE '!'")
        escaped = q.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
        params.append(f"%{escaped}%")
    return where, params


def searches_model(filters: EventFilter) -> bool:
    """Whether ``filters.q`` is a search in model names (else none, or an event id)."""
    q = (filters.q or "").strip()
    return bool(q) and not q.startswith("evt_")


def _and(where: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(where) if where else ""


def _load_events(tx: Tx, rows: Sequence[Any]) -> tuple[Event, ...]:
    """``rows`` (EVENT_COLS) as events with their deliveries and runs (not attempts)."""
    if not rows:
        return ()
    ids = [r[0] for r in rows]
    marks = ", ".join("?" * len(ids))
    found = tx.run(
        f"SELECT {DELIVERY_COLS} FROM deliveries WHERE event_id IN ({marks}) ORDER BY event_id, id",
        ids,
    ).fetchall()
    runs = [
        Run(*r)
        for r in tx.run(
            f"SELECT {RUN_COLS} FROM runs WHERE event_id IN ({marks}) ORDER BY delivery_id, run_id",
            ids,
        ).fetchall()
    ]
    watches = dict(
        tx.run(
            f"SELECT delivery_id, state FROM watches WHERE event_id IN ({marks})", ids
        ).fetchall()
    )
    names = [c.strip() for c in DELIVERY_COLS.split(",")]
    deliveries: dict[str, list[Delivery]] = {i: [] for i in ids}
    for r in found:
        deliveries[r[1]].append(
            Delivery(
                **dict(zip(names, r, strict=True)),
                watch=watches.get(r[0]),
                runs=tuple(x for x in runs if x.delivery_id == r[0]),
            )
        )
    return tuple(
        Event(r[0], r[1], r[2], r[3], bytes(r[4]), tuple(deliveries[r[0]]), r[5], r[6])
        for r in rows
    )


class ConsoleState:
    """The console's statements, over the store's transactions."""

    def __init__(
        self,
        transaction: Callable[..., AbstractContextManager[Tx]],
        stats: Callable[[], Stats],
        row_lock: str = "",
    ) -> None:
        self._transaction = transaction
        self._stats = stats
        self._row_lock = row_lock  # locks the events a replay reads (FOR UPDATE on PostgreSQL)

    # -- events ---------------------------------------------------------------------------

    def events(self, filters: EventFilter, before: str | None, limit: int = 50) -> Page:
        """Up to ``limit`` events that ``filters`` match, newest first, older than the
        event ``before`` (None: from the newest)."""
        with self._transaction(write=False) as tx:
            where, params = where_clause(tx, filters)
            if before:
                where.append("e.id < ?")
                params.append(before)
            rows = tx.run(
                f"SELECT {EVENT_COLS} FROM events e{_and(where)} ORDER BY e.id DESC LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
            events = _load_events(tx, rows[:limit])
        return Page(events, events[-1].id if len(rows) > limit else None)

    def dead_count(self, filters: EventFilter) -> int:
        """How many dead deliveries the events ``filters`` match hold (all pages): what
        ``replay_dead`` would queue."""
        with self._transaction(write=False) as tx:
            where, params = where_clause(tx, filters)
            # The dead rows, from the finished index, as ``e``: the filters see their
            # event ids, and read the events themselves only for a search in models.
            dead = f"d.{FINISHED} AND d.{_DEAD}"
            rows = f"SELECT d.event_id AS id FROM deliveries d WHERE {dead}"
            if searches_model(filters):
                rows = (
                    "SELECT d.event_id AS id, v.model AS model FROM deliveries d "
                    f"JOIN events v ON v.id = d.event_id WHERE {dead}"
                )
            row = tx.run(f"SELECT COUNT(*) FROM ({rows}) AS e{_and(where)}", params).fetchone()
        return int(row[0])

    # -- replays by an admin ----------------------------------------------------------------

    def replay_delivery(self, delivery_id: str, now: float, label: str) -> bool:
        """Queue the dead delivery ``delivery_id`` again and log it for ``label``; False
        (nothing changed) when no dead delivery has that id (queued already, say)."""
        with self._transaction() as tx:
            row = tx.run(  # found among the dead rows, by the index that holds them
                f"SELECT event_id FROM deliveries WHERE {FINISHED} AND {_DEAD} AND id = ?",
                (delivery_id,),
            ).fetchone()
            if row is None:
                return False
            # the event's row lock keeps a prune from deleting it under the replay
            tx.run(f"SELECT id FROM events WHERE id = ?{self._row_lock}", (row[0],)).fetchall()
            queued = requeue(tx, f"event_id = ? AND id = ? AND {_DEAD}", (row[0], delivery_id), now)
            if queued:
                _log(tx, now, label, REPLAY, delivery_id, f"event {row[0]}")
            return bool(queued)

    def replay_dead(self, filters: EventFilter, now: float, label: str) -> list[str]:
        """Queue again every dead delivery of the events ``filters`` match (all pages);
        their ids. One log row names the filter and what was queued."""
        dead = f"e.id IN (SELECT event_id FROM deliveries WHERE {FINISHED} AND {_DEAD})"
        queued: list[str] = []
        with self._transaction() as tx:
            where, params = where_clause(tx, filters)
            # row locks on their events keep a prune from deleting them meanwhile
            events = tx.run(
                f"SELECT e.id FROM events e{_and([*where, dead])} ORDER BY e.id{self._row_lock}",
                params,
            ).fetchall()
            for start in range(0, len(events), _CHUNK):
                chunk = [r[0] for r in events[start : start + _CHUNK]]
                marks = ", ".join("?" * len(chunk))
                where_dead = f"{_DEAD} AND event_id IN ({marks})"
                queued += requeue(tx, where_dead, chunk, now)
            queued.sort()
            tx.queued = bool(queued)
            if queued:
                listed = " ".join(queued[:_LISTED_IDS])
                more = len(queued) - _LISTED_IDS
                detail = f"{len(queued)} deliveries: {listed}" + (
                    f" and {more} more" if more > 0 else ""
                )
                _log(tx, now, label, REPLAY_DEAD, describe(filters), detail)
            return queued

    def actions(self, limit: int = 20) -> list[AdminAction]:
        """The latest ``limit`` admin actions, the latest first."""
        with self._transaction(write=False) as tx:
            return _actions(tx, limit)

    # -- sessions -----------------------------------------------------------------------

    def create_session(self, id_hash: str, label: str, csrf: str, now: float, ttl: float) -> None:
        """Keep a session until ``now + ttl`` (and forget those that ended)."""
        with self._transaction() as tx:
            tx.run("DELETE FROM console_sessions WHERE expires_at <= ?", (now,))
            tx.run(
                "INSERT INTO console_sessions (id_hash, label, csrf, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (id_hash, label, csrf, now, now + ttl),
            )

    def session(self, id_hash: str, now: float) -> ConsoleSession | None:
        """The session kept under ``id_hash``, unless it has ended by ``now``."""
        with self._transaction(write=False) as tx:
            row = tx.run(
                "SELECT label, csrf, created_at, expires_at FROM console_sessions "
                "WHERE id_hash = ? AND expires_at > ?",
                (id_hash, now),
            ).fetchone()
        return None if row is None else ConsoleSession(*row)

    def end_session(self, id_hash: str) -> None:
        with self._transaction() as tx:
            tx.run("DELETE FROM console_sessions WHERE id_hash = ?", (id_hash,))

    # -- the sign-in throttle, per address --------------------------------------------------

    def sign_in_failed(self, address: str, now: float, window: float = SIGN_IN_WINDOW) -> int:
        """Count a wrong token from ``address``; how many within its window so far (a
        window starts at the first failure and lasts ``window`` seconds)."""
        with self._transaction() as tx:
            tx.run("DELETE FROM sign_in_failures WHERE window_start <= ?", (now - window,))
            row = tx.run(
                "INSERT INTO sign_in_failures (address, failures, window_start) "
                "VALUES (?, 1, ?) ON CONFLICT (address) DO UPDATE "
                "SET failures = sign_in_failures.failures + 1 RETURNING failures",
                (address, now),
            ).fetchone()
        return int(row[0])

    def sign_in_blocked(
        self,
        address: str,
        now: float,
        limit: int = SIGN_IN_FAILURES,
        window: float = SIGN_IN_WINDOW,
    ) -> float | None:
        """Seconds ``address`` must wait before it may try again (``limit`` failures
        within the window); None when it may try now."""
        with self._transaction(write=False) as tx:
            row = tx.run(
                "SELECT window_start FROM sign_in_failures "
                "WHERE address = ? AND failures >= ? AND window_start > ?",
                (address, limit, now - window),
            ).fetchone()
        return None if row is None else float(row[0]) + window - now

    def sign_in_cleared(self, address: str) -> None:
        """Forget ``address``'s failures (it signed in)."""
        with self._transaction() as tx:
            tx.run("DELETE FROM sign_in_failures WHERE address = ?", (address,))

    # -- workers' heartbeats --------------------------------------------------------------

    def beat(self, owner: str, started_at: float, now: float) -> None:
        """Note that the delivery worker ``owner`` (started at ``started_at``) is alive."""
        with self._transaction() as tx:
            tx.run("DELETE FROM workers WHERE seen_at < ?", (now - WORKER_MEMORY,))
            tx.run(
                "INSERT INTO workers (owner, started_at, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT (owner) DO UPDATE SET started_at = excluded.started_at, "
                "seen_at = excluded.seen_at",
                (owner, started_at, now),
            )

    def workers(self, now: float, within: float = 90.0) -> list[WorkerSeen]:
        """The workers seen within ``within`` seconds before ``now``, by name."""
        with self._transaction(write=False) as tx:
            return _workers(tx, now, within)

    # -- the Now page -----------------------------------------------------------------------

    def now(self, now: float, within: float = 90.0) -> NowReport:
        """What is queued and followed, pauses in force, the follow budget spent this
        hour, the last 10 failures, the last 20 admin actions, the workers alive."""
        stats = self._stats()
        with self._transaction(write=False) as tx:
            following = f"SELECT COUNT(*) FROM runs WHERE state = '{RunState.FOLLOWING}'"
            runs = tx.run(following).fetchone()
            searches = tx.run(
                f"SELECT COUNT(*) FROM watches WHERE state = '{WatchState.SEARCHING}'"
            ).fetchone()
            pauses = tx.run(
                "SELECT credential, until_at FROM pauses WHERE until_at > ? ORDER BY credential",
                (now,),
            ).fetchall()
            budget = tx.run(
                "SELECT credential, window_start, used FROM budget ORDER BY credential"
            ).fetchall()
            errors = tx.run(
                "SELECT id, event_id, kind, repository, workflow, ref, notifier, state, "
                "updated_at, last_error FROM deliveries WHERE last_error IS NOT NULL "
                "ORDER BY updated_at DESC, id DESC LIMIT 10"
            ).fetchall()
            return NowReport(
                by_state=stats.by_state,
                oldest_queued_at=stats.oldest_queued_at,
                runs_followed=int(runs[0]),
                searches=int(searches[0]),
                pauses=tuple(Pause(str(c), float(u)) for c, u in pauses),
                budget=tuple(
                    BudgetUse(str(c), float(w), int(n) if w > now - BUDGET_WINDOW else 0)
                    for c, w, n in budget
                ),
                errors=tuple(
                    RecentError(r[0], r[1], target_name(*r[2:7]), r[7], float(r[8]), r[9])
                    for r in errors
                ),
                actions=tuple(_actions(tx, 20)),
                workers=tuple(_workers(tx, now, within)),
            )


def describe(filters: EventFilter) -> str:
    """``filters`` as a log row's target: ``state=dead repository=acme/svc`` (or ``all``)."""
    parts = [
        f"{name}={value}"
        for name, value in (
            ("state", filters.state),
            ("run", filters.run),
            ("repository", filters.repository),
            ("route", filters.route),
            ("q", filters.q),
        )
        if value
    ]
    return " ".join(parts) or "all"


def _log(tx: Tx, now: float, label: str, action: str, target: str, detail: str | None) -> None:
    tx.run(
        "INSERT INTO admin_actions (at, label, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (now, label, action, target, detail),
    )


def _actions(tx: Tx, limit: int) -> list[AdminAction]:
    rows = tx.run(
        "SELECT at, label, action, target, detail FROM admin_actions ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [AdminAction(*r) for r in rows]


def _workers(tx: Tx, now: float, within: float) -> list[WorkerSeen]:
    rows = tx.run(
        "SELECT owner, started_at, seen_at FROM workers WHERE seen_at >= ? ORDER BY owner",
        (now - within,),
    ).fetchall()
    return [WorkerSeen(*r) for r in rows]
