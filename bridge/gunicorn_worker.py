"""gunicorn's threaded worker, answering requests it cannot parse in the bridge's shape.

gunicorn refuses some requests before the app sees them: a request line over 4 KiB, a
header over 8 KiB, broken chunked framing, bytes HTTP forbids. It answers those with an
HTML page of its own and offers no setting to change it, but a worker class of one's
own is gunicorn's documented extension point: this one answers them with the JSON error
body every other refusal has (``{"error", "message"}``, what W&B shows an admin), and
logs one line that does not quote the request (it may hold a token).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from typing import Any

from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger(__name__)

# (status, reason, error code, message) by gunicorn's parse error; the first match wins.
_REFUSALS: list[tuple[type[Exception], int, str, str, str]] = [
    (
        errors.LimitRequestLine,
        414,
        "URI Too Long",
        "request_uri_too_large",
        "the request line (method, path and query) is longer than the bridge accepts "
        "(4 KiB); send data in the JSON body, not in the URL",
    ),
    (
        errors.LimitRequestHeaders,
        431,
        "Request Header Fields Too Large",
        "request_header_fields_too_large",
        "a request header is larger than the bridge accepts (8 KiB each, 100 headers); "
        "send data in the JSON body, not in headers",
    ),
    (
        errors.ParseException,
        400,
        "Bad Request",
        "bad_request",
        "the request is not valid HTTP/1.1 (its request line, a header or its chunked "
        "framing); send it with an ordinary HTTP client",
    ),
]

# Parse errors that are not the client's fault: gunicorn's configuration, a header the
# app tried to send (the last two are in newer gunicorn only).
_NOT_THE_CLIENTS = tuple(
    getattr(errors, name)
    for name in ("ConfigurationProblem", "InvalidResponseHeader", "InvalidResponseHeaderName")
    if hasattr(errors, name)
)


class JsonRefusalWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's ``gthread`` worker with JSON refusals (``worker_class`` in server.py)."""

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: Exception) -> None:
        refusal = _refusal(exc)
        if refusal is None:  # not the client's fault: gunicorn's own handling (a 500)
            super().handle_error(req, client, addr, exc)
            return
        status, reason, code, message = refusal
        ip = addr[0] if isinstance(addr, tuple) and addr else "unix socket"
        log.warning("refused a request from %s that is not valid HTTP: %s", ip, code)
        body = json.dumps({"error": code, "message": message}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        with contextlib.suppress(OSError):  # the client has gone: no one to tell
            client.sendall(head.encode("ascii") + body)


def _refusal(exc: Exception) -> tuple[int, str, str, str] | None:
    if isinstance(exc, _NOT_THE_CLIENTS):
        return None
    for kind, status, reason, code, message in _REFUSALS:
        if isinstance(exc, kind):
            return status, reason, code, message
    return None
