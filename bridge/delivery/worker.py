"""The delivery worker: claim due deliveries, send them, record every attempt.

It sleeps until the store wakes it (intake committed work) or the earliest pending
delivery falls due. Attempts run in two lanes, each with its own thread pool of
``delivery.concurrency`` slots and its own claims: GitHub dispatches, and the rest
(notifications and write-backs to W&B). A stuck Slack, webhook receiver or W&B fills
only the second lane.

A rate limit from GitHub pauses every worker that uses the credential, through the
store (retrying while limited can get an integration banned); no pause is longer than
``delivery.max_backoff``. What GitHub answered is recorded with secrets redacted.

Exactly once rests on the lease: a claim leases a delivery for ``delivery.lease``
seconds, and another worker may claim it again only after that. So every attempt ends
by a total deadline of at most half the lease (``delivery.timeout``, or less), every
request in it included (:mod:`bridge.http`), and the rest of the lease is left for
recording the attempt, retried while the store is unreachable (a database restart).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bridge import http
from bridge.config.model import Config
from bridge.config.secrets import Redactor
from bridge.delivery.follow import RunFollower
from bridge.delivery.outcomes import Announcer
from bridge.delivery.retry import backoff, decide
from bridge.delivery.senders import Sender
from bridge.errors import DeliveryError, StoreUnavailable, TransientDeliveryError
from bridge.logs import fields
from bridge.metrics import Metrics
from bridge.states import GITHUB_KINDS, AttemptOutcome, DeliveryKind, DeliveryState
from bridge.store import SqlStore, Waiter
from bridge.store.models import Attempt, Claimed, NewDelivery, NewRun, Watch, target_name

if TYPE_CHECKING:
    from bridge.wandb.catchup_run import CatchUpRunner

log = logging.getLogger(__name__)
MAX_IDLE = 5.0  # a safety net only: wake-ups come from the store
# The run follower's looks start at least this far apart: a dispatch recorded wakes it,
# and the searches that many dispatches make due together still go to GitHub as one.
FOLLOW_GAP = 1.0
BREAKER_AFTER = 3  # transient failures in a row before the worker pauses and probes
BREAKER_MAX_PAUSE = 60.0
PRUNE_EVERY = 300.0
PRUNE_BATCH = 500  # events per prune: small batches keep write locks short
BEAT_EVERY = 30.0  # seconds between the worker's heartbeats in the store (the console's Now)
ATTEMPT_SHARE = 0.5  # of the lease, the most an attempt may take; the rest is for recording
RECORD_RETRY = 0.2  # seconds between tries to record an attempt while the store is down


@dataclass
class Lane:
    """Slots for one kind of receiver: what they claim, how many run at once."""

    name: str
    kinds: tuple[str, ...]
    concurrency: int
    guarded: bool  # GitHub's lane: the circuit breaker and rate-limit pauses apply
    active: int = 0
    kick: threading.Event = field(default_factory=threading.Event)  # a slot freed, a stop


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
        self.catch_up: CatchUpRunner | None = None  # set by build_worker (wandb.catch_up)
        self.redact = Redactor(config.secrets())
        self.credential = credential  # the key of the shared rate-limit pause
        self.dedupe_window = config.dedupe_window
        self.store = store
        self.sender = sender
        self.metrics = metrics
        self.clock = clock
        self.rand = rand
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.github = Lane("github", GITHUB_KINDS, self.cfg.concurrency, True)
        others = (DeliveryKind.NOTIFY, DeliveryKind.WANDB)
        self.notifications = Lane("notify", others, self.cfg.concurrency, False)
        self.lanes = (self.github, self.notifications)
        self._stopping = threading.Event()
        self._follow_kick = threading.Event()  # a dispatch was recorded: runs to look for
        self._waiters: list[Waiter] = []  # each lane loop's wake-up line from the store
        self._lock = threading.Lock()
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
            # Ends well inside the lease: no other worker can claim it while this runs.
            with http.deadline(min(self.cfg.timeout, ATTEMPT_SHARE * self.cfg.lease)):
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
        outcome = AttemptOutcome.RETRY  # a delivery that ends is named by its state
        if decision.state in (DeliveryState.DELIVERED, DeliveryState.DEAD):
            outcome = AttemptOutcome(decision.state)
        if self.sender.dry_run and decision.state == DeliveryState.DELIVERED:
            outcome = AttemptOutcome.DRY_RUN
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
        if claimed.kind in GITHUB_KINDS:  # a failing Slack or W&B must not hold up GitHub
            self._track_health(error, now)
        # counted before it is recorded, so a reader who sees the new state sees the count
        self.metrics.attempt(status, outcome, now - claimed.round_started_at)
        held = self._record(claimed, attempt, decision.state, decision.due_at, run)
        if held is None:
            return decision.state
        log.log(
            logging.INFO if decision.state == DeliveryState.DELIVERED else logging.WARNING,
            "delivery attempt",
            extra=fields(
                id=claimed.id,
                event=claimed.event_id,
                target=target_of(claimed),
                attempt=claimed.attempt,
                status=status,
                outcome=outcome,
                retry_in=None if decision.wait is None else round(decision.wait, 1),
                reason=None if outcome == AttemptOutcome.DELIVERED else decision.reason,
            ),
        )
        if not held:
            log.warning("delivery %s: lease lost to another worker before recording", claimed.id)
        return decision.state

    def _record(
        self, claimed: Claimed, attempt: Attempt, state: str, due_at: float, run: NewRun | None
    ) -> bool | None:
        """Record the attempt; whether the lease was still held (None: not recorded).

        The store may be restarting: keep trying for the rest of the lease, since a
        delivery sent but not recorded would be claimed and sent again after it."""
        give_up = time.monotonic() + (1 - ATTEMPT_SHARE) * self.cfg.lease
        while True:
            try:
                watch, notices = self._consequences(
                    claimed, state, attempt.response, attempt.started_at, attempt.finished_at
                )
                held = self.store.finish(
                    claimed,
                    self.owner,
                    attempt,
                    state,
                    due_at,
                    watch=watch,
                    run=run,
                    notices=notices,
                )
                if held and notices:
                    self.notifications.kick.set()  # queued for the notification lane
                if held and watch is not None:
                    self._follow_kick.set()  # the follower looks for its runs when due
                return held
            except StoreUnavailable as exc:
                if time.monotonic() >= give_up:
                    log.error(
                        "delivery %s: cannot record attempt %d (%s); it may be sent again",
                        claimed.id,
                        claimed.attempt,
                        exc,
                    )
                    return None
                log.warning(
                    "delivery %s: cannot record attempt %d yet (%s); retrying",
                    claimed.id,
                    claimed.attempt,
                    exc,
                )
                time.sleep(RECORD_RETRY)

    def _consequences(
        self, claimed: Claimed, state: str, reason: str, sent_at: float, now: float
    ) -> tuple[Watch | None, list[NewDelivery]]:
        """What a dispatch's final state starts: the search for its runs (made from when
        the dispatch was sent: GitHub may create the run before it answers), and
        notifications."""
        final = state in (DeliveryState.DELIVERED, DeliveryState.DEAD)
        if claimed.kind not in GITHUB_KINDS or not final:
            return None, []
        target = (claimed.event_id, claimed.repository, claimed.id, claimed.route)
        if state == DeliveryState.DEAD:
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
                sent_at,
                now + self.runs.no_run_after,
                None,
                0,
            )
        workflow = claimed.workflow if claimed.kind == DeliveryKind.WORKFLOW else None
        return watch, self.announce.notices("delivered", *target, workflow=workflow)

    def drain(self) -> int:
        """Deliver what is due now in every lane, pass after pass, until a pass finds
        nothing due (``worker --burst``); the number of attempts made.

        Each pass claims what each lane's slots take, as :meth:`run` does, and lets the
        run follower look at what is due, then waits for all of it: a notification that
        an attempt queued goes out in the next pass. It never waits for time to pass: a
        retry scheduled for later, or GitHub's lane held by a rate-limit pause or the
        circuit breaker, is left to the next run of a worker."""
        attempts = 0
        # one pool for every pass: a store keeps a connection per thread until it closes
        slots = len(self.lanes) * self.cfg.concurrency
        with ThreadPoolExecutor(slots, thread_name_prefix="burst") as pool:
            while not self._stopping.is_set():
                now = self.clock()
                sent = [f for lane in self.lanes for f in self._claim_into(pool, now, lane)]
                wait(sent)
                followed = self.follower.step() if self.follower is not None else 0
                attempts += len(sent)
                if not sent and not followed:
                    break
        return attempts

    # -- the loop -------------------------------------------------------------------------

    def stop(self) -> None:
        """Make ``run`` return soon (attempts in flight finish first); safe from any thread."""
        self._stopping.set()
        self._follow_kick.set()
        for lane in (self.github, self.notifications):
            lane.kick.set()
        for waiter in list(self._waiters):
            waiter.close()  # ends a wait for new work at once

    def run(self, parent_pid: int | None = None) -> None:
        """Deliver until ``stop()`` is called (or the parent process ``parent_pid`` is gone).

        The GitHub lane runs in this thread, the notification lane, the run follower and
        catch-up of the W&B registry in threads of their own.
        """
        stop = self._stopping
        helpers = [
            threading.Thread(
                target=self._lane_loop,
                args=(self.notifications, parent_pid),
                daemon=True,
                name="notify-lane",
            )
        ]
        if self.follower is not None:
            helpers.append(
                threading.Thread(
                    target=self._follow,
                    args=(self.follower, stop),
                    daemon=True,
                    name="run-follower",
                )
            )
        if self.catch_up is not None:
            helpers.append(
                threading.Thread(
                    target=self.catch_up.loop, args=(stop,), daemon=True, name="catch-up"
                )
            )
        for thread in helpers:
            thread.start()
        log.info(
            "delivery worker started",
            extra=fields(owner=self.owner, concurrency=self.cfg.concurrency),
        )
        try:
            self._lane_loop(self.github, parent_pid, prune=True)
        finally:
            self.stop()  # the helpers' waits end too (the run follower's is on its kick)
            for thread in helpers:
                thread.join(timeout=self.cfg.lease + 5)
        log.info("delivery worker stopped", extra=fields(owner=self.owner))

    def _lane_loop(self, lane: Lane, parent_pid: int | None, prune: bool = False) -> None:
        """Claim due work of ``lane``'s kinds into its slots until stopped.

        While a slot is free the loop sleeps until the store says work was queued; while
        every slot is busy, only until an attempt finishes, so a commit then wakes nobody.
        """
        stop = self._stopping
        # GitHub's lane wakes when the store says work was queued (intake's dispatches).
        # Notifications are queued by this worker and its run follower, which kick their
        # lane themselves; one queued elsewhere (a replay) is found within MAX_IDLE.
        waiter = self.store.waiter() if lane.guarded else None
        if waiter is not None:
            self._waiters.append(waiter)
        last_prune = last_beat = 0.0
        started = self.clock()  # this loop runs as long as the worker: its start
        try:
            with ThreadPoolExecutor(lane.concurrency, thread_name_prefix=lane.name) as pool:
                while True:
                    lane.kick.clear()  # before looking at ``stop``: a stop() after this kicks
                    if stop.is_set():
                        break
                    if parent_pid is not None and os.getppid() != parent_pid:
                        log.warning("delivery worker: parent process is gone; stopping")
                        break
                    now = self.clock()
                    try:
                        self._claim_into(pool, now, lane)
                        if prune and now - last_prune > PRUNE_EVERY:
                            self._prune(now)
                            last_prune = now
                        if lane.guarded and now - last_beat >= BEAT_EVERY:
                            self.store.console.beat(self.owner, started, now)
                            last_beat = now
                        timeout = self._idle_timeout(now, lane)
                    except StoreUnavailable as exc:
                        log.error("delivery worker: store unavailable (%s); retrying", exc)
                        timeout = 1.0
                    if waiter is not None and self.claim_budget(self.clock(), lane) > 0:
                        waiter.wait(timeout)  # new work, or stop()
                    else:
                        lane.kick.wait(timeout)  # a finished attempt, a kick, or stop()
                stop.set()
        finally:
            if waiter is not None:
                waiter.close()

    def _prune(self, now: float) -> None:
        """Forget old dedupe rows, ended write-back notes, and finished events past
        ``retention.events``."""
        self.store.prune_dedupe(now - self.dedupe_window)
        self.store.prune_echoes(now)
        pruned = self.store.prune(now - self.retention, batch=PRUNE_BATCH)
        if pruned:
            log.info("pruned %d finished events older than retention.events", pruned)

    def _follow(self, follower: RunFollower, stop: threading.Event) -> None:
        """The run follower's loop: look at what is due, then sleep until more is, or
        until a dispatch is recorded (its search may be due sooner than what was), but
        never sooner than ``FOLLOW_GAP`` after the last look began."""
        while not stop.is_set():
            began = time.monotonic()
            self._follow_kick.clear()  # a kick from now on ends the coming wait
            try:
                if follower.step():
                    self.notifications.kick.set()  # it may have queued run outcomes
                due = self.store.runs.next_due()
                wait = MAX_IDLE if due is None else min(MAX_IDLE, max(0.5, due - self.clock()))
            except StoreUnavailable as exc:
                log.error("run follower: store unavailable (%s); retrying", exc)
                wait = 1.0
            except Exception:  # a bug must not stop following for good
                log.exception("run follower: unexpected error; retrying")
                wait = MAX_IDLE
            self._follow_kick.wait(wait)
            stop.wait(FOLLOW_GAP - (time.monotonic() - began))  # returns at once if <= 0

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

    def claim_budget(self, now: float, lane: Lane | None = None) -> int:
        """How many more deliveries ``lane`` (GitHub's by default) may claim right now."""
        lane = lane or self.github
        with self._lock:
            if not lane.guarded:
                return max(0, lane.concurrency - lane.active)
            if now < self._paused_until:
                return 0
            limit = 1 if self._streak >= BREAKER_AFTER else lane.concurrency
            return max(0, limit - lane.active)

    def _claim_into(
        self, pool: ThreadPoolExecutor, now: float, lane: Lane | None = None
    ) -> list[Future[None]]:
        """Claim what ``lane`` may take now into ``pool``: an attempt each."""
        lane = lane or self.github
        free = self.claim_budget(now, lane)
        if free <= 0:
            return []
        if not lane.guarded:
            # Most of its wake-ups find nothing due: look (a read) before claiming (a
            # write, which would queue behind intake's for SQLite's one write lock).
            due = self.store.next_due(lane.kinds)
            if due is None or due > now:
                return []
        shared = self.store.paused_until(self.credential, now) if lane.guarded else None
        if shared is not None:  # another worker hit the credential's rate limit
            with self._lock:
                self._paused_until = max(
                    self._paused_until, min(shared, now + self.cfg.max_backoff)
                )
            return []
        attempts = []
        for claimed in self.store.claim(self.owner, free, self.cfg.lease, now, lane.kinds):
            with self._lock:
                lane.active += 1
            attempts.append(pool.submit(self._run_one, claimed, lane))
        return attempts

    def _run_one(self, claimed: Claimed, lane: Lane) -> None:
        try:
            self.deliver(claimed)
        finally:
            with self._lock:
                lane.active -= 1
            lane.kick.set()

    def _idle_timeout(self, now: float, lane: Lane) -> float:
        with self._lock:
            if lane.guarded and now < self._paused_until:
                return min(MAX_IDLE, self._paused_until - now)
        if self.claim_budget(now, lane) == 0:
            return MAX_IDLE  # every slot is busy; a finishing attempt kicks us
        due = self.store.next_due(lane.kinds)
        if due is None:
            return MAX_IDLE
        return min(MAX_IDLE, max(0.0, due - now))
