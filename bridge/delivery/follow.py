"""Following the workflow runs that delivered dispatches started, to their conclusion.

A repository dispatch's run is found by the bridge's event id in its ``display_title``
(the workflow's ``run-name:``) among the repository's ``repository_dispatch`` runs; a
workflow dispatch names its run, or (on a server without run details) it is the earliest
run of that workflow on that ref created after the dispatch that no other dispatch has.
The listing is read page by page (newest first) back to the earliest dispatch searched.
A run is never attributed when it was created before the dispatch, by another event, by
another actor than the bridge's own, or to a second dispatch. Every first page is a
conditional read (ETag: a 304 costs no rate limit), looks grow rarer as a run ages, and
all of it stays within ``runs.max_requests_per_hour`` for the credential; a search the
budget or the page cap cut short never ends in "no run started".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.config.model import Config
from bridge.config.secrets import Redactor
from bridge.delivery.github import GitHubClient, parse_time
from bridge.delivery.outcomes import Announcer
from bridge.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from bridge.logs import fields
from bridge.metrics import Metrics
from bridge.states import SUCCESS_CONCLUSIONS, DeliveryKind, RunState, WatchState
from bridge.store import SqlStore
from bridge.store.models import NewRun, Run, Searched, Watch
from bridge.wandb.writeback import WriteBacks

log = logging.getLogger(__name__)
# GitHub shows a run's created_at in whole seconds, rounded down, and clocks kept by NTP
# differ by well under a second: a run of the dispatch may show a time up to this much
# before the bridge sent it, and a run any earlier is someone else's.
CLOCK_SKEW = 2.0
NO_BUDGET_WAIT = 60.0
BATCH = 8
# Due searches taken at once, grouped by repository: one listing serves them all, so a
# burst to one repository costs one read of its runs per look, not one per 100 dispatches.
SEARCH_BATCH = 1000
MAX_PAGES = 100  # pages of 100 runs read in one search; the rest waits for the next


def next_look(age: float, shortest: float = 10.0) -> float:
    """Seconds until the next look at something ``age`` seconds old: every ``shortest``
    seconds at first, then a tenth of its age, at most every 5 minutes."""
    return min(max(age / 10, shortest), 300.0)


def event_of(watch: Watch) -> str:
    """The event of the runs ``watch``'s dispatch starts."""
    return "workflow_dispatch" if watch.kind == DeliveryKind.WORKFLOW else "repository_dispatch"


def matches(watch: Watch, obj: Mapping[str, Any]) -> bool:
    """Is the run ``obj`` (GitHub's JSON) one that ``watch``'s dispatch may have started:
    its event, created since the dispatch, and its workflow and ref, or its event id?"""
    created = parse_time(obj.get("created_at"))
    if obj.get("event") != event_of(watch) or created is None:
        return False
    if created < watch.dispatched_at - CLOCK_SKEW:
        return False
    if watch.kind == DeliveryKind.WORKFLOW:
        path, wf = str(obj.get("path") or ""), watch.workflow or ""
        same = str(obj.get("workflow_id")) == wf if wf.isdigit() else path.endswith("/" + wf)
        return same and obj.get("head_branch") == short_ref(watch.ref or "")
    return watch.event_id in str(obj.get("display_title") or "")


def actor_of(obj: Mapping[str, Any]) -> str | None:
    """Who triggered the run: ``triggering_actor`` (a re-run's), else ``actor``."""
    for key in ("triggering_actor", "actor"):
        who = obj.get(key)
        login = who.get("login") if isinstance(who, dict) else None
        if isinstance(login, str) and login:
            return login
    return None


def short_ref(ref: str) -> str:
    """The branch or tag name a run reports as its ``head_branch``: GitHub takes a
    workflow dispatch's ``ref`` as ``main`` or as ``refs/heads/main`` alike."""
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


