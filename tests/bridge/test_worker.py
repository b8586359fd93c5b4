"""The delivery worker with a real store, a fake clock and a scripted sender."""

from __future__ import annotations

import hashlib
import threading

import pytest

from bridge.config.load import parse_config
from bridge.delivery import worker as worker_mod
from bridge.delivery.senders import Sent
from bridge.delivery.worker import BREAKER_AFTER, DeliveryWorker
from bridge.errors import PermanentDeliveryError, TransientDeliveryError
from bridge.metrics import Metrics
from bridge.store.models import NewDelivery, NewEvent
from tests.bridge.fakeclock import T0, Clock


class ScriptedSender:
    dry_run = False

    def __init__(self, script) -> None:
        self.script = list(script)
        self.sent: list[str] = []
        self.done = threading.Event()

    def send(self, claimed):
        self.sent.append(claimed.id)
        step = self.script.pop(0) if self.script else 204
        if isinstance(step, Exception):
            raise step
        self.done.set()
        return Sent(step)


def make(tmp_path, store_factory, sender, clock, **delivery):
    cfg = parse_config(
        {"store": "sqlite:///unused.db", "sources": {"w": {"allow_unauthenticated": True}},
         "github": {"dry_run": True},
         "delivery": {"initial_backoff": "1s", "max_backoff": "10s", "concurrency": 4,
                      **delivery}},
        {},
    )  # fmt: skip
    store = store_factory()
    return DeliveryWorker(cfg, store, sender, Metrics(store.stats, clock), clock=clock,
                          rand=lambda: 0.5, owner="w1"), store  # fmt: skip


def enqueue(store, n, at=T0):
    for i in range(n):
        body = b"%d" % i
        store.accept(
            NewEvent(f"evt_{i}", "w", "/webhooks/w", at, body, hashlib.sha256(body).hexdigest()),
            [NewDelivery(f"dlv_{i}", "r", "acme/x", "E", "{}")],
            600,
        )


def test_breaker_opens_after_consecutive_failures_then_probes_then_closes(tmp_path, store_factory):
    clock = Clock()
    sender = ScriptedSender([TransientDeliveryError("GitHub answered 503", 503)] * BREAKER_AFTER)
    w, store = make(tmp_path, store_factory, sender, clock)
    enqueue(store, 6)
    assert w.claim_budget(clock.now) == 4
    for claimed in store.claim("w1", BREAKER_AFTER, 60, clock.now):
        w.deliver(claimed)
    assert w.claim_budget(clock.now) == 0  # open: paused
    clock.now += 1.01  # the first breaker pause is initial_backoff
    assert w.claim_budget(clock.now) == 1  # half-open: one probe at a time
    (probe,) = store.claim("w1", 1, 60, clock.now)
    assert w.deliver(probe) == "delivered"
    assert w.claim_budget(clock.now) == 4  # closed


def test_a_permanent_answer_resets_the_breaker(tmp_path, store_factory):
    clock = Clock()
    script = [TransientDeliveryError("x", 502)] * (BREAKER_AFTER - 1)
    script.append(PermanentDeliveryError("GitHub answered 404: Not Found", 404))
    script.append(TransientDeliveryError("x", 502))
    w, store = make(tmp_path, store_factory, ScriptedSender(script), clock)
    enqueue(store, BREAKER_AFTER + 1)
    for claimed in store.claim("w1", 10, 60, clock.now):
        w.deliver(claimed)
    assert w.claim_budget(clock.now) == 4


def test_rate_limit_pauses_claims_until_githubs_time(tmp_path, store_factory):
    clock = Clock()
    limited = TransientDeliveryError("limited", 403, not_before=T0 + 600)
    w, store = make(tmp_path, store_factory, ScriptedSender([limited]), clock, max_backoff="1h")
    enqueue(store, 2)
    (c,) = store.claim("w1", 1, 60, clock.now)
    w.deliver(c)
    clock.now = T0 + 599
    assert w.claim_budget(clock.now) == 0
    clock.now = T0 + 600
    assert w.claim_budget(clock.now) == 4
    (d,) = store.get_event("evt_0").deliveries
    assert d.state == "queued" and d.due_at >= T0 + 600


