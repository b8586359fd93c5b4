"""Delivery to the fake GitHub through its failures, by the bridge's own worker."""

from __future__ import annotations

import json
import time

import pytest

from tests.bridge.e2e.conftest import GH_TOKEN, SECRET, TOKEN
from tests.fakes.github import FakeGitHub
from tests.fakes.keys import KeyPair, new_key_pair


def flat(n: int = 0, **extra) -> bytes:
    body = {
        "event_type": "ADD_ARTIFACT_ALIAS",
        "alias": "production",
        "artifact_version_string": f"acme/model-registry/churn:v{n}",
        **extra,
    }
    return json.dumps(body).encode()


def send(bridge, body: bytes, path: str = "/webhooks/wandb") -> str:
    resp = bridge.post(path, body, secret=SECRET, token=TOKEN)
    assert resp.status_code == 202, resp.text
    return str(resp.json["event_id"])


def test_three_502s_then_204_is_one_dispatch(bridge, fake_github):
    fake_github.fail_next(502, count=3)
    event_id = send(bridge, flat())
    (sent,) = fake_github.wait_for_dispatches(1, timeout=30)
    assert sent.client_payload["bridge_event_id"] == event_id
    event = bridge.wait_for_state(event_id, "delivered")
    (d,) = event.deliveries
    assert [a.status for a in d.history] == [502, 502, 502, 204]
    assert [a.outcome for a in d.history] == ["retry", "retry", "retry", "delivered"]
    assert all(a.wait and a.wait > 0 for a in d.history[:3])
    assert len(fake_github.attempts_for("acme/churn-svc")) == 4
    assert len(fake_github.dispatches) == 1


def test_rate_limit_403_waits_for_the_reset(start_bridge, fake_github):
    # GitHub's reset is a lower bound as long as it is within delivery.max_backoff
    bridge = start_bridge(delivery={"max_backoff": "30s"})
    reset_at = int(time.time()) + 3
    fake_github.rate_limit_next(reset_at)
    event_id = send(bridge, flat())
    fake_github.wait_for_dispatches(1, timeout=30)
    first, second = fake_github.attempts_for("acme/churn-svc")
    assert first.status == 403 and second.status == 204
    assert second.time >= reset_at  # no retry before GitHub's reset time
    (d,) = bridge.wait_for_state(event_id, "delivered").deliveries
    assert d.history[0].wait >= reset_at - d.history[0].finished_at - 0.01
    assert "rate limit" in d.history[0].response


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "Not Found"),
        (422, "No more than 10 properties are allowed; 11 were supplied."),
        (401, "Bad credentials"),
    ],
)
def test_permanent_failures_go_dead_at_once_with_githubs_message(
    bridge, fake_github, status, message
):
    fake_github.fail_next(status, body={"message": message})
    event_id = send(bridge, flat())
    (d,) = bridge.wait_for_state(event_id, "dead").deliveries
    assert d.attempts == 1 and d.last_status == status
    assert message in d.last_error
    assert len(fake_github.attempts_for("acme/churn-svc")) == 1


def test_unknown_repository_is_dead_with_404(start_bridge):
    with FakeGitHub(tokens=[GH_TOKEN], repositories=["acme/eval"]) as gh:
        bridge = start_bridge(github={"api_url": gh.url})
        event_id = send(bridge, flat())
        (d,) = bridge.wait_for_state(event_id, "dead").deliveries
        assert d.last_status == 404 and "Not Found" in d.last_error


@pytest.fixture(scope="module")
def app_key() -> KeyPair:
    return new_key_pair()


def test_github_app_token_minted_once_reused_and_renewed(start_bridge, tmp_path, app_key):
    pem = tmp_path / "app.pem"
    pem.write_text(app_key.private_pem)
    with FakeGitHub(
        tokens=[],
        app_id=4242,
        app_public_key_pem=app_key.public_pem,
        installations={"acme/churn-svc": 77},
        token_ttl=4.0,
    ) as gh:
        bridge = start_bridge(
            github={
                "api_url": gh.url,
                "token": None,
                "app": {"id": 4242, "private_key": {"file": str(pem)}},
            },
        )
        send(bridge, flat(1))
        gh.wait_for_dispatches(1)
        send(bridge, flat(2))
        gh.wait_for_dispatches(2)
        assert len(gh.minted) == 1
        assert {d.token for d in gh.dispatches} == {gh.minted[0].token}
        while time.time() < gh.minted[0].expires_at + 0.2:
            time.sleep(0.1)
        send(bridge, flat(3))
        third = gh.wait_for_dispatches(3)[2]
        assert len(gh.minted) == 2 and third.token == gh.minted[1].token
        assert all(s.status != 401 for s in gh.requests)
        log = bridge.log()
        assert "delivery attempt" in log  # the log is there to be searched
        assert all(m.token not in log for m in gh.minted)
        assert app_key.private_pem.splitlines()[1] not in log


def test_dry_run_logs_the_dispatch_and_marks_delivered(start_bridge, fake_github):
    bridge = start_bridge(github={"dry_run": True, "token": None})
    event_id = send(bridge, flat())
    bridge.wait_for_state(event_id, "delivered")
    assert fake_github.requests == []
    (line,) = [line for line in bridge.log().splitlines() if "dry run: would POST" in line]
    assert "/repos/acme/churn-svc/dispatches" in line  # the request it would have made
    assert "bridge_event_id" in line and event_id in line
