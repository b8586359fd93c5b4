"""Catch-up end to end: the bridge with ``wandb.catch_up`` (served on loopback, for W&B's
webhooks), a fake GitHub, and the W&B stand-in whose managed automations (made by
``wandb apply``) send their webhooks to the bridge, or fail to: the bridge is down, a
webhook is dropped or late."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from typing import Any

import pytest

from tests.bridge.e2e.conftest import with_wandb
from tests.bridge.flows.inprocess import Bridge, Ran
from tests.bridge.wandb.conftest import ACCESS_TOKEN, API_KEY, WEBHOOK_SECRET
from tests.bridge.wandb.standin import StandIn
from tests.fakes.github import FakeGitHub

REGISTRY = "acme-org/wandb-registry-model"
ENV = {"WANDB_API_KEY": API_KEY, "BRIDGE_SECRET": WEBHOOK_SECRET, "BRIDGE_TOKEN": ACCESS_TOKEN}
ON_REGISTRY = {"project_name": "wandb-registry-model"}
ROUTES: list[dict[str, Any]] = [
    {
        "name": "deploy",
        "when": {"event_type": "ADD_ARTIFACT_ALIAS", "alias": "production", **ON_REGISTRY},
        "dispatch": {
            "repository": "acme/churn-svc",
            "event_type": "DEPLOY_MODEL",
            "client_payload": {"model": "${artifact_version_string}"},
        },
    },
    {
        "name": "evaluate",
        "when": {"event_type": "LINK_ARTIFACT", **ON_REGISTRY},
        "dispatch": {"repository": "acme/eval", "event_type": "EVALUATE_MODEL"},
    },
    {
        "name": "candidate",
        "when": {"event_type": "ADD_ARTIFACT_TAG", "tag": "candidate", **ON_REGISTRY},
        "dispatch": {"repository": "acme/eval", "event_type": "CANDIDATE"},
    },
]


@pytest.fixture
def bridge(start_bridge, wandb: StandIn) -> Bridge:
    """The bridge with catch-up on, W&B's automations made by ``wandb apply``, and the
    first pass (the baseline) done."""
    proc = start_bridge(
        env=ENV,
        routes=ROUTES,
        runs={"follow": False},
        # the pass at start, then passes by hand
        **with_wandb(wandb.url, catch_up={"every": "10m"}),
    )
    applied = proc.run("wandb", "apply")
    assert applied.code == 0, applied.err
    assert len(wandb.state.triggers) == 3
    wandb.deliver_to(proc.serve())  # W&B refuses loopback URLs: the stand-in sends here
    # The pass at start ran before `apply` made the automations: this one is the baseline.
    assert by_hand(proc).code == 0
    return proc


def by_hand(bridge: Bridge) -> Ran:
    """``wandb catch-up``, again while a pass of ``serve`` holds the lease."""
    deadline = time.monotonic() + 30
    while True:
        done = bridge.run("wandb", "catch-up")
        if "another catch-up pass is running" not in done.err or time.monotonic() > deadline:
            assert API_KEY not in done.out + done.err
            return done
        time.sleep(0.2)


def events(bridge: Bridge) -> list[tuple[str, str, str]]:
    """(origin, route, repository) of every dispatch the bridge's store holds."""
    with closing(sqlite3.connect(bridge.db)) as conn:
        rows = conn.execute(
            "SELECT e.origin, d.route, d.repository FROM events e "
            "JOIN deliveries d ON d.event_id = e.id ORDER BY d.created_at"
        )
        return [tuple(r) for r in rows]


def quiet(fake_github: FakeGitHub, n: int) -> list[Any]:
    """The dispatches GitHub got, once there are ``n`` and a moment brings no more."""
    fake_github.wait_for_dispatches(n, timeout=30)
    time.sleep(1.0)
    assert len(fake_github.dispatches) == n, [d.event_type for d in fake_github.dispatches]
    return fake_github.dispatches


def test_the_baseline_dispatches_nothing(bridge, wandb, fake_github):
    # The seed's history (versions linked, production on v1) is there, and stays history.
    assert "catch-up pass:" in bridge.log()
    assert by_hand(bridge).code == 0
    time.sleep(1.0)
    assert fake_github.dispatches == [] and events(bridge) == []


def test_changes_made_while_the_bridge_was_down_are_each_dispatched_once_on_its_return(
    bridge, wandb, fake_github
):
    bridge.down()
    v2 = wandb.link(REGISTRY, "churn", metadata={"accuracy": 0.95})
    wandb.add_alias(REGISTRY, "churn", v2["index"], "production")  # moves from v1
    wandb.add_tag(REGISTRY, "churn", v2["index"], "candidate")
    wandb.flush()
    assert [h.status for h in wandb.state.webhooks_sent] == [None, None, None]  # nobody there

    wandb.deliver_to(bridge.up())  # its first pass runs at once
    sent = quiet(fake_github, 3)
    assert sorted(d.event_type for d in sent) == ["CANDIDATE", "DEPLOY_MODEL", "EVALUATE_MODEL"]
    deploy = next(d for d in sent if d.event_type == "DEPLOY_MODEL")
    assert deploy.client_payload["model"] == f"{REGISTRY}/churn:production"
    assert sorted(events(bridge)) == [
        ("catch_up", "candidate", "acme/eval"),
        ("catch_up", "deploy", "acme/churn-svc"),
        ("catch_up", "evaluate", "acme/eval"),
    ]
    again = by_hand(bridge)  # a later pass finds nothing new
    assert again.code == 0 and "no change" in again.out
    quiet(fake_github, 3)
    assert API_KEY not in bridge.log()
    assert API_KEY.encode() not in bridge.db.read_bytes()


def test_a_late_webhook_after_catch_up_and_catch_up_after_a_webhook_dispatch_once(
    bridge, wandb, fake_github
):
    wandb.hold()  # W&B's webhook is late
    wandb.add_alias(REGISTRY, "churn", 0, "production")
    assert by_hand(bridge).code == 0  # catch-up sees it first
    quiet(fake_github, 1)
    wandb.release()
    wandb.flush()
    (late,) = wandb.state.webhooks_sent
    assert late.status == 202
    answer = json.loads(late.answer)
    assert answer["deliveries"] == [] and answer["duplicates"][0]["route"] == "deploy"
    quiet(fake_github, 1)

    wandb.add_tag(REGISTRY, "churn", 0, "candidate")  # the webhook comes first this time
    wandb.flush()
    quiet(fake_github, 2)
    assert by_hand(bridge).code == 0
    quiet(fake_github, 2)
    assert [o for o, _, _ in events(bridge)] == ["catch_up", "webhook"]


def test_an_alias_put_back_after_it_was_removed_is_a_new_change(bridge, wandb, fake_github):
    wandb.add_alias(REGISTRY, "churn", 0, "production")
    wandb.flush()
    quiet(fake_github, 1)
    wandb.remove_alias(REGISTRY, "churn", 0, "production")
    assert by_hand(bridge).code == 0  # sees it gone (no pass saw it there)
    wandb.drop_next(1)  # the webhook of putting it back is lost
    wandb.add_alias(REGISTRY, "churn", 0, "production")
    wandb.flush()
    assert by_hand(bridge).code == 0
    sent = quiet(fake_github, 2)
    assert [d.event_type for d in sent] == ["DEPLOY_MODEL", "DEPLOY_MODEL"]
    assert [o for o, _, _ in events(bridge)] == ["webhook", "catch_up"]
