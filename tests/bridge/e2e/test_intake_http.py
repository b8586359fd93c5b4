"""Intake where only gunicorn can show it: two of its worker processes at once. The rows
of the intake checks table are in tests/bridge/flows/test_intake.py."""

from __future__ import annotations

import threading

import requests

from bridge.signature import sign
from tests.bridge.e2e.conftest import SECRET, TOKEN
from tests.bridge.flows.test_intake import FLAT
from tests.bridge.harness import events_in_store


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
