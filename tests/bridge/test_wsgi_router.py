"""The intake router in front of Flask: it takes the canonical paths of Flask's intake
rules (and nothing Flask would route elsewhere), and answers them as the Flask views do."""

from __future__ import annotations

import io
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.test import Client

from bridge.accept import Endpoint
from bridge.app import create_app
from bridge.config_loader import parse_config
from bridge.signature import sign
from bridge.wsgi import IntakeRouter, match

SECRET = "router-test-secret"
TOKEN = "router-test-token"
CONFIG = {
    "sources": {"wandb": {"secrets": [SECRET], "tokens": [TOKEN]}},
    "github": {"dry_run": True, "repositories": ["acme/*"]},
    "routes": [{"dispatch": {"repository": "acme/x"}}],
    "max_body_bytes": 2048,
}


def _app(directory):
    return create_app(parse_config({**CONFIG, "store": f"sqlite:///{directory}/b.db"}, {}))


@pytest.fixture
def app(tmp_path):
    app = _app(tmp_path)
    yield app
    app.extensions["wandb_bridge"].store.close()


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory):
    app = _app(tmp_path_factory.mktemp("router"))
    yield app
    app.extensions["wandb_bridge"].store.close()


def _flask_endpoint(app, path: str):
    """What Flask's URL map makes of ``POST path``: (endpoint, args) or None."""
    try:
        return app.url_map.bind("bridge.test").match(path, method="POST")
    except RequestRedirect:
        return None
    except HTTPException:
        return None


pieces = st.sampled_from(
    ["", "webhooks", "repos", "dispatches", "wandb", "acme", "x y", "é", "%41", ".", "a:b"]
)


@given(st.lists(pieces, max_size=6), st.booleans())
def test_the_router_takes_the_paths_of_flasks_intake_rules(shared_app, parts, trailing):
    """Whatever the router takes, Flask would route to the same endpoint with the same
    arguments; what it leaves to Flask and Flask routes there is only a spelling with
    repeated slashes (answered by the same accept function through the Flask view)."""
    path = "/" + "/".join(parts) + ("/" if trailing else "")
    wsgi_path = path.encode("utf-8").decode("latin-1")  # as a WSGI server passes it
    found = _flask_endpoint(shared_app, path)
    ours = match(wsgi_path)
    intake = found is not None and found[0] in ("intake.webhook", "intake.passthrough")
    if ours is None:
        assert not intake or "//" in path, path
        return
    assert intake, path
    endpoint, args = found
    if endpoint == "intake.webhook":
        assert ours == Endpoint(source=args["source"]), path
    else:
        assert ours == Endpoint(repository=f"{args['owner']}/{args['repo']}"), path


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/webhooks/wandb", Endpoint(source="wandb")),
        ("/webhooks/\xc3\xa9", Endpoint(source="é")),  # WSGI's latin-1 text of UTF-8 bytes
        ("/repos/acme/churn-svc/dispatches", Endpoint(repository="acme/churn-svc")),
        ("/webhooks/", None),
        ("/webhooks/a/b", None),
        ("/repos/acme/dispatches", None),
        ("/repos/a/b/c/dispatches", None),
    ],
)
def test_the_canonical_intake_paths_are_the_routers(path, endpoint):
    assert match(path) == endpoint


JSON, VND = "application/json", "application/vnd.x+json"


