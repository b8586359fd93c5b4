"""Requests gunicorn refuses before the bridge sees them still get the JSON error shape."""

from __future__ import annotations

import json
import socket

import pytest

from tests.bridge.e2e.conftest import ENV, base_config
from tests.bridge.harness import BridgeProcess
from tests.fakes.github import FakeGitHub

SECRET_LOOKING = "Bearer tok-" + "s" * 40


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("unparseable")
    with FakeGitHub(tokens=["unused"]) as gh:
        proc = BridgeProcess(workdir, base_config(workdir, gh.url), ENV, workers=1)
        proc.start()
        yield proc
        proc.stop()


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /healthz?" + b"q" * 9 * 1024 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri"),
        (
            b"POST /webhooks/wandb HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + SECRET_LOOKING.encode()
            + b"x" * 9 * 1024
            + b"\r\n\r\n",
            431,
            "header",
        ),
        (
            b"POST /webhooks/wandb HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + SECRET_LOOKING.encode()
            + b"\x01\r\n\r\n",
            400,
            "bad_request",
        ),
        (b"GET / HTTP/1.1 extra\r\n\r\n", 400, "bad_request"),
    ],
)
def test_what_gunicorn_cannot_parse_is_a_json_4xx(bridge, request_bytes, status, code):
    got, headers, body = exchange(bridge.port, request_bytes)
    assert got == status, body[:300]
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert set(answer) == {"error", "message"} and code in answer["error"]
    assert "tok-sss" not in body.decode()


def test_the_log_line_does_not_quote_the_request(bridge):
    exchange(
        bridge.port,
        b"GET / HTTP/1.1\r\nAuthorization: " + SECRET_LOOKING.encode() + b"\x01\r\n\r\n",
    )
    log = bridge.log_path.read_text(errors="replace")
    assert "not valid HTTP" in log and "tok-sss" not in log
