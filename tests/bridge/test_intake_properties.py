"""Property-based tests of the intake: whatever arrives, no 5xx and no 2xx unsigned.

Most examples go through Flask's test client (the same app code, fast); a smaller run
goes over HTTP to the bridge under gunicorn, headers and bytes as a client sends them.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.app import create_app
from bridge.config.load import parse_config
from bridge.signature import sign

SECRETS = ["prop-secret-one", "prop-secret-two"]
TOKEN = "prop-token-xyz"
CONFIG = {
    "sources": {
        "wandb": {"secrets": SECRETS, "tokens": [TOKEN]},
        "signed": {"secrets": ["prop-secret-three"]},
    },
    "github": {"dry_run": True, "repositories": ["acme/*"]},
    "routes": [{"dispatch": {"repository": "acme/x", "client_payload": {"m": "${alias}"}}}],
    "max_body_bytes": 4096,
}
ALL_SECRETS = [*SECRETS, "prop-secret-three"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=12)
    ),
    max_leaves=30,
)
dispatch_like = st.fixed_dictionaries(
    {"event_type": st.text(max_size=120) | st.integers()},
    optional={"client_payload": json_values, "alias": st.text(max_size=10)},
)


@st.composite
def bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["binary", "json", "dispatch", "encoded"]))
    if kind == "binary":
        return draw(st.binary(max_size=600))
    value = draw(dispatch_like if kind == "dispatch" else json_values)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    encoding = (
        draw(st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1"]))
        if kind == "encoded"
        else "utf-8"
    )
    return text.encode(encoding, errors="replace")


header_text = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=80
)


@st.composite
def requests_(draw) -> tuple[str, dict[str, str], bytes]:
    body = draw(bodies())
    path = draw(
        st.sampled_from(
            [
                "/webhooks/wandb",
                "/webhooks/signed",
                "/webhooks/other",
                "/repos/acme/x/dispatches",
                "/repos/evil/y/dispatches",
            ]
        )
    )
    headers: dict[str, str] = {}
    ctype = draw(
        st.sampled_from(
            [
                "application/json",
                "application/json; charset=utf-16",
                "application/vnd.x+json",
                "text/plain",
                None,
            ]
        )
        | header_text
    )
    if ctype is not None:
        headers["Content-Type"] = ctype
    auth = draw(st.sampled_from(["valid", "random", "none", "basic"]))
    if auth == "valid":
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif auth == "random":
        headers["Authorization"] = draw(header_text)
    elif auth == "basic":
        headers["Authorization"] = f"Basic {TOKEN}"
    sig = draw(st.sampled_from(["valid", "other-body", "random", "none", "padded"]))
    secret = draw(st.sampled_from(ALL_SECRETS))
    if sig == "valid":
        headers["X-Wandb-Signature"] = sign(secret, body)
    elif sig == "other-body":
        headers["X-Wandb-Signature"] = sign(secret, body + b" ")
    elif sig == "random":
        headers["X-Wandb-Signature"] = draw(header_text)
    elif sig == "padded":
        headers["X-Wandb-Signature"] = " " + sign(secret, body) + "\t"
    return path, headers, body


def correctly_signed(headers: dict[str, str], body: bytes) -> bool:
    given_sig = headers.get("X-Wandb-Signature", "").strip()
    return any(given_sig == sign(s, body) for s in ALL_SECRETS)


def check(status: int, answer: bytes, headers: dict[str, str], body: bytes) -> None:
    assert status < 500, answer
    if 200 <= status < 300:
        assert correctly_signed(headers, body), (status, answer)
    else:
        data = json.loads(answer)
        assert set(data) == {"error", "message"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    path = tmp_path_factory.mktemp("props") / "bridge.db"
    config = parse_config({**CONFIG, "store": f"sqlite:///{path}"}, {})
    app = create_app(config)
    yield app.test_client()
    app.extensions["wandb_bridge"].store.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests_())
def test_app_never_5xx_never_accepts_unsigned(client, req):
    path, headers, body = req
    resp = client.post(path, data=body, headers=headers)
    check(resp.status_code, resp.data, headers, body)


@pytest.fixture(scope="module")
def live_bridge(tmp_path_factory):
    from tests.bridge.harness import BridgeProcess

    workdir = tmp_path_factory.mktemp("props-live")
    proc = BridgeProcess(
        workdir, {**CONFIG, "store": f"sqlite:///{workdir}/bridge.db"}, {}, workers=2
    )
    proc.start()
    yield proc
    proc.stop()


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(requests_())
def test_gunicorn_never_5xx_never_accepts_unsigned(live_bridge, req):
    import http.client

    path, headers, body = req
    conn = http.client.HTTPConnection("127.0.0.1", live_bridge.port, timeout=30)
    try:  # http.client sends header bytes as given (requests refuses odd whitespace)
        conn.putrequest("POST", path)
        for name, value in headers.items():
            conn.putheader(name, value.encode("latin-1"))
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        check(resp.status, resp.read(), headers, body)
    finally:
        conn.close()
