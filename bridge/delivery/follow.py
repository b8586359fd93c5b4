"""Following the workflow runs that delivered dispatches started, to their conclusion.

For a repository dispatch the run is found by the bridge's event id in its
``display_title`` (the workflow's ``run-name:``) among the repository's
``repository_dispatch`` runs created since; a workflow dispatch names its run, or (on a
server without run details) it is the run of that workflow on that ref created right
after. Every read is conditional (ETag: a 304 costs no rate limit), looks grow rarer as a
run ages, and all of it stays within ``runs.max_requests_per_hour`` for the credential.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from bridge.config.model import Config
from bridge.config.secrets import Redactor
from bridge.delivery.github import GitHubClient
from bridge.delivery.outcomes import Announcer
from bridge.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from bridge.ops.metrics import Metrics
from bridge.store import SqlStore
from bridge.store.models import (
    CONCLUDED,
    DONE,
    FOLLOWING,
    NO_RUN,
    SEARCHING,
    UNKNOWN,
    WORKFLOW,
    NewRun,
    Run,
    Watch,
)

log = logging.getLogger(__name__)
SUCCEEDED = frozenset({"success", "neutral", "skipped"})
CLOCK_SKEW = 60.0  # GitHub's clock and ours: look this far before the dispatch
NO_BUDGET_WAIT = 60.0
BATCH = 8
SEARCH_BATCH = 100  # due searches taken at once, grouped by repository


def next_look(age: float, shortest: float = 10.0) -> float:
    """Seconds until the next look at something ``age`` seconds old: every ``shortest``
    seconds at first, then a tenth of its age, at most every 5 minutes."""
    return min(max(age / 10, shortest), 300.0)


def matches(watch: Watch, obj: Mapping[str, Any]) -> bool:
    """Is the run ``obj`` (GitHub's JSON) one that ``watch``'s dispatch started?"""
    if watch.kind == WORKFLOW:
        path, wf = str(obj.get("path") or ""), watch.workflow or ""
        same = str(obj.get("workflow_id")) == wf if wf.isdigit() else path.endswith("/" + wf)
        return same and obj.get("head_branch") == short_ref(watch.ref or "")
    return watch.event_id in str(obj.get("display_title") or "")


def short_ref(ref: str) -> str:
    """The branch or tag name a run reports as its ``head_branch``: GitHub takes a
    workflow dispatch's ``ref`` as ``main`` or as ``refs/heads/main`` alike."""
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


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
        first = min(group, key=lambda w: w.dispatched_at)
        if not self._budget(now):
            for w in group:
                self.store.runs.finish_watch(
                    w, self.owner, now, due_at=now + NO_BUDGET_WAIT, etag=w.etag
                )
            return
        event = "workflow_dispatch" if first.kind == WORKFLOW else "repository_dispatch"
        try:
            runs, objects, etag = self.client.list_runs(
                first.repository, event, first.dispatched_at - CLOCK_SKEW, first.etag
            )
        except DeliveryError as exc:
            self._failed(f"looking for the runs of {first.repository}", exc, now)
            permanent = isinstance(exc, PermanentDeliveryError)
            for w in group:
                if permanent:
                    self.metrics.run_concluded(w.repository, "unknown")
                self.store.runs.finish_watch(
                    w,
                    self.owner,
                    now,
                    state=UNKNOWN if permanent else SEARCHING,
                    due_at=now + next_look(now - w.dispatched_at, self.cfg.min_interval),
                    etag=w.etag,
                )
            return
        for w in group:
            self._record_search(w, runs, objects, etag if w is first else w.etag, now)

    def _record_search(
        self,
        w: Watch,
        runs: list[NewRun],
        objects: list[Mapping[str, Any]],
        etag: str | None,
        now: float,
    ) -> None:
        mine = [r for r, o in zip(runs, objects, strict=True) if matches(w, o)]
        if w.kind == WORKFLOW:  # the one created right after the dispatch
            after = [r for r in mine if (r.created_at or 0) >= w.dispatched_at - CLOCK_SKEW]
            mine = sorted(after, key=lambda r: r.created_at or 0)[:1]
        new = [r for r in mine if r.run_id not in w.found]
        for r in new:
            log.info(
                "run found delivery=%s event=%s repository=%s run=%d url=%s status=%s",
                w.delivery_id,
                w.event_id,
                w.repository,
                r.run_id,
                r.html_url,
                r.status,
            )
        found = bool(w.found or new)
        state, notices = SEARCHING, []
        if (found and w.kind == WORKFLOW) or (found and now >= w.search_until):
            state = DONE
        elif now >= w.search_until:
            state = NO_RUN
            self.metrics.no_run(w.repository)
            log.warning(
                "no run started delivery=%s event=%s repository=%s within %.0fs: GitHub took "
                "the dispatch, but no workflow ran for it (check the workflow's types: and "
                "that it is on the default branch)",
                w.delivery_id,
                w.event_id,
                w.repository,
                self.cfg.no_run_after,
            )
            notices = self.announce.notices(
                "no_run_started",
                w.event_id,
                w.repository,
                w.delivery_id,
                error="no workflow run started for the dispatch",
            )
        due = now + next_look(now - w.dispatched_at, self.cfg.min_interval)
        self.store.runs.finish_watch(
            w, self.owner, now, found=new, state=state, due_at=due, etag=etag, notices=notices
        )

    def _look(self, run: Run) -> None:
        now = self.clock()
        if now - run.seen_at > self.cfg.give_up_after:
            log.warning(
                "run unknown delivery=%s run=%d: not concluded after %.0fs; gave up",
                run.delivery_id,
                run.run_id,
                self.cfg.give_up_after,
            )
            self.metrics.run_concluded(run.repository, "unknown")
            self.store.runs.finish_run(
                run, self.owner, now, seen=None, state=UNKNOWN, due_at=now, etag=run.etag
            )
            return
        due = now + next_look(now - run.seen_at, self.cfg.min_interval)
        if not self._budget(now):
            self.store.runs.finish_run(
                run,
                self.owner,
                now,
                seen=None,
                state=FOLLOWING,
                due_at=now + NO_BUDGET_WAIT,
                etag=run.etag,
            )
            return
        try:
            seen, etag = self.client.get_run(run.repository, run.run_id, run.etag)
        except DeliveryError as exc:
            self._failed(f"reading run {run.run_id} of {run.repository}", exc, now)
            state = UNKNOWN if isinstance(exc, PermanentDeliveryError) else FOLLOWING
            self.store.runs.finish_run(
                run, self.owner, now, seen=None, state=state, due_at=due, etag=run.etag
            )
            return
        if seen is None:  # 304: unchanged
            self.store.runs.finish_run(
                run, self.owner, now, seen=None, state=FOLLOWING, due_at=due, etag=etag
            )
            return
        state, notices = FOLLOWING, []
        if seen.status != run.status or seen.conclusion != run.conclusion:
            log.info(
                "run %s delivery=%s event=%s repository=%s run=%d conclusion=%s url=%s",
                seen.status,
                run.delivery_id,
                run.event_id,
                run.repository,
                run.run_id,
                seen.conclusion,
                seen.html_url,
            )
        if seen.status == "completed":
            state = CONCLUDED
            conclusion = seen.conclusion or "unknown"
            self.metrics.run_concluded(run.repository, conclusion)
            outcome = "run_succeeded" if conclusion in SUCCEEDED else "run_failed"
            notices = self.announce.notices(
                outcome,
                run.event_id,
                run.repository,
                run.delivery_id,
                workflow=seen.workflow or run.workflow,
                run_url=seen.html_url or run.html_url,
                conclusion=conclusion,
            )
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
