"""Every refusal of the intake checks, and hostile input, against one bridge.

Nothing here is ever accepted, so the module shares one bridge under gunicorn (starting
one per test cost a minute of set-up for a second of tests).
"""

from __future__ import annotations

import json
import socket

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bridge.e2e.conftest import ENV, SECRET, TOKEN, base_config
from tests.bridge.harness import BridgeProcess, assert_error, events_in_store, post
from tests.fakes.github import FakeGitHub

GITHUB_SHAPED = json.dumps(
    {"event_type": "BUILD_AND_DEPLOY", "client_payload": {"artifact_version_string": "a/b/c:v1"}}
).encode()
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


def test_413_by_content_length(bridge):
    big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    resp = post(f"{bridge.url}/webhooks/wandb", big, secret=SECRET, token=TOKEN)
    assert_error(resp, 413, "payload_too_large")


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


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_415(bridge, ctype):
    resp = post(
        f"{bridge.url}/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN, content_type=ctype
    )
    assert_error(resp, 415, "unsupported_media_type")


def test_401_missing_and_invalid_token(bridge):
    assert_error(post(f"{bridge.url}/webhooks/wandb", FLAT, secret=SECRET), 401, "missing_token")
    assert_error(
        post(f"{bridge.url}/webhooks/wandb", FLAT, secret=SECRET, token="nope"),
        401,
        "invalid_token",
    )
    resp = post(
        f"{bridge.url}/webhooks/wandb",
        FLAT,
        secret=SECRET,
        headers={"Authorization": f"Basic {TOKEN}"},
    )
    assert_error(resp, 401, "missing_token")


def test_401_missing_and_invalid_signature(bridge):
    assert_error(post(f"{bridge.url}/webhooks/wandb", FLAT, token=TOKEN), 401, "missing_signature")
    resp = post(
        f"{bridge.url}/webhooks/wandb",
        FLAT,
        token=TOKEN,
        headers={"X-Wandb-Signature": "bm90IGEgc2lnbmF0dXJl"},
    )
    assert_error(resp, 401, "invalid_signature")


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"str"', b"\xff\xfe", b""])
def test_400_invalid_json(bridge, body):
    resp = post(f"{bridge.url}/webhooks/wandb", body, secret=SECRET, token=TOKEN)
    assert_error(resp, 400, "invalid_json")


def _dispatch(event_type, payload) -> bytes:
    return json.dumps({"event_type": event_type, "client_payload": payload}).encode()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (_dispatch("E", {f"k{i}": i for i in range(11)}), "11 top-level keys"),
        (_dispatch("", {}), "1 to 100"),
        (_dispatch("E" * 101, {}), "1 to 100"),
        (_dispatch("E", [1]), "JSON object"),
        (_dispatch("E", {"blob": "x" * 65_000}), "64 KB"),
        (json.dumps({"client_payload": {}}).encode(), "event_type"),
    ],
)
def test_422_invalid_dispatch_before_anything_is_stored(bridge, fake_github, body, says):
    resp = post(f"{bridge.url}/repos/acme/churn-svc/dispatches", body, secret=SECRET, token=TOKEN)
    assert_error(resp, 422, "invalid_dispatch")
    assert says in resp.json()["message"]
    assert events_in_store(bridge) == 0
    assert fake_github.requests == []


def test_403_repository_not_allowed(bridge):
    resp = post(
        f"{bridge.url}/repos/evil/repo/dispatches", GITHUB_SHAPED, secret=SECRET, token=TOKEN
    )
    assert_error(resp, 403, "repository_not_allowed")
    assert "github.repositories" in resp.json()["message"]


def test_404_unknown_source(bridge):
    resp = post(f"{bridge.url}/webhooks/nope", FLAT, secret=SECRET, token=TOKEN)
    assert_error(resp, 404, "unknown_source")


def test_unknown_path_and_method_answer_json(bridge):
    resp = requests.get(f"{bridge.url}/webhooks/wandb", timeout=10)
    assert resp.status_code == 405 and resp.json()["error"]
    resp = requests.get(f"{bridge.url}/nothing-here", timeout=10)
    assert resp.status_code == 404 and resp.json()["error"]


