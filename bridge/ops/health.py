"""Liveness and readiness: is the process up, and would an event be accepted now.

Readiness commits a small write, and (SQLite) checks that the database's disk has room
for ``ROOM_FOR_EVENTS`` bodies of ``max_body_bytes``: a disk with room for tiny writes
only would accept the health check and refuse the next large webhook."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from bridge.errors import StoreUnavailable
from bridge.services import services

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)
# A full-size body, its copy in the write-ahead log, and the deliveries made from it.
ROOM_FOR_EVENTS = 4


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    return jsonify(status="ok"), 200


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    svc = services()
    try:
        svc.store.check_writable(svc.clock())
        svc.store.check_room(ROOM_FOR_EVENTS * svc.config.max_body_bytes)
    except StoreUnavailable as exc:
        log.warning("readiness check failed: %s", exc)
        message = "the store cannot commit an event right now; the bridge would answer 503"
        return jsonify(status="unavailable", message=message), 503
    return jsonify(status="ready"), 200
