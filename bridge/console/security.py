"""The headers every console answer carries, and the same-origin check on POSTs."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, request

PREFIX = "/console"
HEADERS = {
    # No inline script or style at all: the pages load one stylesheet and one script
    # from the bridge itself, and forms post only back to it.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def in_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def protect(resp: Response) -> Response:
    """Add the console's headers to an answer under ``/console`` (error pages included)."""
    if in_console(request.path):
        for name, value in HEADERS.items():
            resp.headers[name] = value
    return resp


def same_origin(origin: str | None, referer: str | None, host: str) -> bool:
    """True when the page that sent a POST is on this bridge.

    ``origin`` (or, without it, ``referer``) must name ``host``, the Host header the
    bridge received. The scheme is not compared: behind a proxy that ends TLS the bridge
    sees plain HTTP while the browser's page was https. A Host without a port matches a
    page on its scheme's default port; one with a port, that port only. A POST with
    neither header is refused: browsers send one.
    """
    sent = origin if origin is not None else referer
    if not sent or sent == "null" or not host:
        return False
    try:
        page = urlsplit(sent)
        mine = urlsplit(f"//{host}")
        page_port = page.port or _DEFAULT_PORTS.get(page.scheme)
        my_port = mine.port
    except ValueError:  # a port that is not a number
        return False
    if page.scheme not in _DEFAULT_PORTS or not page.hostname:
        return False
    if page.hostname != mine.hostname:
        return False
    if my_port is None:
        return page_port == _DEFAULT_PORTS[page.scheme]
    return page_port == my_port
