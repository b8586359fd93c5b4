"""Fifty clients that trickle their headers or body do not starve the bridge."""

from __future__ import annotations

import socket
import threading
import time

import requests

from tests.bridge.e2e.conftest import SECRET, TOKEN
from tests.bridge.e2e.test_delivery_http import flat
from tests.bridge.harness import post

SLOW = 50
HEAD = b"POST /webhooks/wandb HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def _drip(s: socket.socket, data: bytes, stop: threading.Event) -> None:
    """Send ``data`` a byte a second until done, stopped, or refused."""
    for byte in data:
        if stop.wait(1.0):
            return
        try:
            s.sendall(bytes([byte]))
        except OSError:
            return  # the server gave up on us: fine


def test_slow_clients_do_not_stop_health_checks_or_webhooks(bridge, fake_github):
    stop, opened, threads = threading.Event(), [], []
    for i in range(SLOW):
        s = socket.create_connection(("127.0.0.1", bridge.port), timeout=10)
        opened.append(s)
        if i % 2:  # the headers in whole, then the body a byte at a time
            s.sendall(HEAD + b"Content-Length: 1000\r\n\r\n{")
            data = b" " * 200
        else:  # the headers themselves a byte at a time
            data = HEAD * 5
        t = threading.Thread(target=_drip, args=(s, data, stop), daemon=True)
        t.start()
        threads.append(t)
    try:
        time.sleep(3)  # every slow connection is open and mid-request
        accepted = []
        for n in range(10):
            health = requests.get(bridge.url + "/healthz", timeout=5)
            assert health.status_code == 200
            resp = post(f"{bridge.url}/webhooks/wandb", flat(1000 + n), secret=SECRET, token=TOKEN)
            assert resp.status_code == 202, resp.text
            accepted.append(resp.json()["event_id"])
            time.sleep(0.5)
        fake_github.wait_for_event_ids(accepted, timeout=30)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        for s in opened:
            s.close()
