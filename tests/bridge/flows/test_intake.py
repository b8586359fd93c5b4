"""Every row of the intake checks table (docs/http.md), and what an accepted webhook
becomes at GitHub."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing

import pytest

from tests.bridge.e2e.conftest import RETIRED_SECRET, ROTATING_SECRET, SECRET, TOKEN
from tests.bridge.flows.inprocess import assert_error

# W&B's GitHub example body, as W&B fills it in.
GITHUB_SHAPED = json.dumps(
    {
        "event_type": "BUILD_AND_DEPLOY",
        "client_payload": {
            "event_author": "alice",
            "artifact_version": "wandb-artifact://_id/QXJ0aWZhY3Q6MTIz",
            "artifact_version_string": "acme/model-registry/churn:production",
            "artifact_collection_name": "churn",
            "project_name": "model-registry",
            "entity_name": "acme",
        },
    }
).encode()
FLAT = json.dumps(
    {
        "event_type": "ADD_ARTIFACT_ALIAS",
        "event_author": "bob",
        "artifact_version_string": "acme/wandb-registry-model/churn:v3",
        "alias": "production",
    }
).encode()


def test_passthrough_accepts_wandb_github_example(bridge, fake_github):
    resp = bridge.post(
        "/repos/acme/churn-svc/dispatches", GITHUB_SHAPED, secret=SECRET, token=TOKEN
    )
    assert resp.status_code == 202, resp.text
    answer = resp.json
    assert answer["event_id"].startswith("evt_")
    (d,) = answer["deliveries"]
    assert d["target"] == "github:acme/churn-svc" and d["state"] == "queued"
    assert d["event_type"] == "BUILD_AND_DEPLOY"
    (sent,) = fake_github.wait_for_dispatches(1)
    assert sent.repo == "acme/churn-svc" and sent.event_type == "BUILD_AND_DEPLOY"
    expected = json.loads(GITHUB_SHAPED)["client_payload"]
    assert sent.client_payload == {**expected, "bridge_event_id": answer["event_id"]}
    assert sent.headers["accept"] == "application/vnd.github+json"
    assert sent.headers["x-github-api-version"] == "2022-11-28"
    assert sent.headers["user-agent"].startswith("wandb-github-bridge/")


def test_webhook_routes_flat_body(bridge, fake_github):
    resp = bridge.post("/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN)
    assert resp.status_code == 202, resp.text
    (sent,) = fake_github.wait_for_dispatches(1)
    assert sent.event_type == "DEPLOY_MODEL"
    assert sent.client_payload == {
        "model": "acme/wandb-registry-model/churn:v3",
        "bridge_event_id": resp.json["event_id"],
    }


def test_webhook_with_no_matching_route_is_stored_with_no_deliveries(bridge):
    body = json.dumps({"event_type": "RUN_STATE", "run": "x"}).encode()
    resp = bridge.post("/webhooks/wandb", body, secret=SECRET, token=TOKEN)
    assert resp.status_code == 202 and resp.json["deliveries"] == []
    assert bridge.events_in_store() == 1


def test_link_model_matches_a_link_artifact_route(bridge, fake_github):
    body = json.dumps({"event_type": "LINK_MODEL", "artifact_version_string": "a/b/c:v1"}).encode()
    resp = bridge.post("/webhooks/wandb", body, secret=SECRET, token=TOKEN)
    assert resp.status_code == 202 and len(resp.json["deliveries"]) == 1
    (sent,) = fake_github.wait_for_dispatches(1)
    assert sent.repo == "acme/eval" and sent.event_type == "LINK_MODEL"
    assert sent.client_payload["artifact_version_string"] == "a/b/c:v1"
    assert sent.client_payload["bridge_event_id"] == resp.json["event_id"]


@pytest.mark.parametrize(
    "ctype", ["application/json; charset=utf-8", "application/cloudevents+json"]
)
def test_json_content_types_with_parameters_and_suffix(bridge, ctype):
    resp = bridge.post("/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN, content_type=ctype)
    assert resp.status_code == 202, resp.text


def test_rotated_out_secret_is_refused_and_both_rotation_keys_work(bridge):
    resp = bridge.post("/webhooks/wandb", FLAT, secret=RETIRED_SECRET, token=TOKEN)
    assert_error(resp, 401, "invalid_signature")
    assert (
        bridge.post("/webhooks/wandb", FLAT, secret=ROTATING_SECRET, token=TOKEN).status_code == 202
    )
    assert bridge.events_in_store() == 1


def test_passthrough_authenticates_against_any_source_and_records_it(bridge):
    # 'signed-only' has the second secret and no token: a request with no token passes it
    resp = bridge.post("/repos/acme/churn-svc/dispatches", GITHUB_SHAPED, secret=ROTATING_SECRET)
    assert resp.status_code == 202, resp.text
    with closing(sqlite3.connect(bridge.db)) as conn:
        (source,) = conn.execute("SELECT source FROM events").fetchone()
    assert source == "signed-only"


def test_503_store_unavailable_and_readyz(start_bridge, tmp_path):
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    bridge = start_bridge(with_worker=False, store=f"sqlite:///{store_dir}/bridge.db")
    assert bridge.client.get("/readyz").status_code == 200
    shutil.rmtree(store_dir)  # the volume is gone
    resp = bridge.post("/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN)
    assert_error(resp, 503, "store_unavailable")
    assert bridge.client.get("/readyz").status_code == 503


def test_duplicate_body_is_answered_200_and_sent_once(bridge, fake_github):
    first = bridge.post("/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN)
    second = bridge.post("/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN)
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json == {"duplicate_of": first.json["event_id"]}
    fake_github.wait_for_dispatches(1)
