"""The delivery worker: claim due deliveries, send them, record every attempt.

It sleeps until the store wakes it (intake committed work) or the earliest pending
delivery falls due. Attempts run on a small thread pool (``delivery.concurrency``).
A rate limit from GitHub pauses every worker that uses the credential, through the
store (retrying while limited can get an integration banned); no pause is longer than
``delivery.max_backoff``. What GitHub answered is recorded with secrets redacted.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from bridge.config.model import Config
from bridge.config.secrets import Redactor
from bridge.delivery.follow import RunFollower
from bridge.delivery.outcomes import Announcer
from bridge.delivery.retry import backoff, decide
from bridge.delivery.senders import Sender
from bridge.errors import DeliveryError, StoreUnavailable, TransientDeliveryError
from bridge.ops.metrics import Metrics
from bridge.store import SqlStore, Waiter
from bridge.store.models import (
    DEAD,
    DELIVERED,
    GAVE_UP,
    NOTIFY,
    OK,
    RETRY,
    WORKFLOW,
    Attempt,
    Claimed,
    NewDelivery,
    NewRun,
    Watch,
    target_name,
)

log = logging.getLogger(__name__)
MAX_IDLE = 5.0  # a safety net only: wake-ups come from the store
BREAKER_AFTER = 3  # transient failures in a row before the worker pauses and probes
BREAKER_MAX_PAUSE = 60.0
PRUNE_EVERY = 300.0
PRUNE_BATCH = 500  # events per prune: small batches keep write locks short
DRY_RUN = "dry_run"  # the outcome of an attempt that sent nothing (github.dry_run)


def target_of(c: Claimed) -> str:
    return target_name(c.kind, c.repository, c.workflow, c.ref, c.notifier)


class DeliveryWorker:
    def __init__(
        self,
        config: Config,
        store: SqlStore,
        sender: Sender,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        owner: str | None = None,
        credential: str = "github",
        follower: RunFollower | None = None,
    ) -> None:
        self.cfg = config.delivery
        self.runs = config.runs
        self.retention = config.retention
        self.announce = Announcer(config, store, clock)
        self.follower = follower
        self.redact = Redactor(config.secrets())
        self.credential = credential  # the key of the shared rate-limit pause
        self.dedupe_window = config.dedupe_window
        self.store = store
        self.sender = sender
        self.metrics = metrics
        self.clock = clock
        self.rand = rand
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._kick = threading.Event()  # something to do: new work, a slot freed, a stop
        self._stopping = threading.Event()
        self._waiter: Waiter | None = None  # run()'s wake-up line from the store
        self._lock = threading.Lock()
        self._active = 0
        self._paused_until = 0.0
        self._streak = 0  # transient failures in a row, across deliveries

    # -- one attempt ----------------------------------------------------------------------

    def deliver(self, claimed: Claimed) -> str:
        """Make one attempt at ``claimed`` and record it; returns the new state."""
        started = self.clock()
        error: DeliveryError | None = None
        status: int | None = None
        run: NewRun | None = None
        try:
            sent = self.sender.send(claimed)
            status, run = sent.status, sent.run
        except DeliveryError as exc:
            error, status = exc, exc.status
            exc.message = self.redact(exc.message)
        except Exception as exc:  # a bug must not kill the worker; the cause is logged
            log.error(
                "delivery %s: unexpected error while sending: %s", claimed.id, type(exc).__name__
            )
            error = TransientDeliveryError(f"internal error in the bridge ({type(exc).__name__})")
        now = self.clock()
        decision = decide(claimed, error, now, self.cfg, self.rand)
        outcome = {DELIVERED: OK, DEAD: GAVE_UP}.get(decision.state, RETRY)
        if self.sender.dry_run and decision.state == DELIVERED:
            outcome = DRY_RUN
            decision = replace(decision, reason="dry run: nothing was sent to GitHub")
        attempt = Attempt(
            claimed.attempt,
            started,
            now,
            status,
            outcome,
            decision.reason,
            decision.wait,
            self.owner,
        )
        if claimed.kind != NOTIFY:  # a failing Slack must not hold up GitHub deliveries
            self._track_health(error, now)
        # counted before it is recorded, so a reader who sees the new state sees the count
        self.metrics.attempt(status, outcome, now - claimed.round_started_at)
        watch, notices = self._consequences(claimed, decision.state, decision.reason, now)
        try:
            held = self.store.finish(
                claimed,
                self.owner,
                attempt,
                decision.state,
                decision.due_at,
                watch=watch,
                run=run,
                notices=notices,
            )
        except StoreUnavailable:
            log.exception("delivery %s: cannot record attempt %d", claimed.id, claimed.attempt)
            return decision.state
        log.log(
            logging.INFO if decision.state == DELIVERED else logging.WARNING,
            "delivery attempt id=%s event=%s target=%s attempt=%d status=%s outcome=%s%s%s",
            claimed.id,
            claimed.event_id,
            target_of(claimed),
            claimed.attempt,
            status,
            outcome,
            "" if decision.wait is None else f" retry_in={decision.wait:.1f}s",
            "" if outcome == OK else f" reason={decision.reason}",
        )
        if not held:
            log.warning("delivery %s: lease lost to another worker before recording", claimed.id)
        return decision.state

    def _consequences(
        self, claimed: Claimed, state: str, reason: str, now: float
    ) -> tuple[Watch | None, list[NewDelivery]]:
        """What a dispatch's final state starts: the search for its runs, notifications."""
        if claimed.kind == NOTIFY or state not in (DELIVERED, DEAD):
            return None, []
        target = (claimed.event_id, claimed.repository, claimed.id, claimed.route)
        if state == DEAD:
            return None, self.announce.notices("delivery_dead", *target, error=reason)
        watch = None
        if self.runs.follow and not self.sender.dry_run:
            watch = Watch(
                claimed.id,
                claimed.event_id,
                claimed.repository,
                claimed.kind,
                claimed.workflow,
                claimed.ref,
                now,
                now + self.runs.no_run_after,
                None,
                0,
            )
        workflow = claimed.workflow if claimed.kind == WORKFLOW else None
        return watch, self.announce.notices("delivered", *target, workflow=workflow)

    def run_once(self) -> int:
        """Claim what is due and deliver it in this thread (tests, ``events`` tooling)."""
        batch = self.store.claim(self.owner, self.cfg.concurrency, self.cfg.lease, self.clock())
        for claimed in batch:
            self.deliver(claimed)
        return len(batch)

    # -- the loop -------------------------------------------------------------------------

    def stop(self) -> None:
        """Make ``run`` return soon (attempts in flight finish first); safe from any thread."""
        self._stopping.set()
        self._kick.set()
        waiter = self._waiter
        if waiter is not None:
            waiter.close()  # ends a wait for new work at once

    def run(self, parent_pid: int | None = None) -> None:
        """Deliver until ``stop()`` is called (or the parent process ``parent_pid`` is gone).

        While a slot is free the loop sleeps until the store says work was queued; while
        every slot is busy, only until an attempt finishes, so a commit then wakes nobody.
        """
        stop = self._stopping
        self._waiter = waiter = self.store.waiter()
        following = None
        if self.follower is not None:
            following = threading.Thread(
                target=self._follow, args=(self.follower, stop), daemon=True, name="run-follower"
            )
            following.start()
        log.info(
            "delivery worker started owner=%s concurrency=%d", self.owner, self.cfg.concurrency
        )
        last_prune = 0.0
        with ThreadPoolExecutor(self.cfg.concurrency, thread_name_prefix="deliver") as pool:
            while True:
                self._kick.clear()  # before looking at ``stop``: a stop() after this kicks
                if stop.is_set():
                    break
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.warning("delivery worker: parent process is gone; stopping")
                    break
                now = self.clock()
                try:
                    self._claim_into(pool, now)
                    if now - last_prune > PRUNE_EVERY:
                        self._prune(now)
                        last_prune = now
                    timeout = self._idle_timeout(now)
                except StoreUnavailable as exc:
                    log.error("delivery worker: store unavailable (%s); retrying", exc)
                    timeout = 1.0
                if self.claim_budget(self.clock()) > 0:
                    waiter.wait(timeout)  # new work, or stop()
                else:
                    self._kick.wait(timeout)  # a finished attempt, or stop()
            stop.set()
        waiter.close()
        if following is not None:
            following.join(timeout=self.cfg.timeout + 5)
        log.info("delivery worker stopped owner=%s", self.owner)

    def _prune(self, now: float) -> None:
        """Forget old dedupe rows, and finished events past ``retention.events``."""
        self.store.prune_dedupe(now - self.dedupe_window)
        pruned = self.store.prune(now - self.retention, batch=PRUNE_BATCH)
        if pruned:
            log.info("pruned %d finished events older than retention.events", pruned)

    def _follow(self, follower: RunFollower, stop: threading.Event) -> None:
        """The run follower's loop: look at what is due, then sleep until more is."""
        while not stop.is_set():
            try:
                follower.step()
                due = self.store.runs.next_due()
                wait = MAX_IDLE if due is None else min(MAX_IDLE, max(0.5, due - self.clock()))
            except StoreUnavailable as exc:
                log.error("run follower: store unavailable (%s); retrying", exc)
                wait = 1.0
            except Exception:  # a bug must not stop following for good
                log.exception("run follower: unexpected error; retrying")
                wait = MAX_IDLE
            stop.wait(wait)

    def _track_health(self, error: DeliveryError | None, now: float) -> None:
        """The circuit breaker: GitHub failing one request after another (an outage, a
        limit) makes the worker pause and then probe with one attempt at a time, instead
        of spending every queued delivery's attempts against it; a success closes it."""
        if isinstance(error, TransientDeliveryError) and error.rate_limited:
            until = min(error.not_before or now, now + self.cfg.max_backoff)
            try:
                self.store.pause(self.credential, until)
            except StoreUnavailable:
                log.warning("cannot share the rate-limit pause: the store is unavailable")
        with self._lock:
            if not isinstance(error, TransientDeliveryError):
                self._streak = 0  # an answer on the merits means GitHub is up
                return
            self._streak += 1
            if error.not_before is not None:
                until = min(error.not_before, now + self.cfg.max_backoff)
                self._paused_until = max(self._paused_until, until)
            if self._streak >= BREAKER_AFTER:
                cap = min(self.cfg.max_backoff, BREAKER_MAX_PAUSE)
                pause = backoff(
                    self._streak - BREAKER_AFTER + 1, self.cfg.initial_backoff, cap, self.rand
                )
                self._paused_until = max(self._paused_until, now + pause)

    def claim_budget(self, now: float) -> int:
        """How many more deliveries this worker may claim right now."""
        with self._lock:
            if now < self._paused_until:
                return 0
            limit = 1 if self._streak >= BREAKER_AFTER else self.cfg.concurrency
            return max(0, limit - self._active)

    def _claim_into(self, pool: ThreadPoolExecutor, now: float) -> None:
        free = self.claim_budget(now)
        if free <= 0:
            return
        shared = self.store.paused_until(self.credential, now)
        if shared is not None:  # another worker hit the credential's rate limit
            with self._lock:
                self._paused_until = max(
                    self._paused_until, min(shared, now + self.cfg.max_backoff)
                )
            return
        for claimed in self.store.claim(self.owner, free, self.cfg.lease, now):
            with self._lock:
                self._active += 1
            pool.submit(self._run_one, claimed)

    def _run_one(self, claimed: Claimed) -> None:
        try:
            self.deliver(claimed)
        finally:
            with self._lock:
                self._active -= 1
            self._kick.set()

    def _idle_timeout(self, now: float) -> float:
        with self._lock:
            if now < self._paused_until:
                return min(MAX_IDLE, self._paused_until - now)
        if self.claim_budget(now) == 0:
            return MAX_IDLE  # every slot is busy; a finishing attempt kicks us
        due = self.store.next_due()
        if due is None:
            return MAX_IDLE
        return min(MAX_IDLE, max(0.0, due - now))
