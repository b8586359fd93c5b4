"""The two webhook endpoints W&B posts to; both hand the request to :func:`accept`."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from bridge.intake.accept import Request, Result, accept, answer, target
from bridge.services import services

bp = Blueprint("intake", __name__)


def _request() -> Request:
    environ = request.environ  # the two headers as werkzeug's ``headers`` would give them
    return Request(
        path=request.path,
        content_type=request.content_type,
        content_length=request.content_length,
        authorization=environ.get("HTTP_AUTHORIZATION"),
        signature=environ.get("HTTP_X_WANDB_SIGNATURE"),
        stream=request.stream,
    )


def _respond(result: Result) -> tuple[Response, int]:
    g.log_fields = {"source": result.source}
    if result.duplicate:
        g.log_fields["duplicate_of"] = result.event_id
    else:
        g.log_fields["event"] = result.event_id
        g.log_fields["deliveries"] = (
            ",".join(f"{d.id}->{target(d)}" for d in result.deliveries) or "none"
        )
    body, status = answer(result)
    return jsonify(body), status


@bp.post("/repos/<owner>/<repo>/dispatches")
def passthrough(owner: str, repo: str) -> tuple[Response, int]:
    return _respond(accept(services(), _request(), repository=(owner, repo)))


@bp.post("/webhooks/<source>")
def webhook(source: str) -> tuple[Response, int]:
    return _respond(accept(services(), _request(), source=source))
