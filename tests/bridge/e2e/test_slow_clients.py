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


def _trickle(port: int, data: bytes, stop: threading.Event, opened: list[socket.socket]) -> None:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    opened.append(s)
    for byte in data:
        if stop.wait(1.0):
            return
        try:
            s.sendall(bytes([byte]))
        except OSError:
            return  # the server gave up on us: fine


def test_slow_clients_do_not_stop_health_checks_or_webhooks(bridge, fake_github):
    header_only = b"POST /webhooks/wandb HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    body_short = (
        b"POST /webhooks/wandb HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    stop, opened = threading.Event(), []
    threads = []
    for i in range(SLOW):
        if i % 2:  # half send their headers in whole and their body a byte at a time
            data = body_short + b" " * 200
            s = socket.create_connection(("127.0.0.1", bridge.port), timeout=10)
            s.sendall(body_short)
            opened.append(s)
            data = b" " * 200
            t = threading.Thread(target=_drip, args=(s, data, stop), daemon=True)
        else:
            t = threading.Thread(
                target=_trickle, args=(bridge.port, header_only * 5, stop, opened), daemon=True
            )
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


def _drip(s: socket.socket, data: bytes, stop: threading.Event) -> None:
    for byte in data:
        if stop.wait(1.0):
            return
        try:
            s.sendall(bytes([byte]))
        except OSError:
            return
