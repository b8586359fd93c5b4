"""gunicorn's threaded worker, answering requests it cannot parse in the bridge's shape.

gunicorn refuses some requests before the app sees them: a request line over 4 KiB, a
header over 8 KiB, broken chunked framing, bytes HTTP forbids. It answers those with an
HTML page of its own and offers no setting to change it, but a worker class of one's
own is gunicorn's documented extension point: this one answers them with the JSON error
body every other refusal has (``{"error", "message"}``, what W&B shows an admin), and
logs one line that does not quote the request (it may hold a token).

It also closes a kept-alive connection after ``KEEPALIVE_REQUESTS`` requests (as nginx's
``keepalive_requests`` does). Each process accepts the connections it gets to first, and
one busy at that moment (its delivery worker catching up, say) gets few or none: a
client that keeps a few connections open for good (a proxy, a benchmark) could leave
its whole load on one process, on one core, for as long as they last. Closed now and
then, they are accepted again by whichever process has time for them. W&B opens a
connection per webhook: nothing changes for it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from typing import Any

from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker

from bridge.logs import fields

log = logging.getLogger(__name__)

KEEPALIVE_REQUESTS = 100  # requests served on one connection before it is closed

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
    """gunicorn's ``gthread`` worker with JSON refusals and a cap on the requests of one
    connection (``worker_class`` in server.py)."""

    def handle_request(self, req: Any, conn: Any) -> Any:
        if req.req_number >= KEEPALIVE_REQUESTS:  # gunicorn counts a connection's requests
            req.must_close = True  # answered with Connection: close, then closed
        return super().handle_request(req, conn)

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: Exception) -> None:
        refusal = _refusal(exc)
        if refusal is None:  # not the client's fault: gunicorn's own handling (a 500)
            super().handle_error(req, client, addr, exc)
            return
        status, reason, code, message = refusal
        ip = addr[0] if isinstance(addr, tuple) and addr else "unix socket"
        log.warning(
            "refused a request that is not valid HTTP", extra=fields(address=ip, error=code)
        )
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
