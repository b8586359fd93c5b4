"""Replay over HTTP and from the command line: a dead delivery replayed by many requests
at once is queued once; the others change nothing and say so."""

from __future__ import annotations

import json
import threading
import time

import pytest
from werkzeug.test import TestResponse

from bridge.store import open_store
from bridge.store.models import Attempt
from tests.bridge.e2e.conftest import SECRET, TOKEN

ADMIN = "adm-e2e-replay-token-0042"


@pytest.fixture
def dead_delivery(start_bridge, store_url):
    """A bridge without a delivery worker, and an event whose one delivery is dead."""
    bridge = start_bridge(
        with_worker=False,
        env={"E2E_STORE": store_url, "E2E_ADMIN": ADMIN},
        store={"env": "E2E_STORE"},
        admin={"tokens": [{"env": "E2E_ADMIN"}]},
    )
    body = json.dumps({"event_type": "LINK_ARTIFACT", "artifact_version_string": "a/b/c:v1"})
    resp = bridge.post("/webhooks/wandb", body.encode(), secret=SECRET, token=TOKEN)
    assert resp.status_code == 202, resp.text
    event_id = resp.json["event_id"]
    store = open_store(store_url)
    try:  # a worker tried it and GitHub refused it for good
        now = time.time()
        (claimed,) = store.claim("w", 10, 60, now)
        refused = Attempt(1, now, now, 404, "dead", "Not Found", None, "w")
        store.finish(claimed, "w", refused, "dead", now)
        yield bridge, store, event_id, claimed.id
    finally:
        store.close()


def test_thirty_replays_at_once_queue_a_dead_delivery_once(dead_delivery):
    bridge, store, event_id, delivery_id = dead_delivery
    start = threading.Barrier(30)
    answers: list[TestResponse] = []

    def replay() -> None:
        client = bridge.app.test_client()  # one per thread, as a server's request threads
        start.wait()
        answers.append(
            client.post(
                f"/api/events/{event_id}/replay", headers={"Authorization": f"Bearer {ADMIN}"}
            )
        )

    threads = [threading.Thread(target=replay) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    queued = [a for a in answers if a.status_code == 202]
    assert [a.json["replayed"] for a in queued] == [[delivery_id]]
    others = [(a.status_code, a.json) for a in answers if a.status_code != 202]
    left_alone = {"event_id": event_id, "replayed": [], "pending": [delivery_id]}
    assert others == [(200, left_alone)] * 29
    (d,) = store.get_event(event_id).deliveries
    assert (d.state, [h.outcome for h in d.history]) == ("queued", ["dead"])

    out = bridge.cli("events", "replay", event_id)
    assert out.splitlines() == [
        "queued again: 0 deliveries",
        "left as they are, queued or in flight already: 1",
        delivery_id,
    ]
