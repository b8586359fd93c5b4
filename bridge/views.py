"""HTTP views: the two webhook endpoints, health and readiness.

The view is the I/O edge around :mod:`bridge.intake`: it reads the body within the size
limit, runs the checks in order, commits the event, and only then answers 202.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from bridge import intake
from bridge.dispatch import PlannedDispatch
from bridge.errors import RequestRefused, StoreUnavailable
from bridge.ids import new_id
from bridge.runtime import Runtime
from bridge.store.models import NewDelivery, NewEvent

log = logging.getLogger(__name__)
bp = Blueprint("intake", __name__)
_CHUNK = 64 * 1024


def json_response(body: dict[str, Any]) -> Response:
    """A compact JSON answer, without the JSON provider's per-call machinery (hot path)."""
    return Response(json.dumps(body, separators=(",", ":")), mimetype="application/json")


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["wandb_bridge"]
    return rt


def read_body(limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``limit`` (never read whole)."""
    intake.check_size(request.content_length, limit)
    stream = request.stream
    chunks, size = [], 0
    while True:
        chunk = stream.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            intake.check_size(size, limit)
    return b"".join(chunks)


@bp.post("/repos/<owner>/<repo>/dispatches")
def passthrough(owner: str, repo: str) -> tuple[Response, int]:
    rt = runtime()
    body = read_body(rt.config.max_body_bytes)
    intake.check_content_type(request.content_type)
    source = intake.authenticate(list(rt.config.sources.values()), *_credentials(), body)
    obj = intake.parse_object(body)
    event_id = new_id("evt", rt.clock())
    planned = intake.plan_passthrough(rt.config, f"{owner}/{repo}", obj, event_id)
    return _commit(rt, source.name, event_id, body, planned)


@bp.post("/webhooks/<source>")
def webhook(source: str) -> tuple[Response, int]:
    rt = runtime()
    body = read_body(rt.config.max_body_bytes)
    intake.check_content_type(request.content_type)
    known = intake.find_source(rt.config, source)
    matched = intake.authenticate([known], *_credentials(), body)
    obj = intake.parse_object(body)
    event_id = new_id("evt", rt.clock())
    planned = intake.plan_webhook(rt.config, matched, obj, event_id)
    return _commit(rt, matched.name, event_id, body, planned)


def _credentials() -> tuple[str | None, str | None]:
    return request.headers.get("Authorization"), request.headers.get("X-Wandb-Signature")


def _commit(
    rt: Runtime, source: str, event_id: str, body: bytes, planned: list[PlannedDispatch]
) -> tuple[Response, int]:
    now = rt.clock()
    event = NewEvent(event_id, source, request.path, now, body, hashlib.sha256(body).hexdigest())
    deliveries = [
        NewDelivery(
            new_id("dlv", now),
            p.route,
            p.repository,
            p.event_type,
            json.dumps(p.client_payload, separators=(",", ":"), ensure_ascii=False),
        )
        for p in planned
    ]
    accepted = rt.store.accept(event, deliveries, rt.config.dedupe_window)
    if accepted.duplicate_of is not None:
        g.log_fields = {"source": source, "duplicate_of": accepted.duplicate_of}
        rt.metrics.received(source, "duplicate")
        return json_response({"duplicate_of": accepted.duplicate_of}), 200
    g.log_fields = {
        "source": source,
        "event": event_id,
        "deliveries": ",".join(f"{d.id}->github:{d.repository}" for d in deliveries) or "none",
    }
    rt.metrics.received(source, "accepted")
    answer: dict[str, Any] = {
        "event_id": event_id,
        "deliveries": [
            {
                "id": d.id,
                "target": f"github:{d.repository}",
                "event_type": d.event_type,
                "state": "queued",
            }
            for d in deliveries
        ],
    }
    return json_response(answer), 202


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
    if request.blueprint == bp.name:
        runtime().metrics.refused(exc.code)
    return json_response({"error": exc.code, "message": exc.message}), exc.status


def store_unavailable(exc: StoreUnavailable) -> tuple[Response, int]:
    log.error("store unavailable path=%s: %s", request.path, exc)
    g.log_error = "store_unavailable"
    if request.blueprint == bp.name:
        runtime().metrics.refused("store_unavailable")
    return jsonify(
        error="store_unavailable",
        message="the bridge cannot store the event right now; W&B should retry, and the "
        "bridge's operator should check its store",
    ), 503
