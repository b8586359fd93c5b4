"""The admin API for tools: list, show and replay events over HTTP.

Authenticated by ``Authorization: Bearer <admin token>`` against ``admin.tokens`` in the
config, compared in constant time. With no admin token configured the API is off.
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, jsonify, request

from bridge.errors import NotFound, RequestRefused
from bridge.logs import fields
from bridge.ops.documents import event_json
from bridge.services import services
from bridge.signature import bearer_token, token_matches
from bridge.states import DeliveryState, RunFilter

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/api")
MAX_LIMIT = 500
_DIGITS = re.compile(r"[0-9]{1,6}")  # ASCII only: str.isdigit() also takes '²'


@bp.before_request
def authenticate() -> None:
    tokens = services().config.admin_tokens
    if not tokens:
        raise RequestRefused(
            404,
            "admin_api_disabled",
            "the admin API is off; set admin.tokens in the bridge's config to turn it on",
        )
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise RequestRefused(
            401, "missing_token", "send the admin token as 'Authorization: Bearer <token>'"
        )
    if not token_matches(tokens, token):
        raise RequestRefused(
            401, "invalid_token", "the admin token matches none of admin.tokens in the config"
        )


@bp.get("/events")
def list_events() -> Response:
    state = request.args.get("state")
    if state is not None and state not in tuple(DeliveryState):
        states = ", ".join(DeliveryState)
        raise RequestRefused(400, "invalid_parameter", f"state must be one of {states}")
    raw_limit = request.args.get("limit", "50")
    if not _DIGITS.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise RequestRefused(
            400, "invalid_parameter", f"limit must be a whole number from 1 to {MAX_LIMIT}"
        )
    run = request.args.get("run")
    if run is not None and run not in tuple(RunFilter):
        raise RequestRefused(400, "invalid_parameter", f"run must be one of {', '.join(RunFilter)}")
    events = services().store.list_events(state, int(raw_limit), run)
    return jsonify(events=[event_json(e, detail=False) for e in events])


@bp.get("/events/<event_id>")
def show_event(event_id: str) -> Response:
    try:
        event = services().store.get_event(event_id)
    except NotFound as exc:
        raise RequestRefused(404, "event_not_found", f"no event with id {event_id!r}") from exc
    return jsonify(event_json(event, detail=True))


@bp.post("/events/<event_id>/replay")
def replay_event(event_id: str) -> tuple[Response, int]:
    """202 when it queued a delivery again; 200 when there was nothing to queue (those
    queued or in flight already are left alone, and listed as ``pending``)."""
    svc = services()
    try:
        done = svc.store.replay(event_id, svc.clock())
    except NotFound as exc:
        raise RequestRefused(404, "event_not_found", f"no event with id {event_id!r}") from exc
    log.info(
        "event replayed",
        extra=fields(
            event=event_id,
            deliveries=",".join(done.queued) or "none",
            pending=",".join(done.pending) or "none",
        ),
    )
    body = jsonify(event_id=event_id, replayed=done.queued, pending=done.pending)
    return body, 202 if done.queued else 200
