"""The bridge under gunicorn on a PostgreSQL server that restarts, or whose postmaster is
killed, while webhooks arrive and dispatches are in flight.

Each test has a cluster of its own (``harness.pg.start_own``): restarting it harms no other
test. What must hold: every event the bridge accepted (202) is dispatched exactly once;
a request the outage refuses gets 503 ``store_unavailable``, never another error; once
the server is back, the next requests are accepted (no dead pooled connection is lent).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
import requests

from bridge.signature import sign
from bridge.store import open_store
from bridge.store.postgres import CHANNEL, POOL_WAIT
from harness import pg
from tests.bridge.conftest import postgres_unavailable
from tests.bridge.e2e.conftest import SECRET, TOKEN

pytestmark = pytest.mark.postgres

SENDERS = 4


@pytest.fixture
def own_postgres() -> Iterator[pg.PostgresServer]:
    server, reason = pg.start_own()
    if server is None:
        postgres_unavailable(reason)
    yield server
    server.close()


@dataclass
class Answer:
    sent_at: float  # time.monotonic() when the request went out
    status: int
    body: dict[str, object]


@dataclass
class Traffic:
    """Webhooks from ``SENDERS`` threads, each body different, until ``stop()``."""

    url: str
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Traffic:
        for n in range(SENDERS):
            t = threading.Thread(target=self._send, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _send(self, sender: int) -> None:
        with requests.Session() as s:
            i = 0
            while not self._stop.is_set():
                i += 1
                version = f"acme/reg/m:v{sender}-{i}"
                body = json.dumps({"event_type": "ADD_ARTIFACT_ALIAS", "alias": "production",
                                   "artifact_version_string": version}).encode()  # fmt: skip
                sent_at = time.monotonic()
                resp = s.post(
                    f"{self.url}/webhooks/wandb", data=body, timeout=60,
                    headers={"Content-Type": "application/json",
                             "Authorization": f"Bearer {TOKEN}",
                             "X-Wandb-Signature": sign(SECRET, body)},
                )  # fmt: skip
                with self._lock:
                    self.answers.append(Answer(sent_at, resp.status_code, resp.json()))

    def accepted_since(self, since: float) -> int:
        with self._lock:
            return sum(1 for a in self.answers if a.status == 202 and a.sent_at >= since)

    def wait_accepted_since(self, since: float, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.accepted_since(since) < n:
            assert time.monotonic() < deadline, f"fewer than {n} webhooks accepted"
            time.sleep(0.05)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for t in self._threads:
            t.join(60)
        return self.answers


def start_bridge_on(start_bridge, url: str):
    # Dispatches take a moment, so some are in flight (leased, not yet recorded) when
    # the server goes away.
    return start_bridge(
        env={"E2E_STORE": url},
        store={"env": "E2E_STORE"},
        delivery={"lease": "20s", "timeout": "5s", "initial_backoff": "100ms"},
    )


def assert_each_accepted_event_dispatched_once(answers, fake_github, url: str) -> None:
    refused = [a for a in answers if a.status != 202]
    for a in refused:  # the outage may refuse a request, and only so
        assert (a.status, a.body.get("error")) == (503, "store_unavailable"), a
    accepted = [str(a.body["event_id"]) for a in answers if a.status == 202]
    assert len(set(accepted)) == len(accepted)
    fake_github.wait_for_event_ids(accepted, timeout=60)
    store = open_store(url)
    try:  # every delivery recorded, so none can be leased out again later
        deadline = time.monotonic() + 60
        while store.stats().by_state.get("delivered", 0) < len(accepted):
            assert time.monotonic() < deadline, store.stats()
            time.sleep(0.1)
    finally:
        store.close()
    seen = Counter(d.client_payload["bridge_event_id"] for d in fake_github.dispatches)
    assert set(seen) == set(accepted), "an event was dispatched that was not accepted, or lost"
    doubled = {event_id: n for event_id, n in seen.items() if n > 1}
    assert not doubled, f"dispatched more than once: {doubled}"


def test_a_restart_of_postgres_mid_traffic_loses_and_doubles_nothing(
    start_bridge, fake_github, own_postgres
):
    url = own_postgres.new_database()
    bridge = start_bridge_on(start_bridge, url)
    fake_github.delay_next(0.2, count=100_000)
    traffic = Traffic(bridge.url).start()
    try:
        traffic.wait_accepted_since(0, 30)
        assert own_postgres.cluster is not None
        own_postgres.cluster.restart("fast")
        back = time.monotonic()
        traffic.wait_accepted_since(back, 40)
    finally:
        answers = traffic.stop()
    # the pool lent no connection of before the restart once the server was back
    after = [a for a in answers if a.sent_at >= back]
    assert [a for a in after if a.status != 202] == []
    assert_each_accepted_event_dispatched_once(answers, fake_github, url)


def test_after_a_restart_of_postgres_the_next_webhooks_are_accepted(
    start_bridge, fake_github, own_postgres
):
    url = own_postgres.new_database()
    bridge = start_bridge_on(start_bridge, url)
    traffic = Traffic(bridge.url).start()
    try:  # every process has pooled connections, idle once the traffic stops
        traffic.wait_accepted_since(0, 40)
    finally:
        answers = traffic.stop()
    assert own_postgres.cluster is not None
    own_postgres.cluster.restart("fast")
    with requests.Session() as s:
        for n in range(16):
            body = json.dumps({"event_type": "LINK_ARTIFACT", "n": n}).encode()
            sent_at = time.monotonic()
            resp = s.post(
                f"{bridge.url}/webhooks/wandb", data=body, timeout=60,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}",
                         "X-Wandb-Signature": sign(SECRET, body)},
            )  # fmt: skip
            assert resp.status_code == 202, resp.text  # no dead connection was lent
            answers.append(Answer(sent_at, resp.status_code, resp.json()))
    assert_each_accepted_event_dispatched_once(answers, fake_github, url)


def test_kill9_of_the_postmaster_mid_traffic_loses_and_doubles_nothing(
    start_bridge, fake_github, own_postgres
):
    url = own_postgres.new_database()
    bridge = start_bridge_on(start_bridge, url)
    fake_github.delay_next(0.2, count=100_000)
    cluster = own_postgres.cluster
    assert cluster is not None
    traffic = Traffic(bridge.url).start()
    try:
        traffic.wait_accepted_since(0, 30)
        cluster.kill_postmaster()
        # down longer than a transaction waits for a connection: requests are refused
        time.sleep(POOL_WAIT + 1.5)
        assert any(a.status == 503 for a in list(traffic.answers))
        cluster.start_again()
        back = time.monotonic()
        traffic.wait_accepted_since(back, 40)
    finally:
        answers = traffic.stop()
    after = [a for a in answers if a.sent_at >= back]
    assert [a for a in after if a.status != 202] == []
    assert_each_accepted_event_dispatched_once(answers, fake_github, url)


def test_wake_ups_reach_workers_again_after_a_restart(own_postgres):
    url = own_postgres.new_database()
    store = open_store(url)
    store.migrate()
    waiter = store.waiter()

    def woken_by_another_process() -> bool:
        """NOTIFY as another process's commit does, until a wait is woken (or 15 s)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with psycopg.connect(url, autocommit=True) as other:
                other.execute("SELECT pg_notify(%s, 'another-process')", (CHANNEL,))
            if waiter.wait(0.5):
                return True
        return False

    try:
        assert woken_by_another_process()
        assert own_postgres.cluster is not None
        own_postgres.cluster.restart("immediate")
        # The listener reconnects, LISTENs again, then rings once (a wake-up may have
        # been missed meanwhile); that ring or the NOTIFY's shows it listens again.
        assert woken_by_another_process()
    finally:
        waiter.close()
        store.close()
