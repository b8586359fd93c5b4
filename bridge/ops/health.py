"""Liveness and readiness: is the process up, and would an event be accepted now."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from bridge.errors import StoreUnavailable
from bridge.services import services

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    return jsonify(status="ok"), 200


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    svc = services()
    try:
        svc.store.check_writable(svc.clock())
    except StoreUnavailable as exc:
        log.warning("readiness check failed: %s", exc)
        message = "the store cannot commit an event right now; the bridge would answer 503"
        return jsonify(status="unavailable", message=message), 503
    return jsonify(status="ready"), 200
