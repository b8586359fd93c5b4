"""Receivers that answer slowly or without end: no delivery is claimed again while an
attempt of it runs, and a stuck notification receiver never holds up GitHub dispatches.
(A bridge frozen past its deadlines, by a signal, is in tests/bridge/e2e.)"""

from __future__ import annotations

import itertools

from tests.bridge.flows.test_delivery import flat, send
from tests.fakes.hostile import Hostile


def test_a_github_that_trickles_its_204_never_gets_two_attempts_at_once(start_bridge):
    # The old per-read timeout (3 s here) never tripped on a byte every 0.3 s, so the
    # first attempt hung on while each 4 s lease ran out and the dispatch was sent again.
    with Hostile("trickle_headers", pace=0.3) as github:
        bridge = start_bridge(
            github={"api_url": github.url},
            delivery={"lease": "4s", "timeout": "3s", "initial_backoff": "100ms"},
            runs={"follow": False},  # only dispatches reach this GitHub
        )
        event_id = send(bridge, flat())
        seen = github.wait_for(3, timeout=60, closed=True)
        github.mode = "ok"  # now GitHub answers; the next attempt is delivered
        github.status = 204
        (d,) = bridge.wait_for_state(event_id, "delivered", timeout=60).deliveries
        shown = bridge.cli("events", "show", event_id)
        bridge.stop_worker()
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
            delivery={"concurrency": 1, "lease": "120s", "timeout": "60s"},
            notify=[{"name": "ops", "outcomes": ["delivered"], "webhook": {"url": receiver.url}}],
            runs={"follow": False},
        )
        first = send(bridge, flat(0))
        receiver.wait_for(1)  # the "delivered" notification now hangs in its one slot
        later = [send(bridge, flat(n)) for n in (1, 2, 3)]
        fake_github.wait_for_event_ids([first, *later], timeout=30)
        assert not any(s.closed_at for s in receiver.requests)  # still hanging all along
    # the receiver gone, its attempt ends, and the worker stops without waiting it out
