"""The store: what the bridge keeps, written once in SQL that SQLite and PostgreSQL share.

:class:`SqlStore` holds every statement. A backend subclass (:mod:`bridge.store.sqlite`,
:mod:`bridge.store.postgres`) supplies connections and transactions (``_begin``), how a
claim locks rows, how workers in other processes are woken, and the schema
(:mod:`bridge.store.migrations`).

The guarantees rest on transactions:

- accept: an event, its deliveries and its dedupe row commit together, before the 202.
- dedupe: one row per (source, request path, body hash), inserted with ON CONFLICT ... DO
  UPDATE only when the old row is outside the window. Two identical requests at once, in
  any processes: one insert wins, the other meets the conflict and answers ``duplicate_of``.
- one dispatch per registry change and route: a ``changes`` row per (route, change key),
  written by the accept of a managed webhook and by catch-up's record in the transaction
  that queues the delivery. Catch-up inserts only where no row is (ON CONFLICT DO
  NOTHING); a webhook overwrites a webhook's row (W&B sends one per change) but never
  catch-up's. Whichever commits second meets the first's row and queues nothing.
- claim: rows are selected and leased in one transaction (SQLite: the write lock BEGIN
  IMMEDIATE takes; PostgreSQL: FOR UPDATE SKIP LOCKED), so no two workers hold the same
  delivery; a worker that dies leaves its rows to be claimed again when the lease ends.
- replay: one UPDATE queues only deliveries that are finished, so replays at once queue
  a delivery once. A replay locks its events' rows (PostgreSQL), as a prune does before
  it checks again what it deletes: the two never cross (see :mod:`retention`).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from bridge.errors import NotFound, StoreUnavailable
from bridge.logs import fields
from bridge.states import GITHUB_KINDS, AttemptOutcome, DeliveryState, Origin
from bridge.store import catchup, console, retention, runs, wake
from bridge.store.clauses import DELIVERY_COLS, FINISHED, GITHUB, PENDING, RUN_FILTERS
from bridge.store.migrations import Script, run_script
from bridge.store.models import (
    Accepted,
    Attempt,
    Claimed,
    Delivery,
    Event,
    NewDelivery,
    NewEvent,
    NewRun,
    Replayed,
    Stats,
    Watch,
)
from bridge.store.tx import (
    ECHO_CHUNK,
    Cursor,
    Tx,
    echoed,
    insert_delivery,
    insert_event,
    requeue,
)
from bridge.store.wake import Waiter

__all__ = ["Cursor", "SqlStore", "Tx", "Waiter"]

log = logging.getLogger(__name__)

ATTEMPT_COLS = "attempt, started_at, finished_at, status, outcome, response, wait, worker"
# The pending deliveries of each lane of the workers (GitHub's kinds, and the rest:
# notifications and write-backs), each in a partial index of its own: a backlog of one
# lane is never scanned by the other's look for work. Literals, so that the indexes
# apply to every plan.
LANES = (f"{PENDING} AND {GITHUB}", f"{PENDING} AND NOT {GITHUB}")


def _lanes(kinds: Sequence[str]) -> tuple[str, ...]:
    """The WHERE clauses of the lanes that hold ``kinds`` (every lane if none)."""
    if not kinds:
        return LANES
    github = set(kinds) & set(GITHUB_KINDS)
    if not github:
        return LANES[1:]
    if github == set(kinds):
        return LANES[:1]
    raise ValueError(f"no lane claims {sorted(kinds)} together")


class SqlStore(abc.ABC):
    """Events, their deliveries and attempts; see the module docstring for the guarantees."""

    migrations: tuple[Script, ...] = ()  # the schema, one script per version
    database = ""  # names the database for the in-process wake-up bell (a path, a URL)
    _placeholder = "?"  # the driver's parameter marker
    _claim_lock = ""  # appended to the claim's SELECT (FOR UPDATE SKIP LOCKED on PostgreSQL)
    _row_lock = ""  # locks the events a replay or prune reads (FOR UPDATE on PostgreSQL)

    # -- what a backend supplies --------------------------------------------------------

    @abc.abstractmethod
    def _begin(self, write: bool) -> AbstractContextManager[Cursor]:
        """A cursor inside a transaction, committed on exit, rolled back on error, with
        driver errors translated to StoreUnavailable. ``write=False`` marks a read-only
        one, which must not hold up writers."""

    @abc.abstractmethod
    def _lock_schema(self, tx: Tx) -> None:
        """Keep other processes out while migrating, for the rest of the transaction."""

    @abc.abstractmethod
    def _describe(self) -> str:
        """Which store this is, for messages (never with a password)."""

    @abc.abstractmethod
    def _listen(self, bell: wake.Bell) -> None:
        """Ring ``bell`` for work other processes queue, until ``bell.listening()`` ends."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connections this store opened in this process."""

    @abc.abstractmethod
    def _announce(self, tx: Tx) -> None:
        """Inside a transaction that queued work: tell other processes once it commits."""

    @abc.abstractmethod
    def _announce_committed(self) -> None:
        """After a commit that queued work: tell other processes (must never raise)."""

    # -- transactions and wake-ups ------------------------------------------------------

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Tx]:
        local = wake.bell(self.database)
        with self._begin(write) as cur:
            tx = Tx(cur, self._placeholder)
            yield tx
            others = tx.queued and not local.has_waiters()
            if others:  # no worker here to take it: tell the other processes
                self._announce(tx)
        if tx.queued:
            self._wake(local, others)

    def _wake(self, local: wake.Bell, others: bool) -> None:
        # The transaction is committed: nothing here may turn it into an error.
        try:
            local.ring()
            if others:
                self._announce_committed()
        except Exception:
            log.exception("waking delivery workers of %s failed; they poll", self._describe())

    @property
    def runs(self) -> runs.RunTracking:
        """Following the workflow runs that delivered dispatches started."""
        return runs.RunTracking(self._transaction, self._claim_lock)

    @property
    def catchup(self) -> catchup.CatchUpState:
        """What catch-up of the W&B registry remembers, and its one-pass-at-a-time lease."""
        return catchup.CatchUpState(self._transaction)

    @property
    def console(self) -> console.ConsoleState:
        """What the operator console reads and records: events by filter, replays by
        an admin, sessions, the sign-in throttle, the actions log, workers' heartbeats."""
        return console.ConsoleState(self._transaction, self.stats, self._row_lock)

    def waiter(self) -> Waiter:
        """A worker's wake-up line: woken by work queued in any process (a hint only)."""
        return wake.bell(self.database).waiter(self._listen)

    # -- schema ---------------------------------------------------------------------------

    def migrate(self, create: bool = True) -> None:
        """Create or upgrade the schema, recording its version; refuse a newer schema.

        ``create=False`` (the commands that act on what a running bridge stored) only
        upgrades: a store without the bridge's tables is StoreUnavailable, left as it was."""
        with self._transaction() as tx:
            self._lock_schema(tx)
            tx.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = int(tx.run("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0)
            if current == 0 and not create:  # raising rolls the CREATE TABLE back
                raise StoreUnavailable(
                    f"{self._describe()} holds no wandb-bridge tables; start `wandb-bridge "
                    "serve` (or `worker`) on it first, or check store: in the config"
                )
            if current > len(self.migrations):
                raise StoreUnavailable(
                    f"{self._describe()} has schema version {current}, newer than this bridge "
                    f"knows ({len(self.migrations)}); upgrade the bridge"
                )
            for version in range(current + 1, len(self.migrations) + 1):
                run_script(tx, self.migrations[version - 1])
                tx.run("INSERT INTO schema_version (version) VALUES (?)", (version,))
        if 0 < current < len(self.migrations):  # committed: say so, for the upgrade's record
            log.info(
                "store upgraded",
                extra=fields(
                    store=self._describe(), schema_from=current, schema_to=len(self.migrations)
                ),
            )

    # -- health -----------------------------------------------------------------------------

    def check_writable(self, now: float) -> None:
        """Raise StoreUnavailable unless a write commits right now (readiness: would an
        event be accepted?). Commits a one-row heartbeat."""
        with self._transaction() as tx:
            if tx.run("UPDATE heartbeat SET beat_at = ? WHERE id = 1", (now,)).rowcount != 1:
                raise StoreUnavailable(f"{self._describe()} lacks its heartbeat row; migrate it")

    @abc.abstractmethod
    def check_room(self, need: int) -> None:
        """Raise StoreUnavailable unless the store has room for ``need`` more bytes."""

    # -- intake -----------------------------------------------------------------------------

    def accept(
        self,
        event: NewEvent,
        deliveries: Sequence[NewDelivery],
        dedupe_window: float,
        changes: Mapping[str, str] | None = None,
        echoes: Sequence[str] = (),
    ) -> Accepted:
        """Commit ``event`` and its deliveries, unless the same source sent the same body
        to the same path within ``dedupe_window`` seconds (0: no dedupe).

        ``changes`` maps a delivery's id to the registry change it dispatches (a managed
        webhook): a delivery whose change catch-up already dispatched for its route is
        left out (``Accepted.caught_up``). ``echoes``: the items a webhook announces (an
        alias or tag added); when the bridge noted any as its own write-back, no delivery
        is queued (``Accepted.echo``). The event is stored in every case."""
        now = event.received_at
        changes = changes or {}
        with self._transaction() as tx:
            if dedupe_window > 0:
                key = (event.source, event.endpoint, event.body_sha256)
                tx.run(
                    "INSERT INTO dedupe (source, endpoint, body_sha256, event_id, seen_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, endpoint, body_sha256) "
                    "DO UPDATE SET event_id = excluded.event_id, seen_at = excluded.seen_at "
                    "WHERE dedupe.seen_at <= ?",
                    (*key, event.id, now, now - dedupe_window),
                )
                if tx.cur.rowcount == 0:
                    row = tx.run(
                        "SELECT event_id FROM dedupe "
                        "WHERE source = ? AND endpoint = ? AND body_sha256 = ?",
                        key,
                    ).fetchone()
                    return Accepted(event.id, duplicate_of=row[0])
            insert_event(tx, event)
            caught_up, dropped = {}, set()
            # in key order, as catch-up records them: two transactions never wait on each
            # other's rows in opposite orders (a deadlock on PostgreSQL)
            keyed = sorted((d.route, changes[d.id], d.id) for d in deliveries if d.id in changes)
            for route, change, delivery_id in keyed:
                if not self._webhook_change(tx, route, change, event):
                    caught_up[route] = self._change_event(tx, route, change)
                    dropped.add(delivery_id)
            queue = [d for d in deliveries if d.id not in dropped]
            if queue and 0 < len(echoes) <= ECHO_CHUNK:
                # the echo check rides on the first insert: one statement fewer per event
                echo = not insert_delivery(tx, event.id, queue[0], now, unless_echo=echoes)
                rest = [] if echo else queue[1:]
            else:
                echo = echoed(tx, echoes, now)
                rest = [] if echo else queue
            for d in rest:
                insert_delivery(tx, event.id, d, now)
            kept = [] if echo else [d.id for d in queue]
            tx.queued = bool(kept)
        return Accepted(event.id, kept=tuple(kept), caught_up=caught_up, echo=echo)

    def _webhook_change(self, tx: Tx, route: str, change: str, event: NewEvent) -> bool:
        """Record that ``event``'s webhook announced ``change`` for ``route``; False when
        catch-up dispatched it already. A webhook's row yields to the next webhook (W&B
        sends one per change: a second is the alias moved away and back)."""
        return (
            tx.run(
                "INSERT INTO changes (route, change, origin, event_id, seen_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (route, change) DO UPDATE "
                "SET origin = excluded.origin, event_id = excluded.event_id, "
                f"seen_at = excluded.seen_at WHERE changes.origin <> '{Origin.CATCH_UP}'",
                (route, change, Origin.WEBHOOK, event.id, event.received_at),
            ).rowcount
            == 1
        )

    def _change_event(self, tx: Tx, route: str, change: str) -> str:
        row = tx.run(
            "SELECT event_id FROM changes WHERE route = ? AND change = ?", (route, change)
        ).fetchone()
        return str(row[0])

    def note_echoes(self, items: Sequence[str], until: float) -> None:
        """Note ``items`` (aliases and tags the bridge is about to write back) until
        ``until``: their webhooks and catch-up's sight of them dispatch nothing. Commit
        this before the write-back sends anything."""
        with self._transaction() as tx:
            for item in items:
                tx.run(
                    "INSERT INTO echoes (item, until_at) VALUES (?, ?) ON CONFLICT (item) "
                    "DO UPDATE SET until_at = excluded.until_at "
                    "WHERE echoes.until_at < excluded.until_at",
                    (item, until),
                )

    def echoed(self, items: Sequence[str], now: float) -> bool:
        """Whether any of ``items`` is noted as the bridge's own write-back at ``now``."""
        with self._transaction(write=False) as tx:
            return echoed(tx, items, now)

    def prune_echoes(self, now: float) -> int:
        """Forget the notes of write-backs whose window ended by ``now``; how many."""
        with self._transaction() as tx:
            return tx.run("DELETE FROM echoes WHERE until_at <= ?", (now,)).rowcount

    def prune(self, before: float, batch: int = 500, dry_run: bool = False) -> int:
        """Delete up to ``batch`` finished events received before ``before`` (see
        :mod:`bridge.store.retention`); how many. ``dry_run`` counts and deletes nothing."""
        with self._transaction(write=not dry_run) as tx:
            ids = retention.prunable(tx, before, batch)
            if not dry_run:
                ids = retention.delete_events(tx, ids, before, self._row_lock)
            return len(ids)

    def prune_dedupe(self, before: float) -> int:
        """Forget dedupe rows last seen before ``before``; how many."""
        with self._transaction() as tx:
            return tx.run("DELETE FROM dedupe WHERE seen_at < ?", (before,)).rowcount

    # -- delivery -------------------------------------------------------------------------

    def claim(
        self, owner: str, limit: int, lease: float, now: float, kinds: Sequence[str] = ()
    ) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries (of ``kinds``, default all) to ``owner``
        until ``now + lease``."""
        with self._transaction() as tx:
            rows: list[Any] = []
            for lane in _lanes(kinds):
                rows += tx.run(
                    "SELECT id, event_id, repository, event_type, client_payload, attempts, "
                    "round_attempts, round_started_at, state, lease_owner, kind, workflow, "
                    f"ref, notifier, route FROM deliveries WHERE {lane} AND due_at <= ? "
                    f"ORDER BY due_at LIMIT ?{self._claim_lock}",
                    (now, limit - len(rows)),
                ).fetchall()
            claimed = []
            for r in rows:
                if r[8] == DeliveryState.IN_FLIGHT:  # its worker died or hung: say so
                    note = "no answer recorded before the lease ran out"
                    lost = Attempt(
                        r[5], now, now, None, AttemptOutcome.ABANDONED, note, None, r[9] or ""
                    )
                    self._record(tx, r[0], lost)
                tx.run(
                    "UPDATE deliveries SET state = ?, due_at = ?, lease_owner = ?, "
                    "attempts = attempts + 1, round_attempts = round_attempts + 1, "
                    "updated_at = ? WHERE event_id = ? AND id = ?",
                    (DeliveryState.IN_FLIGHT, now + lease, owner, now, r[1], r[0]),
                )
                claimed.append(
                    Claimed(r[0], r[1], r[2], r[3], r[4], r[5] + 1, r[6] + 1, r[7], *r[10:15])
                )
            return claimed

    def _record(self, tx: Tx, delivery_id: str, a: Attempt) -> None:
        fields = (a.attempt, a.started_at, a.finished_at, a.status, a.outcome, a.response)
        tx.run(
            f"INSERT INTO attempts (delivery_id, {ATTEMPT_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (delivery_id, *fields, a.wait, a.worker),
        )

    def finish(
        self,
        claimed: Claimed,
        owner: str,
        attempt: Attempt,
        state: str,
        due_at: float,
        *,
        watch: Watch | None = None,
        run: NewRun | None = None,
        notices: Sequence[NewDelivery] = (),
    ) -> bool:
        """Record ``attempt`` and move the delivery to ``state`` (due again at ``due_at``).

        With the same commit: ``watch`` starts the search for the runs it started (with
        ``run`` already known when GitHub named it), ``notices`` queue notifications.
        Returns False when ``owner`` no longer holds the lease (another worker took the
        delivery over); the attempt is recorded all the same, the state is left alone.
        """
        with self._transaction() as tx:
            self._record(tx, claimed.id, attempt)
            final = state in (DeliveryState.DELIVERED, DeliveryState.DEAD)
            finished = attempt.finished_at if final else None
            error = None if state == DeliveryState.DELIVERED else attempt.response
            lease = (claimed.event_id, claimed.id, owner, DeliveryState.IN_FLIGHT)
            tx.run(
                "UPDATE deliveries SET state = ?, due_at = ?, lease_owner = NULL, "
                "updated_at = ?, finished_at = ?, last_status = ?, last_error = ? "
                "WHERE event_id = ? AND id = ? AND lease_owner = ? AND state = ?",
                (state, due_at, attempt.finished_at, finished, attempt.status, error, *lease),
            )
            held = tx.cur.rowcount == 1
            if held and watch is not None:
                runs.start_watch(tx, watch, run, attempt.finished_at)
            for notice in notices if held else ():
                insert_delivery(tx, claimed.event_id, notice, attempt.finished_at)
            tx.queued = held and (state == DeliveryState.QUEUED or bool(notices))
            return held

    def next_due(self, kinds: Sequence[str] = ()) -> float | None:
        """When the earliest queued or leased delivery (of ``kinds``, default all) falls
        due (None: nothing pending)."""
        with self._transaction(write=False) as tx:
            dues = [
                tx.run(f"SELECT MIN(due_at) FROM deliveries WHERE {lane}").fetchone()[0]
                for lane in _lanes(kinds)
            ]
            row = (min((d for d in dues if d is not None), default=None),)
            return None if row is None or row[0] is None else float(row[0])

    # -- rate-limit pauses, shared by every worker of every process and replica -------------

    def pause(self, credential: str, until: float) -> None:
        """Pause deliveries with ``credential`` (a name for it, never the secret) until
        ``until``; a later pause already recorded stands."""
        with self._transaction() as tx:
            tx.run(
                "INSERT INTO pauses (credential, until_at) VALUES (?, ?) "
                "ON CONFLICT (credential) DO UPDATE SET until_at = excluded.until_at "
                "WHERE pauses.until_at < excluded.until_at",
                (credential, until),
            )

    def paused_until(self, credential: str, now: float) -> float | None:
        """When the pause on ``credential`` ends; None when it is not paused at ``now``."""
        with self._transaction(write=False) as tx:
            row = tx.run(
                "SELECT until_at FROM pauses WHERE credential = ? AND until_at > ?",
                (credential, now),
            ).fetchone()
            return None if row is None else float(row[0])

    # -- reading and replaying: operators, the admin API, metrics ---------------------------

    def stats(self) -> Stats:
        with self._transaction(write=False) as tx:
            by_state: dict[str, int] = {s: 0 for s in DeliveryState}
            for where in (*LANES, FINISHED):  # each counted in its own partial index
                count = f"SELECT state, COUNT(*) FROM deliveries WHERE {where} GROUP BY state"
                for state, n in tx.run(count).fetchall():
                    by_state[state] += int(n)
            oldest = [
                tx.run(f"SELECT MIN(created_at) FROM deliveries WHERE {lane}").fetchone()[0]
                for lane in LANES
            ]
        return Stats(by_state, min((t for t in oldest if t is not None), default=None))

    def list_events(
        self, state: str | None = None, limit: int = 50, run: str | None = None
    ) -> list[Event]:
        """Newest first (ids sort by time). ``state``: only events with a dispatch (not a
        notification nor a write-back) in that state; ``run``: only events whose runs came to
        that (a :class:`~bridge.states.RunFilter`)."""
        where, params = [], []
        if state is not None:
            where.append(
                "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state = ? "
                f"AND d.{GITHUB})"
            )
            params.append(state)
        if run is not None:
            where.append(RUN_FILTERS[run])
        sql = "SELECT id FROM events e"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._transaction(write=False) as tx:
            ids = tx.run(f"{sql} ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
            return [self._event(tx, r[0], history=False) for r in ids]

    def get_event(self, event_id: str) -> Event:
        with self._transaction(write=False) as tx:
            return self._event(tx, event_id, history=True)

    def _event(self, tx: Tx, event_id: str, history: bool) -> Event:
        row = tx.run(
            "SELECT id, source, endpoint, received_at, body, origin, model FROM events "
            "WHERE id = ?",
            (event_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no event with id {event_id!r}")
        rows = tx.run(
            f"SELECT {DELIVERY_COLS} FROM deliveries WHERE event_id = ? ORDER BY id",
            (event_id,),
        ).fetchall()
        names = [c.strip() for c in DELIVERY_COLS.split(",")]
        found = runs.runs_of_event(tx, event_id)
        watches = runs.watches_of_event(tx, event_id)
        deliveries = tuple(
            Delivery(
                **dict(zip(names, r, strict=True)),
                history=self._history(tx, r[0]) if history else (),
                watch=watches.get(r[0]),
                runs=tuple(x for x in found if x.delivery_id == r[0]),
            )
            for r in rows
        )
        return Event(row[0], row[1], row[2], row[3], bytes(row[4]), deliveries, row[5], row[6])

    def _history(self, tx: Tx, delivery_id: str) -> tuple[Attempt, ...]:
        rows = tx.run(
            f"SELECT {ATTEMPT_COLS} FROM attempts WHERE delivery_id = ? ORDER BY attempt, id",
            (delivery_id,),
        ).fetchall()
        return tuple(Attempt(*r) for r in rows)

    def replay(self, event_id: str, now: float) -> Replayed:
        """Queue the event's finished dispatches again (not the notifications nor the
        write-backs their outcomes sent: new outcomes send new ones). Those queued or in
        flight already are left as they are: replaying twice queues nothing more."""
        dispatches = f"event_id = ? AND {GITHUB}"
        with self._transaction() as tx:
            # The event's row lock keeps a prune from deleting it under the replay.
            row = tx.run(f"SELECT id FROM events WHERE id = ?{self._row_lock}", (event_id,))
            if row.fetchone() is None:
                raise NotFound(f"no event with id {event_id!r}")
            pending = tx.run(
                f"SELECT id FROM deliveries WHERE {dispatches} AND {PENDING} ORDER BY id",
                (event_id,),
            ).fetchall()
            queued = requeue(tx, dispatches, (event_id,), now)
            return Replayed(queued, [r[0] for r in pending])

    def replay_dead(self, now: float) -> list[str]:
        """Queue every dead delivery again; their ids."""
        with self._transaction() as tx:
            tx.run(  # row locks on their events keep a prune from deleting them meanwhile
                "SELECT id FROM events WHERE id IN "
                f"(SELECT event_id FROM deliveries WHERE state = ?) ORDER BY id{self._row_lock}",
                (DeliveryState.DEAD,),
            ).fetchall()
            return requeue(tx, "state = ?", (DeliveryState.DEAD,), now)