@dataclass
class Listing:
    """What one search read: the runs by id (GitHub's objects and the store's form), the
    first page's ETag (None unless every page was read), and ``reach``: None when the
    listing was read back to the earliest dispatch, else the oldest creation time read
    (every run created after it was seen)."""

    objects: dict[int, Mapping[str, Any]]
    runs: dict[int, NewRun]
    etag: str | None
    reach: float | None = None
    out_of_budget: bool = False

    def covers(self, watch: Watch) -> bool:
        """Whether every run ``watch``'s dispatch can have started was read."""
        return self.reach is None or watch.dispatched_at - CLOCK_SKEW > self.reach


class RunFollower:
    def __init__(
        self,
        config: Config,
        store: SqlStore,
        client: GitHubClient,
        metrics: Metrics,
        clock: Callable[[], float],
        owner: str,
        credential: str,
    ) -> None:
        self.cfg = config.runs
        self.lease = config.delivery.lease
        self.max_pause = config.delivery.max_backoff
        self.redact = Redactor(config.secrets())
        self.store = store
        self.client = client
        self.metrics = metrics
        self.clock = clock
        self.owner = owner
        self.credential = credential
        self.announce = Announcer(config, store, clock)
        self.write_backs = WriteBacks(config.routes, store, clock)

    def step(self) -> int:
        """Look for due runs and at due runs once; how many were handled."""
        now = self.clock()
        due = self.store.runs.next_due()
        if due is None or due > now or not self._may_ask(now):
            return 0  # nothing due, or GitHub may not be asked yet: nothing claimed or written
        watches = self.store.runs.claim_watches(self.owner, SEARCH_BATCH, self.lease, now)
        groups: dict[tuple[str, str], list[Watch]] = {}
        for w in watches:  # one listing per repository serves every dispatch to it
            groups.setdefault((w.repository, w.kind), []).append(w)
        for group in groups.values():
            self._search(group)
        runs = self.store.runs.claim_runs(self.owner, BATCH, self.lease, self.clock())
        for run in runs:
            self._look(run)
        return len(watches) + len(runs)

    def _may_ask(self, now: float) -> bool:
        if self.store.paused_until(self.credential, now) is not None:
            return False
        return self.store.runs.budget_left(self.credential, now, self.cfg.max_requests_per_hour)

    def _budget(self, now: float) -> bool:
        return self.store.runs.take_budget(self.credential, now, self.cfg.max_requests_per_hour)

    def _failed(self, what: str, exc: DeliveryError, now: float) -> None:
        log.warning("%s: %s", what, self.redact(exc.message))
        if isinstance(exc, TransientDeliveryError) and exc.rate_limited:
            until = min(exc.not_before or now, now + self.max_pause)
            self.store.pause(self.credential, until)

    def _search(self, group: list[Watch]) -> None:
        """Look once for the runs of every dispatch in ``group`` (one repository, one
        kind), in the repository's runs created since the earliest of them."""
        now = self.clock()
        group = sorted(group, key=lambda w: (w.dispatched_at, w.delivery_id))
        first = group[0]
        if not self._budget(now):
            later = [Searched(w, now + NO_BUDGET_WAIT, etag=w.etag) for w in group]
            self.store.runs.finish_watches(later, self.owner, now)
            return
        # A 304 means "nothing new" only to watches that all saw the same whole listing.
        etag = first.etag if all(w.etag == first.etag for w in group) else None
        try:
            listing = self._list(first.repository, event_of(first), first.dispatched_at, etag)
        except DeliveryError as exc:
            self._failed(f"looking for the runs of {first.repository}", exc, now)
            permanent = isinstance(exc, PermanentDeliveryError)
            state = WatchState.UNKNOWN if permanent else WatchState.SEARCHING
            if permanent:
                for w in group:
                    self.metrics.run_concluded(w.repository, "unknown")
            gap = self.cfg.min_interval
            again = [
                Searched(w, now + next_look(now - w.dispatched_at, gap), state, etag=w.etag)
                for w in group
            ]
            self.store.runs.finish_watches(again, self.owner, now)
            return
        taken = self.store.runs.attributed(list(listing.runs))
        actor = self.store.runs.own_actor() if first.kind == DeliveryKind.WORKFLOW else None
        # earliest dispatch first: it takes the earliest run
        looks = [self._record_search(w, listing, taken, actor, now) for w in group]
        self.store.runs.finish_watches(looks, self.owner, now)

    def _list(self, repository: str, event: str, dispatched_at: float, etag: str | None) -> Listing:
        """The runs of ``event`` created since ``dispatched_at``, page after page, newest
        first, until a page reaches older runs or is the last, the budget is spent or
        ``MAX_PAGES`` were read. Only the first page is conditional: a new run is always
        on it."""
        since = dispatched_at - CLOCK_SKEW
        started = self.clock()
        page = self.client.list_runs(repository, event, since, etag)
        listing = Listing({}, {}, page.etag)
        number = 1
        while page.changed:
            for run, obj in zip(page.runs, page.objects, strict=True):
                listing.runs.setdefault(run.run_id, run)  # a run pushed onto the next page
                listing.objects.setdefault(run.run_id, obj)
            times = [r.created_at for r in page.runs if r.created_at is not None]
            if not page.more or (times and min(times) < since):
                break
            # the searches stay leased to this worker: stop well within the lease
            late = self.clock() - started > self.lease / 2
            listing.out_of_budget = not late and not self._budget(self.clock())
            if number >= MAX_PAGES or late or listing.out_of_budget:
                created = [r.created_at for r in listing.runs.values() if r.created_at]
                listing.reach = min(created, default=float("inf"))
                listing.etag = None  # a 304 later would not mean the rest was seen
                break
            number += 1
            page = self.client.list_runs(repository, event, since, None, number)
        return listing

    def _record_search(
        self,
        w: Watch,
        listing: Listing,
        taken: dict[int, str],
        actor: str | None,
        now: float,
    ) -> Searched:
        """Attribute to ``w`` the runs of ``listing`` that are its own (``taken``: the
        delivery each run already belongs to, updated here; ``actor``: the bridge's); what
        to record of it."""
        mine, elsewhere = [], False
        for run_id, obj in listing.objects.items():
            if not matches(w, obj):
                continue
            if taken.get(run_id, w.delivery_id) != w.delivery_id:
                elsewhere = True  # another dispatch's (of this event, for an event id)
            elif actor is not None and actor_of(obj) not in (None, actor):
                log.info(
                    "run not attributed: another actor triggered it",
                    extra=fields(
                        run=run_id,
                        repository=w.repository,
                        delivery=w.delivery_id,
                        actor=actor_of(obj),
                        expected=actor,
                    ),
                )
            else:
                mine.append(listing.runs[run_id])
        if w.kind == DeliveryKind.WORKFLOW:  # the earliest one created after the dispatch
            mine = sorted(mine, key=lambda r: (r.created_at or 0, r.run_id))[:1]
        new = [r for r in mine if r.run_id not in w.found]
        for r in new:
            taken[r.run_id] = w.delivery_id
            log.info(
                "run found",
                extra=fields(
                    delivery=w.delivery_id,
                    event=w.event_id,
                    repository=w.repository,
                    run=r.run_id,
                    url=r.html_url,
                    status=r.status,
                ),
            )
        found = bool(w.found or new)
        covered = listing.covers(w)
        state, notices = WatchState.SEARCHING, []
        if found and (w.kind == DeliveryKind.WORKFLOW or now >= w.search_until):
            state = WatchState.DONE
        elif now >= w.search_until and covered and elsewhere and w.kind != DeliveryKind.WORKFLOW:
            state = WatchState.DONE  # its event's runs went to another delivery of the event
        elif now >= w.search_until and covered:
            state = WatchState.NO_RUN
            self.metrics.no_run(w.repository)
            log.warning(
                "no run started: GitHub took the dispatch, but no workflow ran for it (check "
                "the workflow's types: and that it is on the default branch)",
                extra=fields(
                    delivery=w.delivery_id,
                    event=w.event_id,
                    repository=w.repository,
                    waited=round(self.cfg.no_run_after),
                ),
            )
            notices = self.announce.notices(
                "no_run_started",
                w.event_id,
                w.repository,
                w.delivery_id,
                error="no workflow run started for the dispatch",
            )
        elif now >= w.dispatched_at + self.cfg.give_up_after:
            state = WatchState.UNKNOWN
            self.metrics.run_concluded(w.repository, "unknown")
            log.warning(
                "run search unknown: the runs created since the dispatch could not all be "
                "read in time (runs.max_requests_per_hour); gave up",
                extra=fields(
                    delivery=w.delivery_id,
                    event=w.event_id,
                    repository=w.repository,
                    waited=round(self.cfg.give_up_after),
                ),
            )
        due = now + next_look(now - w.dispatched_at, self.cfg.min_interval)
        if found and state == WatchState.SEARCHING:  # more runs (other workflows'): a last look
            due = max(due, w.search_until)
        if not covered and listing.out_of_budget:
            due = now + NO_BUDGET_WAIT
        return Searched(
            w,
            due,
            state,
            found=new,
            actors={r.run_id: a for r in new if (a := actor_of(listing.objects[r.run_id]))},
            etag=listing.etag if covered else None,
            notices=notices,
        )

    def _look(self, run: Run) -> None:
        now = self.clock()
        if now - run.seen_at > self.cfg.give_up_after:
            log.warning(
                "run unknown: not concluded in time; gave up",
                extra=fields(
                    delivery=run.delivery_id, run=run.run_id, waited=round(self.cfg.give_up_after)
                ),
            )
            self.metrics.run_concluded(run.repository, "unknown")
            self.store.runs.finish_run(
                run, self.owner, now, seen=None, state=RunState.UNKNOWN, due_at=now, etag=run.etag
            )
            return
        due = now + next_look(now - run.seen_at, self.cfg.min_interval)
        if not self._budget(now):
            self.store.runs.finish_run(
                run,
                self.owner,
                now,
                seen=None,
                state=RunState.FOLLOWING,
                due_at=now + NO_BUDGET_WAIT,
                etag=run.etag,
            )
            return
        try:
            seen, etag = self.client.get_run(run.repository, run.run_id, run.etag)
        except DeliveryError as exc:
            self._failed(f"reading run {run.run_id} of {run.repository}", exc, now)
            permanent = isinstance(exc, PermanentDeliveryError)
            state = RunState.UNKNOWN if permanent else RunState.FOLLOWING
            self.store.runs.finish_run(
                run, self.owner, now, seen=None, state=state, due_at=due, etag=run.etag
            )
            return
        if seen is None:  # 304: unchanged
            self.store.runs.finish_run(
                run, self.owner, now, seen=None, state=RunState.FOLLOWING, due_at=due, etag=etag
            )
            return
        state, notices = RunState.FOLLOWING, []
        if seen.status != run.status or seen.conclusion != run.conclusion:
            log.info(
                "run changed",
                extra=fields(
                    status=seen.status,
                    conclusion=seen.conclusion,
                    delivery=run.delivery_id,
                    event=run.event_id,
                    repository=run.repository,
                    run=run.run_id,
                    url=seen.html_url,
                ),
            )
        if seen.status == "completed":
            state = RunState.CONCLUDED
            conclusion = seen.conclusion or "unknown"
            self.metrics.run_concluded(run.repository, conclusion)
            outcome = "run_succeeded" if conclusion in SUCCESS_CONCLUSIONS else "run_failed"
            notices = self.announce.notices(
                outcome,
                run.event_id,
                run.repository,
                run.delivery_id,
                workflow=seen.workflow or run.workflow,
                run_url=seen.html_url or run.html_url,
                run_id=run.run_id,
                conclusion=conclusion,
            )
            # the route's write-back to W&B, queued in the same commit as the notices
            notices += self.write_backs.deliveries(outcome, run.event_id, run.delivery_id)
        self.store.runs.finish_run(
            run,
            self.owner,
            now,
            seen=_merged(run, seen),
            state=state,
            due_at=due,
            etag=etag,
            notices=notices,
        )


def _merged(run: Run, seen: NewRun) -> NewRun:
    """What GitHub said, keeping what the store knew where GitHub left a field out."""
    return NewRun(
        seen.run_id,
        seen.workflow or run.workflow,
        seen.html_url or run.html_url,
        seen.status,
        seen.conclusion,
        seen.created_at or run.created_at,
        seen.updated_at or run.updated_at,
    )
