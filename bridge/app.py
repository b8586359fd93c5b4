"""The Flask application factory, and the one place errors become answers (JSON; HTML
under ``/console``)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from bridge.config.load import find_config_path, load_config
from bridge.config.model import Config
from bridge.console import security
from bridge.console import views as console
from bridge.errors import ConfigError, RequestRefused, StoreUnavailable
from bridge.intake import views
from bridge.logs import fields, log_request
from bridge.metrics import Metrics
from bridge.ops import admin, health
from bridge.ops.openapi import document
from bridge.services import EXTENSION, Services, services
from bridge.store import SqlStore, open_store

log = logging.getLogger(__name__)

STORE_UNAVAILABLE = (
    "the bridge cannot store the event right now; W&B should retry, and the bridge's "
    "operator should check its store"
)
INTERNAL_ERROR = (
    "the bridge failed on this request; W&B should retry, and the bridge's operator should "
    "look at its log"
)


def create_app(
    config: Config | None = None,
    *,
    store: SqlStore | None = None,
    clock: Callable[[], float] = time.time,
    migrate: bool = True,
) -> Flask:
    """Build the app. Without ``config``, load the file ``--config``/``$WANDB_BRIDGE_CONFIG``
    names (``flask --app bridge run``)."""
    if config is None:
        config = _config_from_environment()
    if store is None:
        store = open_store(config.store.value)
    if migrate:
        store.migrate()
    app = Flask("bridge")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    svc = Services(config, store, Metrics(store.stats, clock), clock)
    app.extensions[EXTENSION] = svc
    app.register_blueprint(views.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(console.bp)
    app.add_url_rule("/metrics", "metrics", lambda: _metrics(svc))
    app.add_url_rule("/openapi.json", "openapi", lambda: jsonify(document()))
    app.before_request(_start_timer)
    app.after_request(security.protect)
    app.after_request(_log_request)
    app.register_error_handler(Exception, _error)
    return app


def _config_from_environment() -> Config:
    """``flask --app bridge run``: the file ``$WANDB_BRIDGE_CONFIG`` names; a missing or
    broken one ends the process with one line saying how to give one (no traceback)."""
    path = find_config_path(None, os.environ)
    try:
        return load_config(path)
    except ConfigError as exc:
        how = (
            ""
            if "WANDB_BRIDGE_CONFIG" in os.environ
            else "; set $WANDB_BRIDGE_CONFIG to the config file "
            "(or run wandb-bridge serve --config PATH)"
        )
        raise SystemExit(f"wandb-bridge: {exc}{how}") from None


def _metrics(svc: Services) -> Response:
    body, content_type = svc.metrics.render()
    return Response(body, content_type=content_type)


def _error(exc: Exception) -> tuple[Response, int]:
    """Every failure as ``{"error", "message"}``: refusals, werkzeug's own, the store, bugs;
    under ``/console``, as an HTML page saying the same."""
    headers: list[tuple[str, str]] = []
    if isinstance(exc, RequestRefused):
        status, code, message = exc.status, exc.code, exc.message
    elif isinstance(exc, StoreUnavailable):
        log.error("store unavailable: %s", exc, extra=fields(path=request.path))
        status, code, message = 503, "store_unavailable", STORE_UNAVAILABLE
    elif isinstance(exc, HTTPException) and exc.code is not None and exc.code < 500:
        status, code = exc.code, (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name
        # keep Allow on a 405, and the like
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    else:
        where = fields(method=request.method, path=request.path)
        log.error("internal error", extra=where, exc_info=exc)
        status, code, message = 500, "internal_error", INTERNAL_ERROR
    if request.blueprint == views.bp.name:
        services().metrics.refused(code)
    g.log_error = code
    if security.in_console(request.path):
        resp = console.error_page(status, message)
    else:
        resp = jsonify(error=code, message=message)
    for name, value in headers:
        resp.headers[name] = value
    return resp, status


def _start_timer() -> None:
    g.started = time.perf_counter()


def _log_request(resp: Response) -> Response:
    """The request's log line, written once the answer is sent (a writer waiting for the
    log's lock never holds up a 202)."""
    ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    args = (request.method, request.path, resp.status_code, g.get("log_fields", {}))
    error = g.get("log_error")
    resp.call_on_close(lambda: log_request(log, *args, error, ms))
    return resp
