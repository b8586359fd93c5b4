"""Delivery across processes: a bridge killed with -9 and started again, and the
``worker`` command delivering what ``serve --no-worker`` accepted. Delivery through
GitHub's failures is in tests/bridge/flows/test_delivery.py.

``send`` and ``wait_for_state`` serve the other tests of a bridge under gunicorn."""

from __future__ import annotations

import time

from bridge.store import open_store
from harness.processes import free_port
from tests.bridge.e2e.conftest import SECRET, TOKEN
from tests.bridge.flows.test_delivery import flat
from tests.bridge.harness import post

__all__ = ["flat", "send", "wait_for_state"]


def send(bridge, body: bytes, path: str = "/webhooks/wandb") -> str:
    resp = post(bridge.url + path, body, secret=SECRET, token=TOKEN)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["event_id"])


def wait_for_state(bridge, event_id: str, state: str, timeout: float = 30.0):
    store = open_store(f"sqlite:///{bridge.workdir}/bridge.db")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = store.get_event(event_id)
            if all(d.state == state for d in event.deliveries):
                return event
            time.sleep(0.05)
        raise AssertionError(f"not {state} in time: {event}")
    finally:
        store.close()


def test_kill9_right_after_202_while_github_is_down_then_restart(start_bridge, fake_github):
    # GitHub is down for the first bridge: nothing listens where it sends. (A fake that
    # answers 503 until the kill could take a request the killed process had sent while
    # it was down, late, after coming back: GitHub taking a dispatch whose sender died,
    # the one way "at least once" sends twice.)
    cfg = {"delivery": {"lease": "3s", "timeout": "2s", "initial_backoff": "100ms"}}
    unreachable = {"api_url": f"http://127.0.0.1:{free_port()}"}
    bridge = start_bridge(github=unreachable, **cfg)
    event_id = send(bridge, flat())
    bridge.kill9()
    restarted = start_bridge(name="restarted", **cfg)
    (sent,) = fake_github.wait_for_dispatches(1, timeout=30)
    assert sent.client_payload["bridge_event_id"] == event_id
    (d,) = wait_for_state(restarted, event_id, "delivered").deliveries
    assert d.state == "delivered"
    # delivered and released: nothing can send it again; GitHub saw it once
    assert len(fake_github.dispatches) == 1


def test_worker_command_delivers_what_serve_no_worker_accepted(start_bridge, fake_github, tmp_path):
    import os
    import subprocess
    import sys

    from tests.bridge.e2e.conftest import ENV

    bridge = start_bridge(with_worker=False)
    event_id = send(bridge, flat())
    time.sleep(0.5)
    assert fake_github.dispatches == []
    worker = subprocess.Popen(
        [sys.executable, "-m", "bridge", "worker", "--config", str(bridge.config_path)],
        env={**os.environ, **ENV},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        (sent,) = fake_github.wait_for_dispatches(1, timeout=30)
        assert sent.client_payload["bridge_event_id"] == event_id
    finally:
        worker.terminate()
        assert worker.wait(20) == 0
