"""The admin API, the OpenAPI document (kept true to the routes) and JSON logs."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import __version__
from bridge.app import create_app
from bridge.config.load import parse_config
from bridge.ops.openapi import document

ADMIN = "admin-token-for-tests-123"
ROOT = Path(__file__).resolve().parents[2]


def make_app(tmp_path, **over):
    raw = {
        "store": f"sqlite:///{tmp_path}/b.db",
        "sources": {"w": {"allow_unauthenticated": True}},
        "github": {"dry_run": True},
        "routes": [{"dispatch": {"repository": "acme/x"}}],
        "admin": {"tokens": [ADMIN]},
        **over,
    }
    return create_app(parse_config(raw, {}))


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    app.extensions["wandb_bridge"].store.close()


def auth(token=ADMIN):
    return {"Authorization": f"Bearer {token}"}


def test_admin_api_lists_shows_and_replays(app):
    from bridge.delivery.senders import DryRunSender
    from bridge.delivery.worker import DeliveryWorker

    client = app.test_client()
    event_id = client.post("/webhooks/w", json={"event_type": "X"}).get_json()["event_id"]
    listed = client.get("/api/events", headers=auth()).get_json()["events"]
    assert [e["id"] for e in listed] == [event_id]
    assert listed[0]["deliveries"][0]["state"] == "queued"
    rt = app.extensions["wandb_bridge"]
    DeliveryWorker(rt.config, rt.store, DryRunSender("x"), rt.metrics).drain()
    shown = client.get(f"/api/events/{event_id}", headers=auth()).get_json()
    (d,) = shown["deliveries"]
    assert d["state"] == "delivered" and d["history"][0]["outcome"] == "dry_run"
    assert d["client_payload"]["bridge_event_id"] == event_id
    assert json.loads(shown["body"]) == {"event_type": "X"}
    assert client.get("/api/events?state=dead", headers=auth()).get_json()["events"] == []
    resp = client.post(f"/api/events/{event_id}/replay", headers=auth())
    assert resp.status_code == 202 and resp.get_json()["replayed"] == [d["id"]]
    again = client.get(f"/api/events/{event_id}", headers=auth()).get_json()
    assert again["deliveries"][0]["state"] == "queued"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [({}, 401, "missing_token"), (auth("wrong"), 401, "invalid_token")],
)
def test_admin_api_needs_the_admin_token(app, headers, status, code):
    resp = app.test_client().get("/api/events", headers=headers)
    assert resp.status_code == status and resp.get_json()["error"] == code
    assert ADMIN not in resp.get_data(as_text=True)


def test_admin_api_errors(app):
    client = app.test_client()
    assert client.get("/api/events/evt_nope", headers=auth()).status_code == 404
    assert client.post("/api/events/evt_nope/replay", headers=auth()).status_code == 404
    for query in ("state=bogus", "limit=0", "limit=x", "limit=501"):
        resp = client.get(f"/api/events?{query}", headers=auth())
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_parameter"


def test_admin_api_is_off_without_tokens(tmp_path):
    app = make_app(tmp_path, admin={})
    try:
        resp = app.test_client().get("/api/events", headers=auth())
        assert resp.status_code == 404 and resp.get_json()["error"] == "admin_api_disabled"
    finally:
        app.extensions["wandb_bridge"].store.close()


def _flask_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def test_openapi_document_matches_the_routes(app):
    served = app.test_client().get("/openapi.json").get_json()
    assert served == json.loads(json.dumps(document()))
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("console."):
            continue  # the console's HTML pages are for people (docs/console.md)
        methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
        routes.setdefault(_flask_path(rule.rule), set()).update(methods)
    documented = {path: set(ops) for path, ops in served["paths"].items()}
    assert routes == documented


def test_openapi_document_is_read_on_the_first_request_for_it(tmp_path):
    document.cache_clear()
    app = make_app(tmp_path)
    try:
        assert document.cache_info().currsize == 0
        served = app.test_client().get("/openapi.json").get_json()
        assert document.cache_info().currsize == 1
        assert served["info"] == {"title": "wandb-github-bridge", "version": __version__}
    finally:
        app.extensions["wandb_bridge"].store.close()


def test_an_installed_bridge_serves_the_document(tmp_path):
    """setuptools builds the package as a wheel would hold it; the document is in it."""
    for part in ("pyproject.toml", "README.md", "bridge", "action"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / part)
    built = tmp_path / "built"
    setup = "import setuptools; setuptools.setup()"
    subprocess.run(
        [sys.executable, "-c", setup, "-q", "build_py", "--build-lib", str(built)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    read = "import json, bridge.ops.openapi as o; print(json.dumps([o.__file__, o.document()]))"
    done = subprocess.run(
        [sys.executable, "-c", read],
        cwd=built,
        env={**os.environ, "PYTHONPATH": str(built)},
        check=True,
        capture_output=True,
        text=True,
    )
    where, served = json.loads(done.stdout)
    assert where.startswith(str(built))
    assert served == json.loads(json.dumps(document()))


def test_openapi_document_is_valid_openapi():
    from jsonschema import Draft202012Validator

    doc = document()
    assert doc["openapi"].startswith("3.1")
    # every $ref resolves, every schema is a valid JSON schema
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert name
    text = json.dumps(doc)
    for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', text):
        assert ref in doc["components"]["schemas"]


def test_method_not_allowed_keeps_allow_header(app):
    resp = app.test_client().get("/webhooks/w")
    assert resp.status_code == 405 and "POST" in resp.headers["Allow"]
    assert resp.get_json()["error"] == "method_not_allowed"


def test_json_log_lines(capsys):
    from bridge import logs
    from bridge.config.model import LoggingConfig

    logs.configure(LoggingConfig("json", "INFO"))
    try:
        extra = logs.fields(id="dlv_1", attempt=2, status=None)
        logging.getLogger("bridge.test").info("delivery attempt", extra=extra)
        line = capsys.readouterr().err.strip().splitlines()[-1]
        record = json.loads(line)
        assert record["message"] == "delivery attempt"
        assert record["id"] == "dlv_1" and record["attempt"] == 2 and "status" not in record
        assert record["level"] == "INFO" and record["logger"] == "bridge.test"
    finally:
        for h in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(h)


def test_event_documents_follow_the_openapi_schemas(app):
    """The admin API's events, a webhook's and one catch-up recorded with a write-back to
    W&B, are what the OpenAPI document says."""
    from jsonschema import Draft202012Validator

    from bridge.store.models import CaughtUp, NewDelivery, NewEvent, PassResult

    def check(name, instance):
        schema = {"$ref": f"#/components/schemas/{name}", "components": document()["components"]}
        Draft202012Validator(schema).validate(instance)

    client = app.test_client()
    webhook = client.post("/webhooks/w", json={"event_type": "X"}).get_json()["event_id"]
    found = NewEvent("evt_0catchup", "wandb", "/webhooks/wandb", 1.7e9, b"{}", "0" * 64)
    back = NewDelivery("wbk_1", "r", "e/reg/m:v1", "run_succeeded", '{"aliases": []}', "wandb")
    store = app.extensions["wandb_bridge"].store
    assert store.catchup.record(PassResult(caught_up=(CaughtUp(found, (back,), "r", "c"),)), 1.7e9)
    listed = client.get("/api/events", headers=auth()).get_json()["events"]
    assert {e["id"]: e["origin"] for e in listed} == {
        webhook: "webhook",
        "evt_0catchup": "catch_up",
    }
    for e in listed:
        check("Event", e)
        check("EventDetail", client.get(f"/api/events/{e['id']}", headers=auth()).get_json())
    shown = client.get("/api/events/evt_0catchup", headers=auth()).get_json()
    assert shown["deliveries"][0]["kind"] == "wandb_write_back"
