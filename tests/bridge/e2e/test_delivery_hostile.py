"""A GitHub that answers oddly: redirects, echoed credentials, absurd Retry-After, and
the same body meant for two repositories. Against the bridge under gunicorn."""

from __future__ import annotations

import json
import time

import requests

from tests.bridge.e2e.conftest import GH_TOKEN, SECRET, TOKEN
from tests.bridge.e2e.test_delivery_http import flat, send, wait_for_state
from tests.bridge.harness import events_cli, post

ADMIN = "adm-e2e-hostile-9876543210"


def test_a_redirect_is_a_permanent_failure_naming_api_url_and_is_not_followed(bridge, fake_github):
    fake_github.fail_next(302, headers={"Location": f"{fake_github.url}/login"}, body="")
    event_id = send(bridge, flat())
    (d,) = wait_for_state(bridge, event_id, "dead").deliveries
    assert d.last_status == 302 and d.attempts == 1
    assert "github.api_url" in d.last_error and "/login" in d.last_error
    assert [r.method for r in fake_github.requests] == ["POST"]  # no GET to the login page


def test_credentials_github_echoes_back_are_redacted_everywhere(start_bridge, fake_github):
    bridge = start_bridge(admin={"tokens": [{"env": "E2E_ADMIN"}]}, env={"E2E_ADMIN": ADMIN})
    echoed = {
        "message": f"Bad credentials: Authorization: Bearer {GH_TOKEN}",
        "errors": [{"message": f"token {GH_TOKEN} / secret {SECRET} / ghs_{'A' * 36}"}],
    }
    fake_github.fail_next(500, body=echoed)
    fake_github.fail_next(422, body=echoed)
    event_id = send(bridge, flat())
    (d,) = wait_for_state(bridge, event_id, "dead").deliveries
    assert "***" in d.last_error
    shown = events_cli(bridge, "show", event_id)
    api = requests.get(
        f"{bridge.url}/api/events/{event_id}",
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=10,
    ).text
    bridge.stop()
    for where, text in (
        ("events show", shown),
        ("admin API", api),
        ("log", bridge.log_path.read_text()),
        ("store", (bridge.workdir / "bridge.db").read_bytes().decode("latin-1")),
    ):
        for secret in (GH_TOKEN, SECRET, "ghs_" + "A" * 36):
            assert secret not in text, f"{secret[:6]}... in the {where}"
    assert "Bad credentials" in shown  # GitHub's words stay; only the secret is gone


def test_an_absurd_retry_after_is_capped_at_max_backoff(bridge, fake_github):
    # base_config sets delivery.max_backoff to 1 s
    fake_github.fail_next(503, headers={"Retry-After": "100000000"})
    fake_github.secondary_rate_limit_next(100000000)
    started = time.monotonic()
    event_id = send(bridge, flat())
    fake_github.wait_for_event_ids([event_id], timeout=30)
    assert time.monotonic() - started < 20
    (d,) = wait_for_state(bridge, event_id, "delivered").deliveries
    assert d.attempts == 3
    ready = requests.get(bridge.url + "/readyz", timeout=10)
    assert ready.status_code == 200


def test_the_same_body_to_two_repositories_is_two_events(bridge, fake_github):
    body = json.dumps({"event_type": "DEPLOY", "client_payload": {"m": "a/b/c:v1"}}).encode()
    answers = [
        post(f"{bridge.url}/repos/acme/{repo}/dispatches", body, secret=SECRET, token=TOKEN)
        for repo in ("svc-a", "svc-b", "svc-a")
    ]
    assert [a.status_code for a in answers] == [202, 202, 200]
    assert answers[2].json() == {"duplicate_of": answers[0].json()["event_id"]}
    sent = fake_github.wait_for_dispatches(2)
    assert sorted(s.repo for s in sent) == ["acme/svc-a", "acme/svc-b"]
    # and the drop-in path and /webhooks/<source> are two paths too
    flat_body = flat(7)
    assert post(f"{bridge.url}/webhooks/wandb", flat_body, secret=SECRET, token=TOKEN).ok
    other = post(f"{bridge.url}/webhooks/signed-only", flat_body, secret=SECRET, token=TOKEN)
    assert other.status_code == 401  # a different source: authenticated on its own


def test_readyz_is_503_when_the_database_file_is_gone_or_replaced(start_bridge, tmp_path):
    bridge = start_bridge(with_worker=False)
    db = bridge.workdir / "bridge.db"
    assert requests.get(bridge.url + "/readyz", timeout=10).status_code == 200
    for suffix in ("", "-wal", "-shm"):
        (bridge.workdir / f"bridge.db{suffix}").unlink(missing_ok=True)
    assert requests.get(bridge.url + "/readyz", timeout=10).status_code == 503
    resp = post(f"{bridge.url}/webhooks/wandb", flat(), secret=SECRET, token=TOKEN)
    assert resp.status_code == 503 and resp.json()["error"] == "store_unavailable"
    db.write_bytes(b"not a database at all" * 100)
    assert requests.get(bridge.url + "/readyz", timeout=10).status_code == 503


def test_an_answer_is_redacted_before_it_is_cut(bridge, fake_github):
    # the message is cut to 1,000 characters: cut first, the token's start would survive
    for filler in (985, 990, 995):
        fake_github.fail_next(422, body={"message": "x" * filler + GH_TOKEN + " more"})
    ids = [send(bridge, flat(n)) for n in range(3)]
    for event_id in ids:
        (d,) = wait_for_state(bridge, event_id, "dead").deliveries
        assert d.last_status == 422 and GH_TOKEN[:4] not in d.last_error.replace("x", "")
        assert "***" in d.last_error
