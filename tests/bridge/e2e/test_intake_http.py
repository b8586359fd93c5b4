"""Every row of SPEC §3's table, against the bridge under gunicorn."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading

import pytest
import requests

from tests.bridge.e2e.conftest import RETIRED_SECRET, ROTATING_SECRET, SECRET, TOKEN
from tests.bridge.harness import post

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


def events_in_store(bridge) -> int:
    db = bridge.workdir / "bridge.db"
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def assert_error(resp: requests.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and len(body["message"]) > 20


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


def test_413_by_content_length(bridge):
    big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    resp = post(f"{bridge.url}/webhooks/wandb", big, secret=SECRET, token=TOKEN)
    assert_error(resp, 413, "payload_too_large")


def _raw_exchange(port: int, head: bytes, chunks, limit: int = 60 * 1024 * 1024) -> bytes:
    """Send ``head`` then body ``chunks`` until the server answers; return its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head)
        sent = 0
        answer = b""
        s.settimeout(0.001)
        for chunk in chunks:
            try:
                s.sendall(chunk)
            except OSError:
                break  # the server answered and closed: it did not read the rest
            sent += len(chunk)
            try:
                answer += s.recv(65536)
                if answer:
                    break
            except (TimeoutError, BlockingIOError):
                pass
            if sent > limit:
                break
        s.settimeout(20)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    return answer


def test_413_chunked_50mb_without_content_length_is_not_buffered(bridge):
    def chunks():
        piece = b"x" * 65536
        frame = b"%x\r\n" % len(piece) + piece + b"\r\n"
        for _ in range(800):  # 50 MiB
            yield frame
        yield b"0\r\n\r\n"

    head = (
        b"POST /webhooks/wandb HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    answer = _raw_exchange(bridge.port, head, chunks())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"payload_too_large"' in answer


def test_50mb_with_a_small_content_length_is_refused_without_reading_it(bridge):
    head = (
        b"POST /webhooks/wandb HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
    )
    answer = _raw_exchange(bridge.port, head, (b"x" * 65536 for _ in range(800)))
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]  # the 2 bytes are not signed
    assert b'"missing_signature"' in answer
    assert events_in_store(bridge) == 0


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_415(bridge, ctype):
    resp = post(
        f"{bridge.url}/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN, content_type=ctype
    )
    assert_error(resp, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "ctype", ["application/json; charset=utf-8", "application/cloudevents+json"]
)
def test_json_content_types_with_parameters_and_suffix(bridge, ctype):
    resp = post(
        f"{bridge.url}/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN, content_type=ctype
    )
    assert resp.status_code == 202, resp.text


def test_401_missing_and_invalid_token(bridge):
    assert_error(post(f"{bridge.url}/webhooks/wandb", FLAT, secret=SECRET), 401, "missing_token")
    assert_error(
        post(f"{bridge.url}/webhooks/wandb", FLAT, secret=SECRET, token="nope"),
        401,
        "invalid_token",
    )
    resp = post(
        f"{bridge.url}/webhooks/wandb",
        FLAT,
        secret=SECRET,
        headers={"Authorization": f"Basic {TOKEN}"},
    )
    assert_error(resp, 401, "missing_token")


def test_401_missing_and_invalid_signature(bridge):
    assert_error(post(f"{bridge.url}/webhooks/wandb", FLAT, token=TOKEN), 401, "missing_signature")
    resp = post(
        f"{bridge.url}/webhooks/wandb",
        FLAT,
        token=TOKEN,
        headers={"X-Wandb-Signature": "bm90IGEgc2lnbmF0dXJl"},
    )
    assert_error(resp, 401, "invalid_signature")


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


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"str"', b"\xff\xfe", b""])
def test_400_invalid_json(bridge, body):
    resp = post(f"{bridge.url}/webhooks/wandb", body, secret=SECRET, token=TOKEN)
    assert_error(resp, 400, "invalid_json")


def _dispatch(event_type, payload) -> bytes:
    return json.dumps({"event_type": event_type, "client_payload": payload}).encode()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (_dispatch("E", {f"k{i}": i for i in range(11)}), "11 top-level keys"),
        (_dispatch("", {}), "1 to 100"),
        (_dispatch("E" * 101, {}), "1 to 100"),
        (_dispatch("E", [1]), "JSON object"),
        (_dispatch("E", {"blob": "x" * 65_000}), "64 KB"),
        (json.dumps({"client_payload": {}}).encode(), "event_type"),
    ],
)
def test_422_invalid_dispatch_before_anything_is_stored(bridge, fake_github, body, says):
    resp = post(f"{bridge.url}/repos/acme/churn-svc/dispatches", body, secret=SECRET, token=TOKEN)
    assert_error(resp, 422, "invalid_dispatch")
    assert says in resp.json()["message"]
    assert events_in_store(bridge) == 0
    assert fake_github.requests == []


def test_403_repository_not_allowed(bridge):
    resp = post(
        f"{bridge.url}/repos/evil/repo/dispatches", GITHUB_SHAPED, secret=SECRET, token=TOKEN
    )
    assert_error(resp, 403, "repository_not_allowed")
    assert "github.repositories" in resp.json()["message"]


def test_404_unknown_source(bridge):
    resp = post(f"{bridge.url}/webhooks/nope", FLAT, secret=SECRET, token=TOKEN)
    assert_error(resp, 404, "unknown_source")


def test_unknown_path_and_method_answer_json(bridge):
    resp = requests.get(f"{bridge.url}/webhooks/wandb", timeout=10)
    assert resp.status_code == 405 and resp.json()["error"]
    resp = requests.get(f"{bridge.url}/nothing-here", timeout=10)
    assert resp.status_code == 404 and resp.json()["error"]


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
                    "X-Wandb-Signature": __import__("bridge.intake.signature").signature.sign(
                        SECRET, FLAT
                    ),
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
