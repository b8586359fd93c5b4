"""Every refusal of the intake checks, and hostile input, against one bridge.

Nothing here is ever accepted, so the module shares one bridge. What gunicorn decides
(its parser, its framing of a streamed body) is in ``tests/bridge/e2e``.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.console.security import in_console
from tests.bridge.e2e.conftest import SECRET, TOKEN
from tests.bridge.flows.inprocess import assert_error, open_bridge
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
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
        bridge = open_bridge(
            tmp_path_factory.mktemp("refusals"),
            fake_github.url,
            {"E2E_ADMIN": ADMIN_TOKEN},
            admin={"tokens": [{"env": "E2E_ADMIN"}]},
        )
        bridge.start_worker()
        yield bridge
        bridge.close()


def test_413_by_content_length(bridge):
    big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    resp = bridge.post("/webhooks/wandb", big, secret=SECRET, token=TOKEN)
    assert_error(resp, 413, "payload_too_large")


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_415(bridge, ctype):
    resp = bridge.post("/webhooks/wandb", FLAT, secret=SECRET, token=TOKEN, content_type=ctype)
    assert_error(resp, 415, "unsupported_media_type")


def test_401_missing_and_invalid_token(bridge):
    assert_error(bridge.post("/webhooks/wandb", FLAT, secret=SECRET), 401, "missing_token")
    assert_error(
        bridge.post("/webhooks/wandb", FLAT, secret=SECRET, token="nope"),
        401,
        "invalid_token",
    )
    resp = bridge.post(
        "/webhooks/wandb",
        FLAT,
        secret=SECRET,
        headers={"Authorization": f"Basic {TOKEN}"},
    )
    assert_error(resp, 401, "missing_token")


def test_401_missing_and_invalid_signature(bridge):
    assert_error(bridge.post("/webhooks/wandb", FLAT, token=TOKEN), 401, "missing_signature")
    resp = bridge.post(
        "/webhooks/wandb",
        FLAT,
        token=TOKEN,
        headers={"X-Wandb-Signature": "bm90IGEgc2lnbmF0dXJl"},
    )
    assert_error(resp, 401, "invalid_signature")


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"str"', b"\xff\xfe", b""])
def test_400_invalid_json(bridge, body):
    resp = bridge.post("/webhooks/wandb", body, secret=SECRET, token=TOKEN)
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
    resp = bridge.post("/repos/acme/churn-svc/dispatches", body, secret=SECRET, token=TOKEN)
    assert_error(resp, 422, "invalid_dispatch")
    assert says in resp.json["message"]
    assert bridge.events_in_store() == 0
    assert fake_github.requests == []


def test_403_repository_not_allowed(bridge):
    resp = bridge.post("/repos/evil/repo/dispatches", GITHUB_SHAPED, secret=SECRET, token=TOKEN)
    assert_error(resp, 403, "repository_not_allowed")
    assert "github.repositories" in resp.json["message"]


def test_404_unknown_source(bridge):
    resp = bridge.post("/webhooks/nope", FLAT, secret=SECRET, token=TOKEN)
    assert_error(resp, 404, "unknown_source")


def test_unknown_path_and_method_answer_json(bridge):
    resp = bridge.client.get("/webhooks/wandb")
    assert resp.status_code == 405 and resp.json["error"]
    resp = bridge.client.get("/nothing-here")
    assert resp.status_code == 404 and resp.json["error"]


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
    resp = bridge.post("/webhooks/wandb", body, secret=SECRET, token=TOKEN)
    assert_error(resp, 400, "invalid_json")
    assert bridge.events_in_store() == 0


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
    resp = bridge.post(path, GITHUB_SHAPED, secret=SECRET, token=TOKEN)
    assert_error(resp, 422, "invalid_repository")
    assert bridge.events_in_store() == 0 and fake_github.requests == []


@pytest.mark.parametrize("limit", ["²", "١٢", "1e3", "-1", "0", "501", " 5", "5 ", "0x10", ""])
def test_admin_query_parameters_with_odd_digits_are_400(bridge, limit):
    resp = bridge.client.get(
        "/api/events",
        query_string={"limit": limit},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert_error(resp, 400, "invalid_parameter")


def test_a_request_cannot_forge_a_log_line(bridge):
    forged = (
        "2026-01-01 00:00:00,000 INFO 1 bridge.delivery.worker: delivery attempt outcome=forged"
    )
    path = "/webhooks/x%0A" + quote(forged) + "%0D%0A" + "%1b[31m"
    bridge.post(path, FLAT, secret=SECRET, token=TOKEN)
    bridge.client.get("/nothing%0A" + quote(forged))
    bridge_log = bridge.log()
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
# by gunicorn itself, with its own 400 page, before the request reaches the bridge
# (tests/bridge/e2e/test_unparseable_http.py).
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
    url = path + (f"?{query}" if query else "")
    resp = bridge.client.open(url, method=method, data=body, headers=headers)
    assert resp.status_code < 500 or resp.status_code == 503, (resp.status_code, resp.text)
    # the console (/console) answers people, with HTML pages; everything else JSON
    if resp.status_code >= 400 and path != "/metrics" and not in_console(path):
        assert resp.headers.get("Content-Type", "").startswith("application/json"), (
            method,
            path,
            resp.status_code,
            resp.text[:200],
        )
        assert set(resp.json) == {"error", "message"}
