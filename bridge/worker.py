"""The delivery worker: claim due deliveries, send them, record every attempt.

It sleeps until the store wakes it (intake committed work) or the earliest pending
delivery falls due, so a new delivery goes out at once rather than on the next tick of
a slow loop. Attempts run on a small thread pool (``delivery.concurrency``). A rate
limit from GitHub pauses this worker's claims until GitHub's reset time: retrying while
limited can get an integration banned.
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
from typing import Protocol

from bridge.config import Config
from bridge.dispatch import body_of
from bridge.errors import DeliveryError, StoreUnavailable, TransientDeliveryError
from bridge.github import GitHubClient
from bridge.metrics import Metrics
from bridge.retry import backoff, decide
from bridge.store import SqlStore, Waiter
from bridge.store.models import DEAD, DELIVERED, GAVE_UP, OK, RETRY, Attempt, Claimed

log = logging.getLogger(__name__)
MAX_IDLE = 5.0  # a safety net only: wake-ups come from the store
BREAKER_AFTER = 3  # transient failures in a row before the worker pauses and probes
BREAKER_MAX_PAUSE = 60.0
PRUNE_EVERY = 300.0


class Sender(Protocol):
    def send(self, claimed: Claimed) -> int | None: ...


class GitHubSender:
    def __init__(self, client: GitHubClient) -> None:
        self.client = client

    def send(self, claimed: Claimed) -> int | None:
        body = body_of(claimed.event_type, claimed.client_payload)
        return self.client.dispatch(claimed.repository, body)


class DryRunSender:
    """``github.dry_run``: log the dispatch that would be sent, and count it delivered."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    def send(self, claimed: Claimed) -> int | None:
        body = body_of(claimed.event_type, claimed.client_payload)
        log.info(
            "dry run: would POST %s/repos/%s/dispatches delivery=%s body=%s",
            self.api_url,
            claimed.repository,
            claimed.id,
            body.decode("utf-8"),
        )
        return None


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
    ) -> None:
        self.cfg = config.delivery
        self.dedupe_window = config.dedupe_window
        self.store = store
        self.sender = sender
        self.metrics = metrics
        self.clock = clock
        self.rand = rand
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._kick = threading.Event()
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
        try:
            status = self.sender.send(claimed)
        except DeliveryError as exc:
            error, status = exc, exc.status
        except Exception as exc:  # a bug must not kill the worker; the cause is logged
            log.exception("delivery %s: unexpected error while sending", claimed.id)
            error = TransientDeliveryError(f"internal error in the bridge ({type(exc).__name__})")
        now = self.clock()
        decision = decide(claimed, error, now, self.cfg, self.rand)
        outcome = {DELIVERED: OK, DEAD: GAVE_UP}.get(decision.state, RETRY)
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
        self._track_health(error, now)
        # counted before it is recorded, so a reader who sees the new state sees the count
        self.metrics.attempt(status, decision.state, now - claimed.round_started_at)
        try:
            held = self.store.finish(claimed, self.owner, attempt, decision.state, decision.due_at)
        except StoreUnavailable:
            log.exception("delivery %s: cannot record attempt %d", claimed.id, claimed.attempt)
            return decision.state
        log.log(
            logging.INFO if decision.state == DELIVERED else logging.WARNING,
            "delivery attempt id=%s event=%s target=github:%s attempt=%d status=%s outcome=%s%s%s",
            claimed.id,
            claimed.event_id,
            claimed.repository,
            claimed.attempt,
            status,
            outcome,
            "" if decision.wait is None else f" retry_in={decision.wait:.1f}s",
            "" if decision.state == DELIVERED else f" reason={decision.reason}",
        )
        if not held:
            log.warning("delivery %s: lease lost to another worker before recording", claimed.id)
        return decision.state

    def run_once(self) -> int:
        """Claim what is due and deliver it in this thread (tests, ``events`` tooling)."""
        batch = self.store.claim(self.owner, self.cfg.concurrency, self.cfg.lease, self.clock())
        for claimed in batch:
            self.deliver(claimed)
        return len(batch)

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event, parent_pid: int | None = None) -> None:
        """Deliver until ``stop`` is set (or the parent process ``parent_pid`` is gone)."""
        waiter = self.store.waiter()
        listener = threading.Thread(
            target=self._listen, args=(waiter, stop), daemon=True, name="wake-listener"
        )
        listener.start()
        log.info(
            "delivery worker started owner=%s concurrency=%d", self.owner, self.cfg.concurrency
        )
        last_prune = 0.0
        with ThreadPoolExecutor(self.cfg.concurrency, thread_name_prefix="deliver") as pool:
            while not stop.is_set():
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.warning("delivery worker: parent process is gone; stopping")
                    break
                self._kick.clear()
                now = self.clock()
                try:
                    self._claim_into(pool, now)
                    if now - last_prune > PRUNE_EVERY:
                        self.store.prune_dedupe(now - self.dedupe_window)
                        last_prune = now
                    timeout = self._idle_timeout(now)
                except StoreUnavailable as exc:
                    log.error("delivery worker: store unavailable (%s); retrying", exc)
                    timeout = 1.0
                self._kick.wait(timeout)
            stop.set()
        listener.join(timeout=5)
        waiter.close()
        log.info("delivery worker stopped owner=%s", self.owner)

    def _track_health(self, error: DeliveryError | None, now: float) -> None:
        """The circuit breaker: GitHub failing one request after another (an outage, a
        limit) makes the worker pause and then probe with one attempt at a time, instead
        of spending every queued delivery's attempts against it; a success closes it."""
        with self._lock:
            if not isinstance(error, TransientDeliveryError):
                self._streak = 0  # an answer on the merits means GitHub is up
                return
            self._streak += 1
            if error.not_before is not None:
                self._paused_until = max(self._paused_until, error.not_before)
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

    def _listen(self, waiter: Waiter, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if waiter.wait(1.0):
                    self._kick.set()
            except Exception:  # a broken wake channel degrades to polling, it is not fatal
                log.exception("delivery worker: wake channel failed; polling instead")
                stop.wait(1.0)
        self._kick.set()  # wake the loop so that it sees ``stop``
