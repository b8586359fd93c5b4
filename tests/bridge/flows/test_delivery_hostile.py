"""A GitHub that answers oddly: redirects, echoed credentials, absurd Retry-After, and
the same body meant for two repositories."""

from __future__ import annotations

import json
import time

from tests.bridge.e2e.conftest import GH_TOKEN, SECRET, TOKEN
from tests.bridge.flows.test_delivery import flat, send

ADMIN = "adm-e2e-hostile-9876543210"


def test_a_redirect_is_a_permanent_failure_naming_api_url_and_is_not_followed(bridge, fake_github):
    fake_github.fail_next(302, headers={"Location": f"{fake_github.url}/login"}, body="")
    event_id = send(bridge, flat())
    (d,) = bridge.wait_for_state(event_id, "dead").deliveries
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
    (d,) = bridge.wait_for_state(event_id, "dead").deliveries
    assert "***" in d.last_error
    shown = bridge.cli("events", "show", event_id)
    api = bridge.client.get(
        f"/api/events/{event_id}", headers={"Authorization": f"Bearer {ADMIN}"}
    ).text
    bridge.stop_worker()
    for where, text in (
        ("events show", shown),
        ("admin API", api),
        ("log", bridge.log()),
        ("store", bridge.db.read_bytes().decode("latin-1")),
    ):
        for secret in (GH_TOKEN, SECRET, "ghs_" + "A" * 36):
            assert secret not in text, f"{secret[:6]}... in the {where}"
    assert "Bad credentials" in shown  # GitHub's words stay; only the secret is gone
    assert "Bad credentials" in api


def test_an_absurd_retry_after_is_capped_at_max_backoff(bridge, fake_github):
    # base_config sets delivery.max_backoff to 1 s
    fake_github.fail_next(503, headers={"Retry-After": "100000000"})
    fake_github.secondary_rate_limit_next(100000000)
    started = time.monotonic()
    event_id = send(bridge, flat())
    fake_github.wait_for_event_ids([event_id], timeout=30)
    assert time.monotonic() - started < 20
    (d,) = bridge.wait_for_state(event_id, "delivered").deliveries
    assert d.attempts == 3
    assert bridge.client.get("/readyz").status_code == 200


def test_the_same_body_to_two_repositories_is_two_events(bridge, fake_github):
    body = json.dumps({"event_type": "DEPLOY", "client_payload": {"m": "a/b/c:v1"}}).encode()
    answers = [
        bridge.post(f"/repos/acme/{repo}/dispatches", body, secret=SECRET, token=TOKEN)
        for repo in ("svc-a", "svc-b", "svc-a")
    ]
    assert [a.status_code for a in answers] == [202, 202, 200]
    assert answers[2].json == {"duplicate_of": answers[0].json["event_id"]}
    sent = fake_github.wait_for_dispatches(2)
    assert sorted(s.repo for s in sent) == ["acme/svc-a", "acme/svc-b"]
    # and the drop-in path and /webhooks/<source> are two paths too
    flat_body = flat(7)
    assert bridge.post("/webhooks/wandb", flat_body, secret=SECRET, token=TOKEN).status_code == 202
    other = bridge.post("/webhooks/signed-only", flat_body, secret=SECRET, token=TOKEN)
    assert other.status_code == 401  # a different source: authenticated on its own


def test_readyz_is_503_when_the_database_file_is_gone_or_replaced(start_bridge):
    bridge = start_bridge(with_worker=False)
    assert bridge.client.get("/readyz").status_code == 200
    for suffix in ("", "-wal", "-shm"):
        bridge.db.with_name(bridge.db.name + suffix).unlink(missing_ok=True)
    assert bridge.client.get("/readyz").status_code == 503
    resp = bridge.post("/webhooks/wandb", flat(), secret=SECRET, token=TOKEN)
    assert resp.status_code == 503 and resp.json["error"] == "store_unavailable"
    bridge.db.write_bytes(b"not a database at all" * 100)
    assert bridge.client.get("/readyz").status_code == 503


def test_an_answer_is_redacted_before_it_is_cut(bridge, fake_github):
    # the message is cut to 1,000 characters: cut first, the token's start would survive
    for filler in (985, 990, 995):
        fake_github.fail_next(422, body={"message": "x" * filler + GH_TOKEN + " more"})
    ids = [send(bridge, flat(n)) for n in range(3)]
    for event_id in ids:
        (d,) = bridge.wait_for_state(event_id, "dead").deliveries
        assert d.last_status == 422 and GH_TOKEN[:4] not in d.last_error.replace("x", "")
        assert "***" in d.last_error
