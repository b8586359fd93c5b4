"""The intake benchmark's yardstick: a bare Flask app that only verifies the signature.

It reads the body, checks ``X-Wandb-Signature`` (base64 HMAC-SHA256 of the raw body,
constant-time compare) and answers 202 with a small JSON body. No token, no store, no
routing, no logging, no delivery. bench/intake.py serves it with gunicorn and the
settings of ``wandb-bridge serve`` (gthread workers, same processes and threads):

    BENCH_WEBHOOK_SECRET=... gunicorn --worker-class gthread --workers 2 --threads 64 \
        'bench.baseline_app:create_app()'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from flask import Flask, Response, jsonify, request


def create_app(secret: str | None = None) -> Flask:
    """The app; the secret comes from ``$BENCH_WEBHOOK_SECRET`` unless given."""
    key = (secret or os.environ["BENCH_WEBHOOK_SECRET"]).encode("utf-8")
    app = Flask("baseline")

    @app.post("/webhooks/<name>")
    def webhook(name: str) -> tuple[Response, int]:
        body = request.get_data()
        expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest())
        given = request.headers.get("X-Wandb-Signature", "").strip().encode("latin-1", "replace")
        if not hmac.compare_digest(expected, given):
            return jsonify(error="invalid_signature"), 401
        return jsonify(status="accepted"), 202

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return jsonify(status="ok"), 200

    return app
