"""The served WSGI application: the intake POSTs answered directly, the rest by Flask.

A webhook is the one request a bridge serves at volume, and Flask's per-request
machinery (request and app contexts, URL adapter, signals, response object, hooks) costs
about as much CPU as the signature check and the durable write together. The router
recognises exactly ``POST /webhooks/<source>`` and ``POST /repos/<owner>/<repo>/dispatches``
(what Flask's rules for them match) and hands them to :func:`bridge.accept.accept`;
anything else, including those paths with another method or a stray slash, goes to Flask
unchanged. The request is logged and answered as Flask would answer it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from bridge.accept import Answer, Endpoint, accept
from bridge.logs import log_request
from bridge.runtime import Runtime

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("bridge.app")  # the request lines, as Flask's hooks write them

INTERNAL_ERROR = (
    "the bridge failed on this request; W&B should retry, and the bridge's operator should "
    "look at its log"
)


def match(path: str) -> Endpoint | None:
    """The intake endpoint ``path`` (WSGI's latin-1 text) names, or None."""
    if path.startswith("/webhooks/"):
        name = path[10:]
        if name and "/" not in name:
            return Endpoint(source=_text(name))
    elif path.startswith("/repos/") and path.endswith("/dispatches"):
        owner, _, repo = path[7:-11].partition("/")
        if owner and repo and "/" not in repo:
            return Endpoint(repository=_text(f"{owner}/{repo}"))
    return None


def _text(wsgi_str: str) -> str:
    # As werkzeug decodes a path for its view arguments.
    return wsgi_str.encode("latin-1").decode("utf-8", "replace")


class IntakeRouter:
    def __init__(self, rt: Runtime, flask_app: WSGIApplication) -> None:
        self.rt = rt
        self.flask_app = flask_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        endpoint = match(path) if environ.get("REQUEST_METHOD") == "POST" else None
        if endpoint is None:
            return self.flask_app(environ, start_response)
        started = time.perf_counter()
        answer = self._answer(environ, endpoint)
        body = answer.encoded()
        status = HTTPStatus(answer.status)
        start_response(
            f"{status.value} {status.phrase}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        log_request(
            log, "POST", _text(path), answer.status, answer.log_fields, answer.error, started
        )
        return [body]

    def _answer(self, environ: dict[str, Any], endpoint: Endpoint) -> Answer:
        try:
            return accept(self.rt, environ, endpoint)
        except Exception:
            log.exception("internal error on %s", environ.get("PATH_INFO", ""))
            body = {"error": "internal_server_error", "message": INTERNAL_ERROR}
            return Answer(500, body, error="internal_server_error")
