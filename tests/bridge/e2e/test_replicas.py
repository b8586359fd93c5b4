"""Several bridge replicas (separate gunicorn processes) sharing one PostgreSQL store."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bridge.signature import sign
from bridge.store import open_store
from tests.bridge.e2e.conftest import SECRET, TOKEN

pytestmark = pytest.mark.postgres


def bodies(n: int, tag: str) -> list[bytes]:
    return [
        json.dumps({"event_type": "ADD_ARTIFACT_ALIAS", "alias": "production",
                    "artifact_version_string": f"acme/reg/churn:v{i}", "run": tag}).encode()
        for i in range(n)
    ]  # fmt: skip


def send_alternately(urls: list[str], payloads: list[bytes]) -> list[str]:
    """POST each body to the replicas in turn, from 8 client threads; the event ids."""

    def one(i_body: tuple[int, bytes]) -> str:
        i, body = i_body
        with requests.Session() as s:
            resp = s.post(
                f"{urls[i % len(urls)]}/webhooks/wandb", data=body, timeout=60,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}",
                         "X-Wandb-Signature": sign(SECRET, body)},
            )  # fmt: skip
        assert resp.status_code == 202, resp.text
        return str(resp.json()["event_id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, enumerate(payloads)))


def start_replicas(start_bridge, url: str, **over):
    env = {"E2E_STORE": url}
    return [
        start_bridge(name=f"replica-{n}", env=env, store={"env": "E2E_STORE"}, **over)
        for n in ("a", "b")
    ]


def test_two_replicas_deliver_2000_events_exactly_once(start_bridge, fake_github, postgres_url):
    replicas = start_replicas(start_bridge, postgres_url)
    event_ids = send_alternately([r.url for r in replicas], bodies(2000, "once"))
    assert len(set(event_ids)) == 2000
    fake_github.wait_for_dispatches(2000, timeout=240)
    time.sleep(1.0)  # a late double would show up here
    seen = Counter(d.client_payload["bridge_event_id"] for d in fake_github.dispatches)
    assert set(seen) == set(event_ids)
    assert max(seen.values()) == 1
    store = open_store(postgres_url)
    try:
        assert store.stats().by_state["delivered"] == 2000
    finally:
        store.close()
    # both replicas did part of the work
    for r in replicas:
        assert "outcome=delivered" in r.log()


def test_kill9_of_one_replica_the_other_takes_over_after_the_lease(
    start_bridge, fake_github, postgres_url
):
    lease = 4.0
    cfg = {"delivery": {"lease": f"{lease}s", "timeout": "3s", "initial_backoff": "100ms"}}
    a, b = start_replicas(start_bridge, postgres_url, **cfg)
    fake_github.delay_next(1.5, count=100_000)  # every dispatch is slow: leases are held
    event_ids = send_alternately([a.url, b.url], bodies(48, "kill"))
    deadline = time.monotonic() + 30
    while not fake_github.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    killed_at = time.time()
    a.kill9()
    # by event, not by count: a delivery in flight at the kill may arrive twice
    fake_github.wait_for_event_ids(event_ids, timeout=240)
    seen = Counter(d.client_payload["bridge_event_id"] for d in fake_github.dispatches)
    assert set(event_ids) <= set(seen), "an accepted event was lost"
    store = open_store(postgres_url)
    try:
        deadline = time.monotonic() + 60
        while store.stats().by_state["delivered"] < 48 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.stats().by_state["delivered"] == 48
        taken_over = []
        for event_id in event_ids:
            (d,) = store.get_event(event_id).deliveries
            outcomes = [h.outcome for h in d.history]
            if "abandoned" in outcomes:
                taken_over.append((event_id, d))
    finally:
        store.close()
    # the killed replica held some deliveries; the survivor took them over, after the lease
    assert taken_over, "the kill hit no delivery in flight"
    for _event_id, d in taken_over:
        abandoned = next(h for h in d.history if h.outcome == "abandoned")
        assert abandoned.started_at >= killed_at - 0.01
        assert d.history[-1].outcome == "delivered"
    # only deliveries that were in flight when the replica died can have gone out twice
    doubled = {eid for eid, n in seen.items() if n > 1}
    assert doubled <= {eid for eid, _ in taken_over}
