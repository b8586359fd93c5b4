"""What outbound HTTP takes from the environment: the proxy and CA bundle settings, as
curl does (read once per origin), and never ``~/.netrc``, which requests would let
replace the credentials the bridge sends."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bridge import http
from bridge.errors import OutboundError
from harness.loopback import LoopbackServer

SETTINGS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE", "NETRC")  # fmt: skip


@pytest.fixture
def environ(monkeypatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean slate: none of the settings, and nothing remembered from earlier tests."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    http.environment.cache_clear()
    yield monkeypatch
    http.environment.cache_clear()


class Recorder:
    """A server that notes each request's Host and Authorization, and answers 200."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, environ, start_response):
        self.seen.append((environ.get("HTTP_HOST", ""), environ.get("HTTP_AUTHORIZATION")))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]


def test_a_netrc_entry_never_replaces_the_credentials_the_bridge_sends(environ, tmp_path):
    app = Recorder()
    with LoopbackServer(app, "receiver") as server:
        netrc = tmp_path / "netrc"
        netrc.write_text("machine 127.0.0.1\nlogin someone\npassword from-netrc\n")
        netrc.chmod(0o600)
        environ.setenv("NETRC", str(netrc))
        session = http.new_session()
        headers = {"Authorization": "Bearer from-config"}
        assert http.fetch(session, "POST", server.url, timeout=10, headers=headers).status == 200
        assert http.fetch(session, "GET", server.url, timeout=10).status == 200
    assert [auth for _, auth in app.seen] == ["Bearer from-config", None]


class Proxy(BaseHTTPRequestHandler):
    """A forward proxy that answers every request itself, noting its request line."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def test_requests_go_through_the_environments_proxy_except_for_no_proxy(environ):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Proxy.seen = []
    try:
        environ.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_port}")
        session = http.new_session()
        # a name that resolves nowhere: only the proxy can answer for it
        reply = http.fetch(session, "GET", "http://github.invalid/zen", timeout=10)
        assert reply.status == 200 and reply.body == b"ok"
        assert Proxy.seen == ["http://github.invalid/zen"]
        environ.setenv("NO_PROXY", "github.invalid")
        http.environment.cache_clear()  # read once per origin: a new process would see it
        with pytest.raises(OutboundError):
            http.fetch(session, "GET", "http://github.invalid/zen", timeout=10)
        assert len(Proxy.seen) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_the_environment_is_read_once_per_origin_and_names_the_ca_bundle(environ, tmp_path):
    bundle = tmp_path / "ca.pem"
    environ.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    environ.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    environ.setenv("NO_PROXY", "internal.example")
    proxies, verify = http.environment("https://api.github.com")
    assert proxies["https"] == "http://proxy.example:3128" and verify == str(bundle)
    assert http.environment("https://internal.example") == ({}, str(bundle))
    environ.setenv("HTTPS_PROXY", "http://other.example:3128")  # after the first request
    assert http.environment("https://api.github.com")[0]["https"] == "http://proxy.example:3128"


class Socks5(socketserver.ThreadingTCPServer):
    """A SOCKS5 proxy that answers every request itself, after noting the host asked
    for: with ``trickle``, an answer that never ends, a byte every 0.2 s."""

    daemon_threads = True

    def __init__(self, trickle: bool = False) -> None:
        self.hosts: list[bytes] = []
        self.trickle = trickle
        super().__init__(("127.0.0.1", 0), _Socks5Handler)


class _Socks5Handler(socketserver.BaseRequestHandler):
    server: Socks5

    def handle(self) -> None:
        sock = self.request
        _, methods = sock.recv(2)
        sock.recv(methods)
        sock.sendall(b"\x05\x00")  # no authentication
        head = sock.recv(4)  # version, CONNECT, reserved, address type
        # a name (socks5h: the proxy resolves it), or an IPv4 or IPv6 address
        size = sock.recv(1)[0] if head[3] == 3 else {1: 4, 4: 16}[head[3]]
        host = sock.recv(size)
        sock.recv(2)  # port
        self.server.hosts.append(host)
        sock.sendall(b"\x05\x00\x00\x01" + bytes(6))
        sock.recv(65536)  # the HTTP request
        if not self.server.trickle:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return
        with suppress(OSError):
            sock.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(300):
                time.sleep(0.2)
                sock.sendall(b"a")


@pytest.mark.parametrize("trickle", [False, True])
def test_a_socks_proxy_carries_requests_and_their_deadline(environ, trickle):
    server = Socks5(trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        environ.setenv("HTTP_PROXY", f"socks5h://127.0.0.1:{server.server_address[1]}")
        session = http.new_session()
        started = time.monotonic()
        if not trickle:
            reply = http.fetch(session, "GET", "http://github.invalid/zen", timeout=10)
            assert reply.status == 200 and reply.body == b"ok"
        else:  # each byte comes within the read timeout: only the total deadline ends it
            with pytest.raises(OutboundError) as caught:
                http.fetch(session, "GET", "http://github.invalid/zen", timeout=1.0)
            assert caught.value.timed_out and time.monotonic() - started < 30
        assert server.hosts == [b"github.invalid"]
    finally:
        server.shutdown()
        server.server_close()
