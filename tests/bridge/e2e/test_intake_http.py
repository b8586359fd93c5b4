"""Every row of the intake checks table (docs/http.md), against the bridge under gunicorn."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest
import requests

from bridge.signature import sign
from tests.bridge.e2e.conftest import RETIRED_SECRET, ROTATING_SECRET, SECRET, TOKEN
from tests.bridge.harness import assert_error, events_in_store, post

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
    resp = post(
        f"{bridge.url}/repos/acme/churn-svc/dispatches", GITHUB_SHAPED, secret=SECRET, token=TOKEN
    )
    assert resp.status_code == 202, resp.text
    answer = resp.json()
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
    resp = post(f"{bridge.url}/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN)
    assert resp.status_code == 202, resp.text
    (sent,) = fake_github.wait_for_dispatches(1)
    assert sent.event_type == "DEPLOY_MODEL"
    assert sent.client_payload == {
        "model": "acme/wandb-registry-model/churn:v3",
        "bridge_event_id": resp.json()["event_id"],
    }


def test_webhook_with_no_matching_route_is_stored_with_no_deliveries(bridge):
    body = json.dumps({"event_type": "RUN_STATE", "run": "x"}).encode()
    resp = post(f"{bridge.url}/webhooks/wandb", body, secret=SECRET, token=TOKEN)
    assert resp.status_code == 202 and resp.json()["deliveries"] == []
    assert events_in_store(bridge) == 1


def test_link_model_matches_a_link_artifact_route(bridge, fake_github):
    body = json.dumps({"event_type": "LINK_MODEL", "artifact_version_string": "a/b/c:v1"}).encode()
    resp = post(f"{bridge.url}/webhooks/wandb", body, secret=SECRET, token=TOKEN)
    assert resp.status_code == 202 and len(resp.json()["deliveries"]) == 1
    (sent,) = fake_github.wait_for_dispatches(1)
    assert sent.repo == "acme/eval" and sent.event_type == "LINK_MODEL"
    assert sent.client_payload["artifact_version_string"] == "a/b/c:v1"
    assert sent.client_payload["bridge_event_id"] == resp.json()["event_id"]


@pytest.mark.parametrize(
    "ctype", ["application/json; charset=utf-8", "application/cloudevents+json"]
)
def test_json_content_types_with_parameters_and_suffix(bridge, ctype):
    resp = post(
        f"{bridge.url}/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN, content_type=ctype
    )
    assert resp.status_code == 202, resp.text


def test_rotated_out_secret_is_refused_and_both_rotation_keys_work(bridge):
    resp = post(f"{bridge.url}/webhooks/wandb", FLAT, secret=RETIRED_SECRET, token=TOKEN)
    assert_error(resp, 401, "invalid_signature")
    assert (
        post(f"{bridge.url}/webhooks/wandb", FLAT, secret=ROTATING_SECRET, token=TOKEN).status_code
        == 202
    )
    assert events_in_store(bridge) == 1


def test_passthrough_authenticates_against_any_source_and_records_it(bridge):
    # 'signed-only' has the second secret and no token: a request with no token passes it
    resp = post(
        f"{bridge.url}/repos/acme/churn-svc/dispatches", GITHUB_SHAPED, secret=ROTATING_SECRET
    )
    assert resp.status_code == 202, resp.text
    db = bridge.workdir / "bridge.db"
    with sqlite3.connect(db) as conn:
        (source,) = conn.execute("SELECT source FROM events").fetchone()
    assert source == "signed-only"


def test_503_store_unavailable_and_readyz(start_bridge, tmp_path):
    import shutil

    store_dir = tmp_path / "store"
    store_dir.mkdir()
    bridge = start_bridge(with_worker=False, store=f"sqlite:///{store_dir}/bridge.db")
    assert requests.get(bridge.url + "/readyz", timeout=10).status_code == 200
    shutil.rmtree(store_dir)  # the volume is gone
    resp = post(f"{bridge.url}/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN)
    assert_error(resp, 503, "store_unavailable")
    ready = requests.get(bridge.url + "/readyz", timeout=10)
    assert ready.status_code == 503


def test_duplicate_body_is_answered_200_and_sent_once(bridge, fake_github):
    first = post(f"{bridge.url}/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN)
    second = post(f"{bridge.url}/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN)
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == {"duplicate_of": first.json()["event_id"]}
    fake_github.wait_for_dispatches(1)


def test_simultaneous_duplicates_on_two_workers_give_one_dispatch(bridge, fake_github):
    """Two identical requests at the same instant, on two gunicorn workers."""
    answers: list[requests.Response] = []
    barrier = threading.Barrier(2)
    sessions = [requests.Session() for _ in range(2)]
    for s in sessions:  # connect first, so that each request is ready to go
        s.get(bridge.url + "/healthz", timeout=10)

    def send(session):
        barrier.wait()
        answers.append(
            session.post(
                f"{bridge.url}/webhooks/wandb",
                data=FLAT,
                timeout=30,
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {TOKEN}",
                    "X-Wandb-Signature": sign(SECRET, FLAT),
                },
            )
        )

    threads = [threading.Thread(target=send, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in sessions:
        s.close()
    assert sorted(a.status_code for a in answers) == [200, 202]
    accepted = next(a for a in answers if a.status_code == 202).json()["event_id"]
    assert next(a for a in answers if a.status_code == 200).json() == {"duplicate_of": accepted}
    fake_github.wait_for_dispatches(1)
    assert len(fake_github.attempts_for("acme/churn-svc")) == 1
    assert events_in_store(bridge) == 1