def _requests():
    good = json.dumps({"event_type": "ADD_ARTIFACT_ALIAS", "alias": "production"}).encode()
    ok = {"Authorization": f"Bearer {TOKEN}", "X-Wandb-Signature": sign(SECRET, good)}
    passthrough = b'{"event_type": "E", "client_payload": {"a": 1}}'
    ok_passthrough = {**ok, "X-Wandb-Signature": sign(SECRET, passthrough)}
    return [
        ("/webhooks/wandb", good, ok, "application/json"),
        ("/webhooks/wandb", good, ok, "application/json"),  # the duplicate
        ("/webhooks/nope", good, ok, "application/json"),
        ("/webhooks/wandb", good, {**ok, "X-Wandb-Signature": "AAAA"}, "application/json"),
        ("/webhooks/wandb", good, ok, "text/plain"),
        (
            "/webhooks/wandb",
            good,
            {"X-Wandb-Signature": ok["X-Wandb-Signature"]},
            "application/json",
        ),
        ("/webhooks/wandb", b"x" * 4096, ok, "application/json"),
        (
            "/webhooks/wandb",
            b"[1]",
            {**ok, "X-Wandb-Signature": sign(SECRET, b"[1]")},
            "application/vnd.x+json",
        ),
        ("/repos/acme/x/dispatches", passthrough, ok_passthrough, "application/json"),
        ("/repos/other/x/dispatches", b'{"event_type": "E"}', {}, "application/json"),
    ]


def _shape(body: dict) -> dict:
    """The answer with its generated ids replaced by their kind."""
    text = json.dumps(body)
    for key in ("event_id", "duplicate_of"):
        if key in body:
            text = text.replace(body[key], "<event>")
    for d in body.get("deliveries", []):
        text = text.replace(d["id"], "<delivery>")
    return json.loads(text)


def test_router_and_flask_views_answer_alike(tmp_path):
    answers = {}
    for name, wrap in (("router", True), ("flask", False)):
        raw = {**CONFIG, "store": f"sqlite:///{tmp_path}/{name}.db"}
        app = create_app(parse_config(raw, {}))
        assert isinstance(app.wsgi_app, IntakeRouter)
        client = Client(app.wsgi_app if wrap else app.wsgi_app.flask_app)
        answers[name] = []
        for path, body, headers, content_type in _requests():
            resp = client.post(path, data=body, headers=headers, content_type=content_type)
            assert resp.headers["Content-Type"] == "application/json"
            assert int(resp.headers["Content-Length"]) == len(resp.data)
            answers[name].append((path, resp.status_code, _shape(resp.get_json())))
        app.extensions["wandb_bridge"].store.close()
    assert answers["router"] == answers["flask"]
    statuses = [status for _, status, _ in answers["router"]]
    assert statuses == [202, 200, 404, 401, 415, 401, 413, 400, 202, 401]


def test_other_methods_on_intake_paths_go_to_flask(app):
    resp = app.test_client().get("/webhooks/wandb")
    assert resp.status_code == 405
    assert "POST" in resp.headers["Allow"]
    assert resp.get_json()["error"] == "method_not_allowed"


def test_a_failure_inside_the_accept_path_is_a_json_500_and_logged(app, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    app.extensions["wandb_bridge"].store.accept = broken
    body = b'{"event_type": "X"}'
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Wandb-Signature": sign(SECRET, body)}
    with caplog.at_level(logging.INFO):
        resp = app.test_client().post(
            "/webhooks/wandb", data=body, headers=headers, content_type="application/json"
        )
    assert resp.status_code == 500
    assert resp.get_json()["error"] == "internal_server_error"
    assert "internal error on /webhooks/wandb" in caplog.text
    assert "request POST /webhooks/wandb status=500 error=internal_server_error" in caplog.text
    assert SECRET not in caplog.text and TOKEN not in caplog.text


def test_a_body_shorter_than_its_content_length_is_a_400_both_ways(app):
    """werkzeug's own refusals (here ClientDisconnected) keep their status and JSON shape."""
    answers = []
    statuses: list[str] = []
    for wsgi_app in (app.wsgi_app, app.wsgi_app.flask_app):
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/webhooks/wandb",
            "SERVER_NAME": "bridge.test",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b'{"cut": '),
            "wsgi.errors": io.StringIO(),
            "CONTENT_LENGTH": "100",
            "CONTENT_TYPE": "application/json",
        }
        body = b"".join(wsgi_app(environ, lambda status, *_: statuses.append(status)))
        answers.append((statuses[-1].split()[0], json.loads(body)))
    assert answers[0] == answers[1]
    assert answers[0][0] == "400" and answers[0][1]["error"] == "bad_request"
