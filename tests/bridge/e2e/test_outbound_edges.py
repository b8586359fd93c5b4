"""Receivers that answer slowly or without end, against the bridge under gunicorn: no
delivery is claimed again while an attempt of it runs, and a stuck notification
receiver never holds up GitHub dispatches."""

from __future__ import annotations

import itertools
import os
import signal
import time

from tests.bridge.e2e.test_delivery_http import flat, send, wait_for_state
from tests.bridge.harness import events_cli
from tests.fakes.hostile import Hostile


def test_a_github_that_trickles_its_204_never_gets_two_attempts_at_once(start_bridge):
    # The old per-read timeout (3 s here) never tripped on a byte every 0.3 s, so the
    # first attempt hung on while each 4 s lease ran out and the dispatch was sent again.
    with Hostile("trickle_headers", pace=0.3) as github:
        bridge = start_bridge(
            workers=1,
            github={"api_url": github.url},
            delivery={"lease": "4s", "timeout": "3s", "initial_backoff": "100ms"},
        )
        event_id = send(bridge, flat())
        seen = github.wait_for(3, timeout=60, closed=True)
        github.mode = "ok"  # now GitHub answers; the next attempt is delivered
        github.status = 204
        (d,) = wait_for_state(bridge, event_id, "delivered", timeout=60).deliveries
        shown = events_cli(bridge, "show", event_id)
        bridge.stop()
        seen = github.requests
    assert all(s.line.startswith("POST /repos/acme/churn-svc/dispatches") for s in seen)
    spans = sorted((s.started_at, s.closed_at or float("inf")) for s in seen)
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert first_end <= second_start, "a second attempt began while the first was open"
    assert d.attempts == len(seen)
    assert "no complete answer within 2 s" in shown  # half the lease, not delivery.timeout


def test_a_stuck_notification_receiver_does_not_hold_up_dispatches(start_bridge, fake_github):
    with Hostile("trickle_headers", pace=0.3) as receiver:
        bridge = start_bridge(
            workers=1,
            delivery={"concurrency": 1, "lease": "120s", "timeout": "60s"},
            notify=[{"name": "ops", "outcomes": ["delivered"], "webhook": {"url": receiver.url}}],
            runs={"follow": False},
        )
        first = send(bridge, flat(0))
        receiver.wait_for(1)  # the "delivered" notification now hangs in its one slot
        later = [send(bridge, flat(n)) for n in (1, 2, 3)]
        fake_github.wait_for_event_ids([first, *later], timeout=30)
        assert not any(s.closed_at for s in receiver.requests)  # still hanging all along
        bridge.stop()


def test_a_bridge_paused_past_the_deadline_keeps_the_answers_that_came_in_time(
    start_bridge, fake_github
):
    # A frozen process (SIGSTOP, a paused VM or container) wakes up past its deadlines with
    # GitHub's 204s waiting in the sockets: those answers count; cutting them would send
    # the dispatches again.
    bridge = start_bridge(workers=1, delivery={"lease": "8s", "timeout": "2s", "concurrency": 8})
    fake_github.delay_next(0.5, count=8)
    ids = [send(bridge, flat(n)) for n in range(8)]
    while len(fake_github.requests) < 8:  # every dispatch is at GitHub, answers on the way
        time.sleep(0.01)
    os.killpg(bridge.proc.pid, signal.SIGSTOP)
    time.sleep(3)  # past the 2 s deadline, within the lease
    os.killpg(bridge.proc.pid, signal.SIGCONT)
    for event_id in ids:
        (d,) = wait_for_state(bridge, event_id, "delivered").deliveries
        assert d.attempts == 1
    sent = [d.client_payload.get("bridge_event_id") for d in fake_github.dispatches]
    assert sorted(sent) == sorted(ids)
