"""Serve a WSGI app on ``127.0.0.1`` (port 0) from a thread of the calling process.

The fakes of the tests and the stand-ins of the benchmarks are served here. HTTP/1.1
keep-alive, as GitHub and W&B: the bridge pools its connections. No access log is
written. ``stop()`` leaves nothing behind: the listening socket is closed, open
keep-alive connections are shut (else a client's pooled connection would go on being
answered by a "stopped" server), and every request thread is joined.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

HOST = "127.0.0.1"


class _QuietHandler(WSGIRequestHandler):
    """No access log: werkzeug's would also attach a handler to the 'werkzeug' logger."""

    protocol_version = "HTTP/1.1"  # keep-alive
    # Headers and body go out in two writes: with Nagle's algorithm on, the body waits
    # for the client's delayed ACK of the headers (40 ms on Linux), on every request.
    disable_nagle_algorithm = True

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class _Server(ThreadedWSGIServer):
    daemon_threads = False  # so that server_close() joins the request threads

    def __init__(self, app: WSGIApplication) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(HOST, 0, app, handler=_QuietHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        with self._open_lock:
            still_open = list(self._open)
        for connection in still_open:  # wakes the threads waiting for a next request
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        super().server_close()


class LoopbackServer:
    """A started-on-demand HTTP server for ``app``; ``url`` once started. Also a context
    manager (started on entry, stopped on exit)."""

    def __init__(self, app: WSGIApplication, name: str) -> None:
        self._app = app
        self._name = name
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self._name} is not started")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{self._name} is already started")
        self._server = _Server(self._app)
        # A short poll interval keeps stop() quick: shutdown() waits for one poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=self._name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None or thread is None:
            return
        server.shutdown()  # werkzeug's serve_forever() then calls server_close() itself
        thread.join()
        server.server_close()  # idempotent; covers a serve thread that died early

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
