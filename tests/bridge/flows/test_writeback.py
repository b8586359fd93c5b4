"""Write-back end to end: the bridge (served on loopback, for W&B's webhooks), a fake
GitHub whose run concludes, and the W&B stand-in whose managed automations (made by
``wandb apply``) send their webhooks to the bridge, the write-back's own included."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from typing import Any

import pytest

from harness.wait import wait_until
from tests.bridge.e2e.conftest import with_wandb
from tests.bridge.flows.inprocess import Bridge
from tests.bridge.flows.test_runs import RUN_NAME
from tests.bridge.wandb.conftest import ACCESS_TOKEN, API_KEY, WEBHOOK_SECRET
from tests.bridge.wandb.standin import StandIn
from tests.fakes.github import FakeGitHub

REGISTRY = "acme-org/wandb-registry-model"
ENV = {"WANDB_API_KEY": API_KEY, "BRIDGE_SECRET": WEBHOOK_SECRET, "BRIDGE_TOKEN": ACCESS_TOKEN}
ROUTES: list[dict[str, Any]] = [
    {  # any alias, so the write-back's own alias webhook matches it too
        "name": "deploy",
        "when": {"event_type": "ADD_ARTIFACT_ALIAS", "project_name": "wandb-registry-model"},
        "dispatch": {
            "repository": "acme/churn-svc",
            "event_type": "DEPLOY_MODEL",
            "client_payload": {"model": "${artifact_version_string}"},
        },
        "write_back": {
            "run_succeeded": {"aliases": ["deployed"], "tags": ["deployed-${alias}"]},
            "run_failed": {"tags": ["deploy-failed"]},
        },
    },
    {  # any tag: the write-back's tag webhook matches it
        "name": "tagged",
        "when": {"event_type": "ADD_ARTIFACT_TAG", "project_name": "wandb-registry-model"},
        "dispatch": {"repository": "acme/churn-svc", "event_type": "MODEL_TAGGED"},
    },
]


@pytest.fixture
def bridge(start_bridge, wandb: StandIn) -> Bridge:
    """The bridge, with W&B's automations made for its routes by ``wandb apply``."""
    proc = start_bridge(
        env=ENV,
        routes=ROUTES,
        runs={"no_run_after": "10s", "min_interval": "0.3s"},
        **with_wandb(wandb.url),
    )
    applied = proc.run("wandb", "apply")
    assert applied.code == 0, applied.err
    assert len(wandb.state.triggers) == 2
    wandb.deliver_to(proc.serve())  # W&B refuses loopback URLs: the stand-in sends here
    return proc


def version(wandb: StandIn, index: int) -> dict[str, Any]:
    return wandb._project(REGISTRY).collections["churn"].versions[index]


def deliveries(bridge: Bridge) -> list[tuple[str, str, str]]:
    """(event id, kind, state) of every delivery in the bridge's store."""
    with closing(sqlite3.connect(bridge.db)) as conn:
        rows = conn.execute("SELECT event_id, kind, state FROM deliveries ORDER BY created_at")
        return [tuple(r) for r in rows]


def write_back(bridge: Bridge, state: str) -> str | None:
    """The event id of a write-back in ``state``, if there is one."""
    return next((e for e, kind, s in deliveries(bridge) if kind == "wandb" and s == state), None)


def shown(bridge: Bridge, event_id: str) -> dict[str, Any]:
    return json.loads(bridge.cli("events", "show", event_id))


