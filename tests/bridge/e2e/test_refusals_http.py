"""Refusals only gunicorn can show: bodies streamed over a raw socket (50 MiB chunked,
or far past a small Content-Length) and malformed chunked framing. Every other refusal
of the intake checks, and hostile input, is in tests/bridge/flows/test_refusals.py.

Nothing is ever accepted by ``bridge``, so the module shares one bridge under gunicorn.
"""

from __future__ import annotations

import json
import socket

import pytest
import requests

from harness.processes import group_pids
from tests.bridge.e2e.conftest import ENV, SECRET, TOKEN, base_config
from tests.bridge.harness import BridgeProcess, events_in_store, post
from tests.fakes.github import FakeGitHub

FLAT = json.dumps(
    {"event_type": "ADD_ARTIFACT_ALIAS", "artifact_version_string": "a/b/c:v3", "alias": "x"}
).encode()
ADMIN_TOKEN = "adm-e2e-refusals-0123456789"


@pytest.fixture(scope="module")
def fake_github():
    with FakeGitHub(tokens=["unused"]) as gh:
        yield gh


@pytest.fixture(scope="module")
def bridge(tmp_path_factory, fake_github):
    workdir = tmp_path_factory.mktemp("refusals")
    cfg = base_config(workdir, fake_github.url, admin={"tokens": [{"env": "E2E_ADMIN"}]})
    proc = BridgeProcess(workdir, cfg, {**ENV, "E2E_ADMIN": ADMIN_TOKEN})
    proc.start()
    yield proc
    proc.stop()


def _raw_exchange(port: int, head: bytes, chunks, limit: int = 60 * 1024 * 1024) -> bytes:
    """Send ``head`` then body ``chunks`` until the server answers; return its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head)
        sent = 0
        answer = b""
        s.settimeout(0.001)
        for chunk in chunks:
            try:
                s.sendall(chunk)
            except OSError:
                break  # the server answered and closed: it did not read the rest
            sent += len(chunk)
            try:
                answer += s.recv(65536)
                if answer:
                    break
            except (TimeoutError, BlockingIOError):
                pass
            if sent > limit:
                break
        s.settimeout(20)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    return answer


def test_413_chunked_50mb_without_content_length_is_not_buffered(bridge):
    def chunks():
        piece = b"x" * 65536
        frame = b"%x\r\n" % len(piece) + piece + b"\r\n"
        for _ in range(800):  # 50 MiB
            yield frame
        yield b"0\r\n\r\n"

    head = (
        b"POST /webhooks/wandb HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    answer = _raw_exchange(bridge.port, head, chunks())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"payload_too_large"' in answer


def test_50mb_with_a_small_content_length_is_refused_without_reading_it(bridge):
    head = (
        b"POST /webhooks/wandb HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
    )
    answer = _raw_exchange(bridge.port, head, (b"x" * 65536 for _ in range(800)))
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]  # the 2 bytes are not signed
    assert b'"missing_signature"' in answer
    assert events_in_store(bridge) == 0


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)  # nothing more is coming: the server sees the end at once
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return answer


@pytest.fixture(scope="module")
def survivor(tmp_path_factory, fake_github):
    """A bridge of its own for the malformed bodies: each test then has it accept a
    webhook, which the module's ``bridge`` must never do."""
    workdir = tmp_path_factory.mktemp("survivor")
    proc = BridgeProcess(workdir, base_config(workdir, fake_github.url), ENV)
    proc.start()
    yield proc
    proc.stop()


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # not hex
        b"-1\r\n{}\r\n0\r\n\r\n",
        b"2\r\n{}XX0\r\n\r\n",  # no CRLF after the data
        b"ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
        b"5\r\n{}",  # ends early
    ],
)
def test_malformed_chunked_bodies_get_a_4xx_not_a_500_and_the_bridge_lives_on(survivor, body):
    assert survivor.proc is not None
    processes = group_pids(survivor.proc.pid)  # gunicorn's master, its workers, the worker
    logged = len(survivor.log())
    head = (
        b"POST /webhooks/wandb HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    answer = _raw(survivor.port, head + body)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    # gunicorn refuses some framing itself (400, or closes the connection); what reaches
    # the bridge is refused by it; never a 500
    assert status is None or 400 <= status < 500, answer[:300]
    # and no answer is no crash: the same processes go on accepting webhooks
    valid = json.dumps({**json.loads(FLAT), "malformed": body.decode()}).encode()
    accepted = post(f"{survivor.url}/webhooks/wandb", valid, secret=SECRET, token=TOKEN)
    assert accepted.status_code == 202, accepted.text
    assert requests.get(f"{survivor.url}/healthz", timeout=10).status_code == 200
    assert group_pids(survivor.proc.pid) == processes
    after = survivor.log()[logged:]
    assert "Traceback" not in after and "Worker exited" not in after, after
