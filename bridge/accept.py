"""The accept path of both intake endpoints: from the WSGI request to the answer.

It reads the body within the size limit, runs the checks of :mod:`bridge.intake` in
SPEC §3's order, commits the event and its deliveries, and only then returns the 202.
It works on the WSGI environ, not on Flask's request: :mod:`bridge.wsgi` calls it before
Flask for the two POST endpoints (the one request a bridge serves at volume), and the
Flask views call it too, so there is one implementation.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_content_length, get_input_stream

from bridge import intake
from bridge.dispatch import PlannedDispatch
from bridge.errors import RequestRefused, StoreUnavailable
from bridge.ids import new_id
from bridge.runtime import Runtime
from bridge.store.models import NewDelivery, NewEvent

log = logging.getLogger(__name__)
_CHUNK = 64 * 1024
_JSON = json.JSONEncoder(separators=(",", ":"))

STORE_UNAVAILABLE = (
    "the bridge cannot store the event right now; W&B should retry, and the bridge's "
    "operator should check its store"
)


@dataclass(frozen=True)
class Endpoint:
    """Which intake endpoint a request is for: a source's webhook, or a passthrough to
    ``repository`` (``owner/repo``)."""

    source: str | None = None
    repository: str | None = None


@dataclass
class Answer:
    """What to answer, and what the request's log line says about it."""

    status: int
    body: dict[str, Any]
    log_fields: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def encoded(self) -> bytes:
        return encode_json(self.body)


def encode_json(body: dict[str, Any]) -> bytes:
    """A compact JSON answer body."""
    return _JSON.encode(body).encode("utf-8")


def http_error_code(exc: HTTPException) -> str:
    """``bad_request`` for werkzeug's BadRequest: the ``error`` of an HTTP error's body."""
    return (exc.name or "error").lower().replace(" ", "_")


def http_error_message(exc: HTTPException) -> str:
    return exc.description or exc.name


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``limit`` (never read whole)."""
    length = get_content_length(environ)
    intake.check_size(length, limit)
    stream = get_input_stream(environ, max_content_length=None)
    chunks, size = [], 0
    while size != length:  # with a Content-Length, no read past its end to find the end
        chunk = stream.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            intake.check_size(size, limit)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def accept(rt: Runtime, environ: dict[str, Any], endpoint: Endpoint) -> Answer:
    """Run one intake request to its answer; refusals and a store failure included."""
    try:
        return _accept(rt, environ, endpoint)
    except RequestRefused as exc:
        rt.metrics.refused(exc.code)
        return Answer(exc.status, {"error": exc.code, "message": exc.message}, error=exc.code)
    except HTTPException as exc:  # werkzeug's, e.g. a body shorter than its Content-Length
        code = http_error_code(exc)
        rt.metrics.refused(code)
        return Answer(
            exc.code or 500, {"error": code, "message": http_error_message(exc)}, error=code
        )
    except StoreUnavailable as exc:
        log.error("store unavailable path=%s: %s", environ.get("PATH_INFO", ""), exc)
        rt.metrics.refused("store_unavailable")
        body = {"error": "store_unavailable", "message": STORE_UNAVAILABLE}
        return Answer(503, body, error="store_unavailable")


def _accept(rt: Runtime, environ: dict[str, Any], endpoint: Endpoint) -> Answer:
    config = rt.config
    body = read_body(environ, config.max_body_bytes)
    intake.check_content_type(environ.get("CONTENT_TYPE"))
    if endpoint.source is not None:
        sources = [intake.find_source(config, endpoint.source)]
    else:
        sources = list(config.sources.values())
    matched = intake.authenticate(
        sources, environ.get("HTTP_AUTHORIZATION"), environ.get("HTTP_X_WANDB_SIGNATURE"), body
    )
    obj = intake.parse_object(body)
    event_id = new_id("evt", rt.clock())
    if endpoint.repository is not None:
        planned = intake.plan_passthrough(config, endpoint.repository, obj, event_id)
    else:
        planned = intake.plan_webhook(config, matched, obj, event_id)
    return _commit(rt, matched.name, environ.get("PATH_INFO", ""), event_id, body, planned)


def _commit(
    rt: Runtime,
    source: str,
    path: str,
    event_id: str,
    body: bytes,
    planned: list[PlannedDispatch],
) -> Answer:
    now = rt.clock()
    event = NewEvent(event_id, source, path, now, body, hashlib.sha256(body).hexdigest())
    deliveries = [
        NewDelivery(new_id("dlv", now), p.route, p.repository, p.event_type, p.payload_json)
        for p in planned
    ]
    accepted = rt.store.accept(event, deliveries, rt.config.dedupe_window)
    if accepted.duplicate_of is not None:
        rt.metrics.received(source, "duplicate")
        return Answer(
            200,
            {"duplicate_of": accepted.duplicate_of},
            {"source": source, "duplicate_of": accepted.duplicate_of},
        )
    rt.metrics.received(source, "accepted")
    targets = [f"github:{d.repository}" for d in deliveries]
    answer = {
        "event_id": event_id,
        "deliveries": [
            {"id": d.id, "target": target, "event_type": d.event_type, "state": "queued"}
            for d, target in zip(deliveries, targets, strict=True)
        ],
    }
    delivered_to = ",".join(f"{d.id}->{t}" for d, t in zip(deliveries, targets, strict=True))
    fields = {"source": source, "event": event_id, "deliveries": delivered_to or "none"}
    return Answer(202, answer, fields)