@pytest.mark.parametrize("hooks_first", [False, True], ids=["answer-first", "webhooks-first"])
def test_a_concluded_run_lands_in_the_registry_and_its_echo_dispatches_nothing(
    bridge, wandb, fake_github: FakeGitHub, hooks_first
):
    fake_github.add_workflow(
        "acme/churn-svc", types=["DEPLOY_MODEL"], run_name=RUN_NAME, runs_for=0.5
    )
    # W&B may send the write's webhooks before it answers the write
    wandb.hooks_before_answer = hooks_first
    wandb.add_alias(REGISTRY, "churn", 0, "production")

    wait_until(lambda: write_back(bridge, "delivered"), timeout=60, what="the write-back")
    v0 = version(wandb, 0)
    assert v0["aliases"] == ["v0", "production", "deployed"]
    assert v0["tags"] == ["deployed-production"]
    wandb.flush()  # every webhook W&B fired is answered
    sent = [json.loads(h.body) for h in wandb.state.webhooks_sent]
    assert [(h["event_type"], h.get("alias") or h.get("tag")) for h in sent] == [
        ("ADD_ARTIFACT_ALIAS", "production"),
        ("ADD_ARTIFACT_ALIAS", "deployed"),
        ("ADD_ARTIFACT_TAG", "deployed-production"),
    ]
    assert all(h.status is not None and 200 <= h.status < 300 for h in wandb.state.webhooks_sent)
    # The echoes were taken in and queued nothing: one dispatch, one write-back.
    rows = deliveries(bridge)
    assert [(kind, state) for _, kind, state in rows] == [
        ("dispatch", "delivered"),
        ("wandb", "delivered"),
    ]
    assert len(fake_github.dispatches) == 1
    doc = shown(bridge, rows[0][0])
    (dispatch,) = [d for d in doc["deliveries"] if d["kind"] == "repository_dispatch"]
    (write,) = [d for d in doc["deliveries"] if d["target"].startswith("wandb:")]
    assert write["target"] == f"wandb:{REGISTRY}/churn:production"
    assert (write["event_type"], write["attempts"], write["route"]) == (
        "run_succeeded",
        1,
        "deploy",
    )
    assert write["kind"] == "wandb_write_back" and write["write_back"]["aliases"] == ["deployed"]
    with closing(sqlite3.connect(bridge.db)) as conn:  # it starts no search for runs
        searched = conn.execute("SELECT delivery_id FROM watches").fetchall()
    assert searched == [(dispatch["id"],)]
    assert wandb.state.operations.count("AddAliases") == 1
    assert API_KEY not in bridge.log()
    assert API_KEY.encode() not in bridge.db.read_bytes()


def test_a_refused_write_is_dead_with_wandbs_message_and_replays_once_allowed(
    bridge, wandb, fake_github: FakeGitHub
):
    fake_github.add_workflow(
        "acme/churn-svc",
        types=["DEPLOY_MODEL"],
        run_name=RUN_NAME,
        runs_for=0.5,
        conclusion="failure",
    )
    wandb.state.echo_key = True  # W&B quotes the credentials in its errors
    wandb.answers["UpdateArtifact"] = (
        200,
        {"errors": [{"message": "permission denied: not an editor of this collection"}]},
    )
    wandb.add_alias(REGISTRY, "churn", 0, "production")

    event_id = wait_until(lambda: write_back(bridge, "dead"), timeout=60, what="a refusal")
    doc = shown(bridge, event_id)
    (write,) = [d for d in doc["deliveries"] if d["target"].startswith("wandb:")]
    assert write["event_type"] == "run_failed" and write["attempts"] == 1
    assert "permission denied: not an editor" in write["last_error"]
    assert "registry admin" in write["last_error"]  # what to do about it
    assert API_KEY not in json.dumps(doc) and API_KEY not in bridge.log()
    assert version(wandb, 0)["tags"] == []

    del wandb.answers["UpdateArtifact"]  # the key's user was made an editor
    bridge.cli("events", "replay", "--dead")
    wait_until(lambda: write_back(bridge, "delivered"), what="the replayed write-back")
    assert version(wandb, 0)["tags"] == ["deploy-failed"]
    wandb.flush()  # its tag's webhook (route "tagged" takes any tag) is answered
    assert len(wandb.state.webhooks_sent) == 2
    assert [kind for _, kind, _ in deliveries(bridge)] == ["dispatch", "wandb"]
