"""One catch-up pass: take the store's lease, read W&B, diff, record. And its loop.

A pass holds the store's lease (one pass at a time across processes and replicas),
reads the automations and the collections they watch (:mod:`bridge.wandb.registry`),
diffs them with what the store saw (:mod:`bridge.wandb.catchup`), and records the
result in one transaction: the events of the changes no webhook announced are stored
and dispatched like any other. Every W&B request first spends one of
``wandb.catch_up.max_requests_per_hour``, counted in the store for every process of the
bridge; a pass whose budget runs out, or that W&B rate-limits or fails, stops there and
records only the collections it read whole. ``serve`` runs a pass at start, then every
``wandb.catch_up.every``; after a 429 the next pass waits for its Retry-After.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.config.model import CatchUp, Config, WandbConfig
from bridge.config.secrets import Secret
from bridge.errors import StoreUnavailable, WandbError
from bridge.ids import new_id
from bridge.store import SqlStore
from bridge.store.models import PassResult
from bridge.wandb import registry
from bridge.wandb.api import WandbApi
from bridge.wandb.catchup import Collection, plan_pass
from bridge.wandb.client import GraphQL
from bridge.wandb.state import read_automations
from bridge.wandb.wanted import wanted
from bridge.wandb.watchers import watchers

log = logging.getLogger(__name__)
# A pass holds the store's lease this long, renewed while it reads: a process killed
# mid-pass keeps others (and its own restart) waiting this long at most.
LEASE = 60.0
RENEW_AFTER = LEASE / 4
READ_LIMIT = 480.0  # the longest a pass reads W&B; what it did not read waits
MAX_WAIT = 3600.0  # the longest W&B's Retry-After may hold catch-up off
LOOK_AGAIN = 30.0  # how soon a process that did not get the lease tries again


class MeteredGraphQL(GraphQL):
    """W&B's GraphQL client that asks ``spend`` before each request: a reason not to
    send it (the budget is spent, the pass's time is up, the bridge is stopping) stops
    the pass with a WandbError saying so."""

    def __init__(
        self,
        base_url: str,
        api_key: Secret,
        spend: Callable[[], str | None],
        secrets: Iterable[Secret] = (),
    ) -> None:
        super().__init__(base_url, api_key, secrets=secrets)
        self._spend = spend
        self.requests = 0

    def execute(
        self, what: str, operation: str, query: str, variables: Mapping[str, Any], fix: str
    ) -> dict[str, Any]:
        why = self._spend()
        if why is not None:
            raise WandbError(f"catch-up did not {what}: {why}")
        self.requests += 1
        return super().execute(what, operation, query, variables, fix)


@dataclass(frozen=True)
class PassReport:
    """What one pass read, found and recorded (``recorded``: event ids; none on a dry
    run), what it left out and why, and when W&B asked it to wait until."""

    collections: tuple[Collection, ...]
    result: PassResult
    recorded: tuple[str, ...]
    requests: int
    missed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    not_before: float | None = None
    dry_run: bool = False


class CatchUpRunner:
    """Catch-up passes for one bridge config, over its store."""

    def __init__(
        self,
        config: Config,
        store: SqlStore,
        key: Secret,
        *,
        owner: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert config.wandb is not None
        self.config = config
        self.wb: WandbConfig = config.wandb
        self.settings = config.wandb.catch_up or CatchUp()
        self.store = store
        self.key = key
        self.owner = owner
        self.clock = clock
        self.credential = f"wandb-catch-up|{self.wb.base_url}"  # names the budget's row
        self._stop = threading.Event()

    def run_pass(self, *, every: float, dry_run: bool = False) -> PassReport | None:
        """One pass; None when another holds the lease or the last whole pass started
        less than ``every`` seconds ago (0: a pass by hand). A dry run takes no lease and
        writes nothing to the store."""
        started = self.clock()
        if not dry_run and not self.store.catchup.take(self.owner, started, LEASE, every):
            return None
        done = False
        try:
            report = self._pass(dry_run)
            done = True
            return report
        finally:
            if not dry_run:
                self._release(started, done)

    def _release(self, started: float, done: bool) -> None:
        # A whole pass is dated from its start: passes start ``every`` apart, so a change
        # waits ``every`` at most, not ``every`` plus the time a pass takes.
        try:
            self.store.catchup.release(self.owner, started if done else self.clock(), done)
        except StoreUnavailable as exc:  # the lease then ends by itself
            log.warning("catch-up: cannot release its lease (%s)", exc)

    def _pass(self, dry_run: bool) -> PassReport:
        gql = MeteredGraphQL(
            self.wb.base_url, self.key, self._spender(dry_run), secrets=self.config.secrets()
        )
        api = WandbApi(gql, self.wb.entity)
        notes: list[str] = []
        read_at = self.clock()
        try:
            automations = read_automations(api)
            wants, _ = wanted(self.config, self.wb, api.features())
            watching, notes = watchers(automations, self.config, self.wb, wants, api.org_entity())
            reading, stopped = registry.read(api, watching)
        except WandbError as exc:  # W&B down, a refused key: nothing read, nothing recorded
            log.error("catch-up pass: %s", exc)
            return PassReport((), PassResult(), (), gql.requests, (str(exc),), (), exc.not_before)
        finally:
            gql.close()
        seen = self.store.catchup.seen(sorted(reading.collections))
        baselined = self.store.catchup.baselined(sorted({w.baseline for w in watching}))
        names = sorted({f"{c.project}/{c.name}" for c in reading.collections.values()})
        result, refused = plan_pass(
            self.config,
            self.wb.source,
            watching,
            reading,
            seen,
            baselined,
            self.clock(),
            new_id,
            recorded=self.store.catchup.changes_in(names),
            read_at=read_at,
        )
        recorded: list[str] | None = []
        if not dry_run:
            recorded = self.store.catchup.record(result, self.clock(), self.owner)
        if recorded is None:
            why = "its lease ran out and another pass took over: this one recorded nothing"
            missed = (*reading.missed, why)
            recorded = []
        else:
            missed = reading.missed
        report = PassReport(
            collections=tuple(reading.collections[c] for c in sorted(reading.collections)),
            result=result,
            recorded=tuple(recorded),
            requests=gql.requests,
            missed=missed,
            notes=(*notes, *refused),
            not_before=stopped.not_before if stopped is not None else None,
            dry_run=dry_run,
        )
        _log(report)
        return report

    def _spender(self, dry_run: bool) -> Callable[[], str | None]:
        """The check before each W&B request of a pass."""
        per_hour = self.settings.max_requests_per_hour
        deadline = self.clock() + READ_LIMIT
        renewed = self.clock()
        spent = 0
        budget = (
            f"its budget of {per_hour} W&B requests an hour is spent "
            "(wandb.catch_up.max_requests_per_hour); the next pass goes on"
        )

        def spend() -> str | None:
            nonlocal spent, renewed
            now = self.clock()
            if self._stop.is_set():
                return "the bridge is stopping"
            if now > deadline:
                return f"the pass has read for {READ_LIMIT:g} s; the next pass goes on"
            if dry_run:  # nothing written to the store: the budget of this pass alone
                spent += 1
                return budget if spent > per_hour else None
            if now - renewed > RENEW_AFTER:
                if not self.store.catchup.extend(self.owner, now, LEASE):
                    return "its lease ran out and another pass took over"
                renewed = now
            if not self.store.runs.take_budget(self.credential, now, per_hour):
                return budget
            return None

        return spend

    def loop(self, stop: threading.Event) -> None:
        """``serve``'s catch-up: a pass at once, then every ``every`` (longer when W&B
        asked to wait), until ``stop`` is set.

        The first pass of a process does not wait for ``every`` since the last one: the
        bridge may have been away, and what changed meanwhile is dispatched now. Other
        processes starting at the same moment find the lease taken and wait."""
        self._stop = stop
        every = self.settings.every
        first = True
        while not stop.is_set():
            wait = min(every, LOOK_AGAIN)
            started = self.clock()
            try:
                report = self.run_pass(every=0.0 if first else every)
                first = False
                if report is not None:
                    wait = next_wait(every, started, self.clock(), report.not_before)
            except StoreUnavailable as exc:
                log.error("catch-up: store unavailable (%s); retrying", exc)
            except Exception:  # a bug must not stop catch-up for good
                log.exception("catch-up: unexpected error; retrying")
            stop.wait(wait)


def next_wait(every: float, started: float, now: float, not_before: float | None) -> float:
    """How long until the next pass: it starts ``every`` after this one did, and not
    before W&B's Retry-After; but no answer (a Retry-After of years, or of more digits
    than a clock holds) may stop catch-up for longer than MAX_WAIT."""
    wait = max(every - (now - started), 1.0)
    if not_before is not None and not_before - now > wait:
        wait = not_before - now
    return min(wait, max(every, MAX_WAIT))


def _log(report: PassReport) -> None:
    changes = sum(len(c.added) for c in report.result.collections)
    log.info(
        "catch-up pass: %d collections read, %d W&B requests, %d items new, %d events "
        "found, %d recorded, %d left out%s",
        len(report.collections),
        report.requests,
        changes,
        len(report.result.caught_up),
        len(report.recorded),
        len(report.missed),
        " (dry run)" if report.dry_run else "",
    )
    for line in (*report.missed, *report.notes):
        log.warning("catch-up: %s", line)
