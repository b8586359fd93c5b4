"""Intake of managed webhooks: one change, one dispatch per route, and
nothing for the bridge's own write-back, whatever the routes say."""

from __future__ import annotations

import json
import time

from bridge.routing.changes import change_key, item
from bridge.store import open_store
from bridge.store.models import CaughtUp, NewDelivery, NewEvent, PassResult
from tests.bridge.e2e.conftest import SECRET, TOKEN

ARTIFACT = "QXJ0aWZhY3Q6NDI="  # base64 of Artifact:42
ROUTES = [
    {
        "name": name,
        "when": {"event_type": "ADD_ARTIFACT_ALIAS", "alias": "production"},
        "dispatch": {
            "repository": repo,
            "client_payload": {"collection": "${artifact_collection_name}"},
        },
    }
    for name, repo in (("deploy", "acme/churn-svc"), ("model-card", "acme/model-cards"))
] + [
    {
        "name": "any-alias",  # would take any alias, the bridge's own too
        "when": {"event_type": "ADD_ARTIFACT_ALIAS"},
        "dispatch": {"repository": "acme/audit"},
    }
]


def managed(route: str | None, alias: str = "production", **extra: str) -> bytes:
    """A body as an automation `wandb apply` made for ``route`` sends it."""
    body = {
        "event_type": "ADD_ARTIFACT_ALIAS",
        "event_author": "alice",
        "project_name": "wandb-registry-model",
        "artifact_collection_name": "churn",
        "artifact_version": f"wandb-artifact://_id/{ARTIFACT}",
        "artifact_version_string": f"acme/wandb-registry-model/churn:{alias}",
        "alias": alias,
        "tag": "",
        **extra,
    }
    if route is not None:
        body["bridge_route"] = route
    return json.dumps(body).encode()


def accept(bridge, body: bytes) -> dict:
    resp = bridge.post("/webhooks/wandb", body, secret=SECRET, token=TOKEN)
    assert resp.status_code == 202, resp.text
    return dict(resp.json)


def test_two_routes_on_one_change_get_one_dispatch_each(start_bridge, fake_github):
    bridge = start_bridge(routes=ROUTES)
    answers = [accept(bridge, managed(r)) for r in ("deploy", "model-card", "any-alias")]
    assert [[d["target"] for d in a["deliveries"]] for a in answers] == [
        ["github:acme/churn-svc"],
        ["github:acme/model-cards"],
        ["github:acme/audit"],
    ]
    sent = fake_github.wait_for_dispatches(3)
    time.sleep(0.5)  # nothing more comes
    assert sorted(d.repo for d in fake_github.dispatches) == [
        "acme/audit",
        "acme/churn-svc",
        "acme/model-cards",
    ]
    assert all(d.client_payload.get("collection", "churn") == "churn" for d in sent)
    # a body without bridge_route (an automation made by hand) still reaches every route
    assert (
        len(accept(bridge, managed(None, alias="production", event_author="bob"))["deliveries"])
        == 3
    )


def test_a_webhook_for_a_route_the_config_lost_is_answered_and_ignored(bridge, fake_github):
    answer = accept(bridge, managed("renamed-away"))
    assert answer["deliveries"] == []
    assert "renamed-away" in answer["ignored"] and "wandb apply" in answer["ignored"]


def test_a_change_catch_up_dispatched_is_not_dispatched_again(start_bridge, fake_github):
    bridge = start_bridge(routes=ROUTES)
    store = open_store(bridge.config.store.value)  # another process's, as the CLI's
    try:
        now = time.time()
        key = change_key(
            "ADD_ARTIFACT_ALIAS", "wandb-registry-model", "churn", ARTIFACT, "production"
        )
        body = managed("deploy")
        caught = CaughtUp(
            NewEvent(
                "evt_caughtup0001", "wandb", "/webhooks/wandb", now, body, "x" * 64, "catch_up"
            ),
            (
                NewDelivery(
                    "dlv_caughtup0001", "deploy", "acme/churn-svc", "ADD_ARTIFACT_ALIAS", "{}"
                ),
            ),
            "deploy",
            key,
        )
        assert store.catchup.record(PassResult(caught_up=(caught,)), now) == ["evt_caughtup0001"]
    finally:
        store.close()
    fake_github.wait_for_dispatches(1)
    late = accept(bridge, managed("deploy", event_author="late"))  # the webhook, delayed
    assert late["deliveries"] == []
    assert late["duplicates"] == [{"route": "deploy", "event_id": "evt_caughtup0001"}]
    other = accept(bridge, managed("model-card"))  # another route: its own change
    assert [d["target"] for d in other["deliveries"]] == ["github:acme/model-cards"]
    fake_github.wait_for_dispatches(2)
    time.sleep(0.5)
    assert len(fake_github.dispatches) == 2


def test_the_webhook_of_the_bridges_own_write_back_dispatches_nothing(start_bridge, fake_github):
    bridge = start_bridge(routes=ROUTES)
    store = open_store(bridge.config.store.value)
    try:
        store.note_echoes([item(ARTIFACT, "alias", "deployed")], time.time() + 3600)
    finally:
        store.close()
    for route in ("any-alias", None):  # managed or made by hand: never dispatched
        answer = accept(bridge, managed(route, alias="deployed"))
        assert answer["deliveries"] == [] and "write-back" in answer["ignored"]
    # the same alias on another version is someone else's change
    other = managed("any-alias", alias="deployed", artifact_version="wandb-artifact://_id/QQ==")
    assert len(accept(bridge, other)["deliveries"]) == 1
    fake_github.wait_for_dispatches(1)
    time.sleep(0.5)
    assert len(fake_github.dispatches) == 1
