"""Catch-up with two bridge replicas (separate gunicorn processes, two workers each)
sharing one PostgreSQL store: one pass at a time, one dispatch per change."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from bridge.store import open_store
from tests.bridge.e2e.conftest import with_wandb
from tests.bridge.flows.test_catchup import ENV, REGISTRY, ROUTES, quiet
from tests.bridge.harness import BridgeProcess
from tests.bridge.wandb.conftest import API_KEY
from tests.bridge.wandb.standin import StandIn

pytestmark = pytest.mark.postgres


def cli(bridge: BridgeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "wandb", *args, "--config", str(bridge.config_path)],
        capture_output=True,
        text=True,
        env=bridge.env,
    )


def by_hand(bridge: BridgeProcess) -> subprocess.CompletedProcess[str]:
    """``wandb catch-up``, again while a pass of ``serve`` holds the lease."""
    deadline = time.monotonic() + 30
    while True:
        done = cli(bridge, "catch-up")
        if "another catch-up pass is running" not in done.stderr or time.monotonic() > deadline:
            assert API_KEY not in done.stdout + done.stderr
            return done
        time.sleep(0.2)


@pytest.fixture
def replicas(start_bridge, wandb: StandIn, postgres_url: str) -> list[BridgeProcess]:
    started = [
        start_bridge(
            name=f"replica-{n}",
            env={**ENV, "E2E_STORE": postgres_url},
            store={"env": "E2E_STORE"},
            routes=ROUTES,
            runs={"follow": False},
            **with_wandb(wandb.url, catch_up={"every": "10m"}),
        )
        for n in ("a", "b")
    ]
    assert cli(started[0], "apply").returncode == 0
    assert by_hand(started[0]).returncode == 0  # the baseline
    return started


def origins(url: str) -> Counter[tuple[str, str]]:
    """(origin, route) of every dispatch in the shared store."""
    store = open_store(url)
    try:
        return Counter(
            (e.origin, d.route)
            for e in (store.get_event(x.id) for x in store.list_events(limit=1000))
            for d in e.deliveries
        )
    finally:
        store.close()


def test_replicas_back_from_an_outage_catch_up_each_change_once(
    replicas, wandb, fake_github, postgres_url
):
    for r in replicas:
        r.stop()
    v2 = wandb.link(REGISTRY, "churn")
    wandb.add_alias(REGISTRY, "churn", v2["index"], "production")
    wandb.add_tag(REGISTRY, "churn", v2["index"], "candidate")
    wandb.flush()
    starting = [threading.Thread(target=r.start) for r in replicas]
    for t in starting:  # four processes start a pass at once; the lease lets one run
        t.start()
    for t in starting:
        t.join()
    quiet(fake_github, 3)
    assert origins(postgres_url) == Counter(
        {("catch_up", "deploy"): 1, ("catch_up", "evaluate"): 1, ("catch_up", "candidate"): 1}
    )
    for r in replicas:  # later passes, on either replica, find nothing new
        assert "no change" in by_hand(r).stdout
    quiet(fake_github, 3)


def test_a_webhook_racing_passes_on_both_replicas_dispatches_once(
    replicas, wandb, fake_github, postgres_url
):
    wandb.deliver_to(replicas[1].url)
    for n, alias_at in enumerate((0, 1)):
        wandb.hold()
        wandb.add_alias(REGISTRY, "churn", alias_at, "production")
        passes = [threading.Thread(target=by_hand, args=(r,)) for r in replicas]
        for t in passes:
            t.start()
        wandb.release()  # the webhook arrives while the passes read and record
        for t in passes:
            t.join()
        wandb.flush()
        quiet(fake_github, n + 1)
    assert sum(origins(postgres_url).values()) == 2
