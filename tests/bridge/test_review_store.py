"""The delivery worker's run follower ends with the worker, however the worker ends:
it waits on a kick of its own, so a worker that stops because its parent process is
gone must kick it as ``stop()`` does."""

from __future__ import annotations

import os
import threading

from bridge.config.load import parse_config
from bridge.delivery import worker as worker_mod
from bridge.delivery.worker import DeliveryWorker
from bridge.metrics import Metrics
from tests.bridge.fakeclock import Clock


class IdleFollower:
    """A run follower with nothing to follow: its loop sleeps as long as it may."""

    def __init__(self) -> None:
        self.stepped = threading.Event()

    def step(self) -> int:
        self.stepped.set()
        return 0


class ParentGoneOnceFollowed:
    """``os`` for the worker module, whose parent process is gone once the follower has
    made its first look (so the follower is inside its loop when the worker stops)."""

    def __init__(self, follower: IdleFollower) -> None:
        self.follower = follower

    def __getattr__(self, name: str):
        return getattr(os, name)

    def getppid(self) -> int:
        self.follower.stepped.wait(30)
        return -2


class NoSender:
    dry_run = False

    def send(self, claimed):
        raise AssertionError("nothing is queued: nothing to send")


def test_the_run_follower_ends_when_the_parent_process_is_gone(store_factory, monkeypatch):
    # The follower's wait is MAX_IDLE when nothing is due; the worker waits for its
    # helpers lease + 5 s. A follower not woken would outlive the worker's run().
    monkeypatch.setattr(worker_mod, "MAX_IDLE", 3600.0)
    cfg = parse_config(
        {"store": "sqlite:///unused.db", "sources": {"w": {"allow_unauthenticated": True}},
         "github": {"dry_run": True}, "delivery": {"lease": "1s"}},
        {},
    )  # fmt: skip
    store = store_factory()
    clock = Clock()
    follower = IdleFollower()
    monkeypatch.setattr(worker_mod, "os", ParentGoneOnceFollowed(follower))
    worker = DeliveryWorker(
        cfg, store, NoSender(), Metrics(store.stats, clock), clock=clock, owner="w1",
        follower=follower,
    )  # fmt: skip
    worker.run(parent_pid=os.getppid())  # returns once getppid() says another parent
    followers = [t for t in threading.enumerate() if t.name == "run-follower"]
    assert followers == []
