"""HTTP views: the two webhook endpoints, health and readiness.

The webhook endpoints are answered by :mod:`bridge.accept`; in a served bridge
:mod:`bridge.wsgi` routes their POSTs there before Flask. The Flask rules stay for what
Flask does with them (405 for other methods, the URL map, the OpenAPI check) and answer
the POSTs the router leaves to Flask (a path with repeated slashes, which werkzeug still
routes here) or that reach the app without the router, through the same function.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from bridge.accept import STORE_UNAVAILABLE, Answer, Endpoint, accept, encode_json
from bridge.errors import RequestRefused, StoreUnavailable
from bridge.runtime import Runtime

log = logging.getLogger(__name__)
bp = Blueprint("intake", __name__)


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["wandb_bridge"]
    return rt


def _answer(answer: Answer) -> tuple[Response, int]:
    g.log_fields, g.log_error = answer.log_fields, answer.error
    return _json(answer.body), answer.status


@bp.post("/repos/<owner>/<repo>/dispatches")
def passthrough(owner: str, repo: str) -> tuple[Response, int]:
    return _answer(accept(runtime(), request.environ, Endpoint(repository=f"{owner}/{repo}")))


@bp.post("/webhooks/<source>")
def webhook(source: str) -> tuple[Response, int]:
    return _answer(accept(runtime(), request.environ, Endpoint(source=source)))


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    return jsonify(status="ok"), 200


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    try:
        runtime().store.ping()
    except StoreUnavailable:
        log.warning("readiness check failed: the store is unreachable")
        return jsonify(status="unavailable", message="the store cannot be reached"), 503
    return jsonify(status="ready"), 200


def refused(exc: RequestRefused) -> tuple[Response, int]:
    g.log_error = exc.code
    return _json({"error": exc.code, "message": exc.message}), exc.status


def store_unavailable(exc: StoreUnavailable) -> tuple[Response, int]:
    log.error("store unavailable path=%s: %s", request.path, exc)
    g.log_error = "store_unavailable"
    return _json({"error": "store_unavailable", "message": STORE_UNAVAILABLE}), 503


def _json(body: dict[str, Any]) -> Response:
    return Response(encode_json(body), mimetype="application/json")
