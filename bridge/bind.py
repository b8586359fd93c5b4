"""Check ``serve --bind HOST:PORT`` before gunicorn starts, so a mistake is one line.

gunicorn reports a malformed address with a traceback or its own "Error:" page, and a
port in use by retrying for seconds before logging that it gave up. Trying the address
first turns each into a :class:`~bridge.errors.ListenError` that names the fix. (Another
program can still take the port between this check and gunicorn's bind; gunicorn then
reports it its own way.)
"""

from __future__ import annotations

import errno
import socket

from bridge.errors import ListenError

EXAMPLES = "such as 127.0.0.1:8080, 0.0.0.0:8080 or [::]:8080"


def parse_bind(bind: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT``; None for gunicorn's ``unix:PATH`` and ``fd://N``,
    which are passed on as they are. Raises ListenError(usage=True) when malformed."""
    if bind.startswith(("unix:", "fd://")):
        return None
    host, colon, port = bind.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not (port.isascii() and port.isdigit()):
        raise ListenError(f"--bind {bind!r}: give HOST:PORT, {EXAMPLES}", usage=True)
    if not 1 <= int(port) <= 65535:
        raise ListenError(f"--bind {bind!r}: the port must be 1-65535, {EXAMPLES}", usage=True)
    return host, int(port)


def check_bind(bind: str) -> None:
    """Raise ListenError naming the fix unless this process can listen on ``bind``."""
    address = parse_bind(bind)
    if address is None:
        return
    host, port = address
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError):
        raise ListenError(
            f"cannot listen on {bind}: {host!r} is not a name or address of this machine; "
            f"pass --bind with one, {EXAMPLES}"
        ) from None
    try:
        # create_server sets SO_REUSEADDR as gunicorn does: a port in TIME_WAIT is free
        socket.create_server(sockaddr, family=family).close()
    except OSError as exc:
        raise ListenError(f"cannot listen on {bind}: {_why(exc, port)}") from None


def _why(exc: OSError, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} is in use (another bridge or program listens there); stop it, or "
            "pass --bind with another port"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return "that address is not one of this machine's; pass --bind 0.0.0.0:PORT (all)"
    if exc.errno == errno.EACCES:
        return f"port {port} needs privileges this user lacks; pass --bind with a port >= 1024"
    return f"{exc.strerror or exc}; pass --bind with another address"
