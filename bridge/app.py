"""The Flask application factory."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from bridge import admin, views
from bridge.accept import http_error_code, http_error_message
from bridge.config import Config
from bridge.config_loader import find_config_path, load_config
from bridge.errors import RequestRefused, StoreUnavailable
from bridge.logs import log_request
from bridge.metrics import Metrics
from bridge.openapi import document
from bridge.runtime import Runtime
from bridge.store import SqlStore, open_store
from bridge.wsgi import IntakeRouter

log = logging.getLogger(__name__)


def create_app(
    config: Config | None = None,
    *,
    store: SqlStore | None = None,
    clock: Callable[[], float] = time.time,
    migrate: bool = True,
) -> Flask:
    """Build the app. Without ``config``, load the file ``$WANDB_BRIDGE_CONFIG`` names."""
    if config is None:
        config = load_config(find_config_path(None, os.environ))
    if store is None:
        store = open_store(config.store.value)
    if migrate:
        store.migrate()
    app = Flask("bridge")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    rt = Runtime(config, store, Metrics(store.stats, clock), clock)
    app.extensions["wandb_bridge"] = rt
    app.register_blueprint(views.bp)
    app.register_blueprint(admin.bp)
    app.add_url_rule("/metrics", "metrics", lambda: _metrics(rt))
    spec = document()
    app.add_url_rule("/openapi.json", "openapi", lambda: jsonify(spec))
    app.before_request(_start_timer)
    app.after_request(_log_request)
    app.register_error_handler(RequestRefused, views.refused)
    app.register_error_handler(StoreUnavailable, views.store_unavailable)
    app.register_error_handler(HTTPException, _http_error)
    app.wsgi_app = IntakeRouter(rt, app.wsgi_app)  # type: ignore[method-assign]
    return app


def _metrics(rt: Runtime) -> Response:
    body, content_type = rt.metrics.render()
    return Response(body, content_type=content_type)


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    code = http_error_code(exc)
    status = exc.code or 500
    if status >= 500:
        log.error("internal error: %s", exc.description)
    resp = jsonify(error=code, message=http_error_message(exc))
    for name, value in exc.get_headers():
        if name.lower() != "content-type":  # keep Allow, Retry-After, ...
            resp.headers[name] = value
    g.log_error = code
    return resp, status


def _start_timer() -> None:
    g.started = time.perf_counter()


def _log_request(resp: Response) -> Response:
    """One line per request that Flask answers (the intake POSTs log in bridge.wsgi)."""
    started = g.get("started", time.perf_counter())
    fields, error = g.get("log_fields", {}), g.get("log_error")
    log_request(log, request.method, request.path, resp.status_code, fields, error, started)
    return resp
