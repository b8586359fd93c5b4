"""``serve`` closes a kept-alive connection after ``KEEPALIVE_REQUESTS`` requests (the
last answered ``Connection: close``): a client's few long-lived connections are accepted
again, now and then, by whichever process has time for them."""

from __future__ import annotations

import http.client

from bridge.gunicorn_worker import KEEPALIVE_REQUESTS
from harness.bridge import BridgeProcess


def test_a_connection_is_closed_after_so_many_requests(bridge: BridgeProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", bridge.port, timeout=10)
    try:
        said = []
        for _ in range(KEEPALIVE_REQUESTS):
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
            said.append(resp.getheader("Connection"))
            if resp.will_close:
                break
        assert said == ["keep-alive"] * (KEEPALIVE_REQUESTS - 1) + ["close"]
        conn.request("GET", "/healthz")  # on a new connection
        assert conn.getresponse().status == 200
    finally:
        conn.close()