def test_a_bug_in_the_sender_is_a_retry_not_a_dead_worker(tmp_path, store_factory):
    clock = Clock()
    w, store = make(tmp_path, store_factory, ScriptedSender([ValueError("boom")]), clock)
    enqueue(store, 1)
    (c,) = store.claim("w1", 1, 60, clock.now)
    assert w.deliver(c) == "queued"
    (d,) = store.get_event("evt_0").deliveries
    assert "internal error in the bridge (ValueError)" in d.history[0].response


def test_worker_is_woken_by_new_work_not_by_a_polling_tick(tmp_path, store_factory, monkeypatch):
    # With the safety-net poll an hour long, only a wake-up can get the delivery out.
    monkeypatch.setattr(worker_mod, "MAX_IDLE", 3600.0)
    sender = ScriptedSender([])
    w, store = make(tmp_path, store_factory, sender, __import__("time").time)
    thread = threading.Thread(target=w.run)
    thread.start()
    try:
        threading.Event().wait(0.3)  # the worker is asleep now, nothing to do
        enqueue(store, 1, at=__import__("time").time())
        assert sender.done.wait(30), "the worker was not woken"
    finally:
        w.stop()
        thread.join(30)
    assert not thread.is_alive()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_dedupe_rows_are_pruned(store_factory):
    store = store_factory()
    enqueue(store, 3)
    assert store.prune_dedupe(T0 + 1) == 3


def test_a_rate_limit_pauses_every_worker_on_the_credential_capped_at_max_backoff(
    tmp_path, store_factory
):
    clock = Clock()
    years = TransientDeliveryError("limited", 403, not_before=T0 + 10**8, rate_limited=True)
    a, store = make(tmp_path, store_factory, ScriptedSender([years]), clock)
    b, _ = make(tmp_path, store_factory, ScriptedSender([]), clock)
    enqueue(store, 3)
    (c,) = store.claim("w1", 1, 60, clock.now)
    a.deliver(c)
    pool = __import__("concurrent.futures").futures.ThreadPoolExecutor(1)
    b._claim_into(pool, clock.now)  # the other worker sees the shared pause and claims nothing
    pool.shutdown()
    assert b.claim_budget(clock.now) == 0
    assert all(d.state == "queued" for e in ("evt_1", "evt_2")
               for d in store.get_event(e).deliveries)  # fmt: skip
    cap = a.cfg.max_backoff
    (d,) = store.get_event("evt_0").deliveries
    assert d.due_at <= T0 + cap + 1  # not 2029
    clock.now = T0 + cap + 1
    assert a.claim_budget(clock.now) > 0 and b.claim_budget(clock.now) > 0
    assert store.paused_until(a.credential, clock.now) is None


class HeldSender(ScriptedSender):
    """Answers 204, but only once ``release`` is set; counts the attempts waiting."""

    def __init__(self) -> None:
        super().__init__([])
        self.release = threading.Event()
        self.waiting = threading.Semaphore(0)

    def send(self, claimed):
        self.waiting.release()
        assert self.release.wait(30), "never released"
        return super().send(claimed)


def test_stop_with_every_slot_busy_lets_the_attempts_in_flight_finish(
    tmp_path, store_factory, monkeypatch
):
    # Every slot busy: the loop waits for a finished attempt, not for new work; stop()
    # must still end it, and only after the attempts in flight are recorded.
    monkeypatch.setattr(worker_mod, "MAX_IDLE", 3600.0)
    sender = HeldSender()
    w, store = make(tmp_path, store_factory, sender, __import__("time").time, concurrency=2)
    enqueue(store, 3, at=__import__("time").time())
    thread = threading.Thread(target=w.run)
    thread.start()
    try:
        assert sender.waiting.acquire(timeout=30) and sender.waiting.acquire(timeout=30)
        w.stop()
        thread.join(0.3)
        assert thread.is_alive()  # waiting for the two attempts in flight
    finally:
        sender.release.set()
        thread.join(30)
    assert not thread.is_alive()
    states = {d.id: d.state for i in range(3) for d in store.get_event(f"evt_{i}").deliveries}
    assert sorted(states.values()) == ["delivered", "delivered", "queued"]
    assert sorted(sender.sent) == sorted(k for k, v in states.items() if v == "delivered")
