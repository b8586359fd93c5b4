"""What catch-up of the W&B registry keeps in the store, and its lease.

Catch-up reads the registry collections that managed automations watch and dispatches
the changes no webhook announced. The store keeps:

- ``registry_seen``: the items (see :mod:`bridge.routing.changes`) last seen in each
  collection, to diff the next pass against;
- ``registry_scopes``: the scopes already read once (a scope's first pass records what
  is there and dispatches nothing);
- ``leases``: one pass at a time across processes and replicas. The row is taken by an
  UPDATE that checks, as it writes, that the last lease ended and the last pass finished
  at least ``every`` ago: two takes at once find one row changed, one of them wins.

A pass's findings are recorded in one transaction, each change through the ``changes``
table as :class:`~bridge.store.sql.SqlStore` describes: a change a webhook dispatched
for a route is not dispatched again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace

from bridge.states import Origin
from bridge.store.models import PassResult
from bridge.store.tx import Tx, echoed, insert_delivery, insert_event

LEASE = "catch_up"  # the row of ``leases`` a pass holds
_CHUNK = 500  # values per IN (...) list


def _chunks(values: Sequence[str]) -> Iterable[tuple[list[str], str]]:
    """``values`` in slices small enough for one statement, each with its ``?`` marks."""
    for start in range(0, len(values), _CHUNK):
        chunk = list(values[start : start + _CHUNK])
        yield chunk, ", ".join("?" * len(chunk))


class CatchUpState:
    """The statements of catch-up, over the store's transactions."""

    def __init__(self, transaction: Callable[..., AbstractContextManager[Tx]]) -> None:
        self._transaction = transaction

    # -- one pass at a time -------------------------------------------------------------

    def take(self, owner: str, now: float, lease: float, every: float) -> bool:
        """Hold the pass until ``now + lease`` for ``owner``: True when no other holds it
        and the last pass finished at least ``every`` seconds ago (0: a pass by hand)."""
        with self._transaction() as tx:
            tx.run(
                "INSERT INTO leases (name, owner, until_at, done_at) VALUES (?, NULL, 0, NULL) "
                "ON CONFLICT (name) DO NOTHING",
                (LEASE,),
            )
            return (
                tx.run(
                    "UPDATE leases SET owner = ?, until_at = ? WHERE name = ? AND until_at <= ? "
                    "AND (done_at IS NULL OR done_at <= ?)",
                    (owner, now + lease, LEASE, now, now - every),
                ).rowcount
                == 1
            )

    def extend(self, owner: str, now: float, lease: float) -> bool:
        """Keep ``owner``'s hold until ``now + lease``; False when it no longer holds it
        (it ran out, and another may have taken it)."""
        with self._transaction() as tx:
            return (
                tx.run(
                    "UPDATE leases SET until_at = ? WHERE name = ? AND owner = ? AND until_at > ?",
                    (now + lease, LEASE, owner, now),
                ).rowcount
                == 1
            )

    def release(self, owner: str, now: float, done: bool) -> bool:
        """End ``owner``'s hold; ``done``: the pass finished (the next waits ``every``
        from now). False when the lease ran out and another took it over."""
        done_at = ", done_at = ?" if done else ""
        params = (now, now) if done else (now,)
        with self._transaction() as tx:
            return (
                tx.run(
                    f"UPDATE leases SET owner = NULL, until_at = ?{done_at} "
                    "WHERE name = ? AND owner = ?",
                    (*params, LEASE, owner),
                ).rowcount
                == 1
            )

    # -- what earlier passes saw ----------------------------------------------------------

    def baselined(self, scopes: Sequence[str]) -> set[str]:
        """Those of ``scopes`` an earlier pass read whole."""
        found: set[str] = set()
        with self._transaction(write=False) as tx:
            for chunk, marks in _chunks(scopes):
                rows = tx.run(
                    f"SELECT scope FROM registry_scopes WHERE scope IN ({marks})", chunk
                ).fetchall()
                found.update(str(r[0]) for r in rows)
        return found

    def changes_in(self, collections: Sequence[str]) -> set[str]:
        """The change keys recorded for ``collections`` (``project/collection``, as in a
        change key), for any route: a pass drops those whose item is gone."""
        found: set[str] = set()
        with self._transaction(write=False) as tx:
            for collection in collections:  # names of letters, digits, '-', '_' and '.'
                rows = tx.run(
                    "SELECT change FROM changes WHERE change LIKE ?", (f"%|{collection}|%",)
                ).fetchall()
                found.update(str(r[0]) for r in rows)
        return found

    def seen(self, collections: Sequence[str]) -> dict[str, set[str]]:
        """The items last seen in each of ``collections`` (an empty set: none)."""
        found: dict[str, set[str]] = {c: set() for c in collections}
        with self._transaction(write=False) as tx:
            for chunk, marks in _chunks(collections):
                rows = tx.run(
                    f"SELECT collection, item FROM registry_seen WHERE collection IN ({marks})",
                    chunk,
                ).fetchall()
                for collection, item in rows:
                    found[str(collection)].add(str(item))
        return found

    # -- recording a pass -----------------------------------------------------------------

    def record(self, result: PassResult, now: float, owner: str | None = None) -> list[str] | None:
        """Record a pass in one transaction; the ids of the events it stored (changes
        neither a webhook nor an earlier pass dispatched, nor the bridge wrote back).

        With ``owner``, only while ``owner`` holds the lease (None otherwise, and nothing
        is recorded: a pass that lost it leaves the work to the one that took it); the
        lease's row stays locked until the commit, so no other pass takes it meanwhile."""
        recorded = []
        with self._transaction() as tx:
            if owner is not None:
                held = tx.run(
                    "UPDATE leases SET until_at = until_at WHERE name = ? AND owner = ? "
                    "AND until_at > ?",
                    (LEASE, owner, now),
                ).rowcount
                if held != 1:
                    return None
            for scope in result.baselines:
                tx.run(
                    "INSERT INTO registry_scopes (scope, baseline_at) VALUES (?, ?) "
                    "ON CONFLICT (scope) DO NOTHING",
                    (scope, now),
                )
            for collection in result.forget:
                tx.run("DELETE FROM registry_seen WHERE collection = ?", (collection,))
            for seen in result.collections:
                for item in seen.added:
                    tx.run(
                        "INSERT INTO registry_seen (collection, item) VALUES (?, ?) "
                        "ON CONFLICT (collection, item) DO NOTHING",
                        (seen.collection, item),
                    )
                for item in seen.removed:
                    tx.run(
                        "DELETE FROM registry_seen WHERE collection = ? AND item = ?",
                        (seen.collection, item),
                    )
            for change in result.removed_changes:
                tx.run(
                    "DELETE FROM changes WHERE change = ? AND seen_at < ?",
                    (change, result.read_at),
                )
            # in key order, as an accept writes its changes (no deadlock between the two)
            for found in sorted(result.caught_up, key=lambda c: (c.route, c.change)):
                if echoed(tx, found.echoes, now):
                    continue
                event = replace(found.event, origin=Origin.CATCH_UP)
                inserted = tx.run(
                    "INSERT INTO changes (route, change, origin, event_id, seen_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (route, change) DO NOTHING",
                    (found.route, found.change, Origin.CATCH_UP, event.id, now),
                ).rowcount
                if inserted != 1:
                    continue
                insert_event(tx, event)
                for d in found.deliveries:
                    insert_delivery(tx, event.id, d, now)
                tx.queued = tx.queued or bool(found.deliveries)
                recorded.append(event.id)
        return recorded
