"""A bridge under gunicorn frozen by a signal past its deadlines keeps the answers that
came in time. Receivers that answer slowly or without end are in
tests/bridge/flows/test_outbound_edges.py."""

from __future__ import annotations

import os
import signal
import time

from tests.bridge.e2e.test_delivery_http import flat, send, wait_for_state


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