# --- hostile input: each class at the HTTP boundary -------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"event_type": "X", "score": NaN}',
        b'{"event_type": "X", "score": Infinity}',
        b'{"event_type": "X", "score": -Infinity}',
        b'{"event_type": "X", "score": 1e400}',
        b'{"event_type": "X", "n": ' + b"9" * 400 + b"}",
        b'{"event_type": "X", "who": "\\ud800"}',
        b'{"event_type": "X", "\\udfff": 1}',
        b'{"event_type": "X", "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"event_type": "X", "bad": "\xc3\x28"}',
    ],
    ids=[
        "nan",
        "inf",
        "-inf",
        "1e400",
        "huge-int",
        "lone-surrogate",
        "surrogate-key",
        "deep",
        "bad-utf8",
    ],
)
def test_non_strict_json_is_refused_at_intake_never_accepted(bridge, body):
    resp = post(f"{bridge.url}/webhooks/wandb", body, secret=SECRET, token=TOKEN)
    assert_error(resp, 400, "invalid_json")
    assert events_in_store(bridge) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/repos/acme/%2e%2e/dispatches",
        "/repos/acme/%2E/dispatches",
        "/repos/acme/svc%23frag/dispatches",
        "/repos/acme/svc%3Fq=1/dispatches",
        "/repos/acme/svc%20x/dispatches",
        "/repos/acme/svc%0Ax/dispatches",
        "/repos/acme/%C3%A9/dispatches",
        "/repos/%2e%2e/svc/dispatches",
    ],
)
def test_drop_in_names_must_be_github_names_before_the_allow_list(bridge, fake_github, path):
    resp = post(bridge.url + path, GITHUB_SHAPED, secret=SECRET, token=TOKEN)
    assert_error(resp, 422, "invalid_repository")
    assert events_in_store(bridge) == 0 and fake_github.requests == []


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
def test_malformed_chunked_bodies_get_a_4xx_not_a_500(bridge, body):
    head = (
        b"POST /webhooks/wandb HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    answer = _raw(bridge.port, head + body)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    # gunicorn refuses some framing itself (400, or closes the connection); what reaches
    # the bridge is refused by it; never a 500
    assert status is None or 400 <= status < 500, answer[:300]


@pytest.mark.parametrize("limit", ["²", "١٢", "1e3", "-1", "0", "501", " 5", "5 ", "0x10", ""])
def test_admin_query_parameters_with_odd_digits_are_400(bridge, limit):
    resp = requests.get(
        f"{bridge.url}/api/events",
        params={"limit": limit},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert_error(resp, 400, "invalid_parameter")


def test_a_request_cannot_forge_a_log_line(bridge):
    forged = (
        "2026-01-01 00:00:00,000 INFO 1 bridge.delivery.worker: delivery attempt outcome=forged"
    )
    path = "/webhooks/x%0A" + requests.utils.quote(forged) + "%0D%0A" + "%1b[31m"
    post(bridge.url + path, FLAT, secret=SECRET, token=TOKEN)
    requests.get(bridge.url + "/nothing%0A" + requests.utils.quote(forged), timeout=10)
    bridge_log = bridge.log_path.read_text(errors="replace")
    for line in bridge_log.splitlines():
        assert not line.startswith("2026-01-01"), line
        assert "\x1b" not in line
    assert "outcome=forged" in bridge_log  # it is there, escaped, on the request's own line


_PATHS = st.sampled_from(
    [
        "/webhooks/wandb",
        "/webhooks/signed-only",
        "/repos/acme/svc/dispatches",
        "/api/events",
        "/readyz",
        "/metrics",
    ]
) | st.text(
    st.characters(codec="ascii", exclude_characters="\r\n #?"), min_size=1, max_size=40
).map(lambda t: "/" + t)
# Values HTTP allows in a header (visible ASCII, space, tab): bytes it forbids are refused
# by gunicorn itself, with its own 400 page, before the request reaches the bridge.
_SCALARS = st.none() | st.booleans() | st.floats() | st.integers() | st.text()
_HEADER_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"),
                         max_size=60).map(str.strip)  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH"]),
    path=_PATHS,
    query=st.text(st.characters(codec="ascii", exclude_characters="\r\n #"), max_size=30),
    content_type=st.sampled_from(["application/json", "application/x+json", "text/plain", ""]),
    auth=_HEADER_VALUES | st.just(f"Bearer {TOKEN}") | st.just(f"Bearer {ADMIN_TOKEN}"),
    signature=_HEADER_VALUES,
    body=st.binary(max_size=300)
    | st.one_of(_SCALARS, st.lists(_SCALARS, max_size=4), st.dictionaries(st.text(), _SCALARS)).map(
        lambda v: json.dumps(v).encode()
    ),
)
def test_no_request_however_malformed_gets_a_500(
    bridge, method, path, query, content_type, auth, signature, body
):
    headers = {"Authorization": auth, "X-Wandb-Signature": signature}
    if content_type:
        headers["Content-Type"] = content_type
    url = bridge.url + path + (f"?{query}" if query else "")
    resp = requests.request(method, url, data=body, headers=headers, timeout=30)
    assert resp.status_code < 500 or resp.status_code == 503, (resp.status_code, resp.text)
    if resp.status_code >= 400 and path != "/metrics":
        assert resp.headers.get("Content-Type", "").startswith("application/json"), (
            method,
            path,
            resp.status_code,
            resp.text[:200],
        )
        assert set(resp.json()) == {"error", "message"}
