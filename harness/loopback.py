"""Serve a WSGI app on ``127.0.0.1`` (port 0) from a thread of the calling process.

The fakes of the tests and the stand-ins of the benchmarks are served here, by cheroot
(CherryPy's WSGI server): HTTP/1.1 keep-alive, as GitHub and W&B, so the bridge's
pooled connections are reused as they are in production. (werkzeug's development
server answers every request with ``Connection: close``.) No access log is written.
``stop()`` leaves nothing behind: the listening socket and every kept-alive connection
are closed (else a client's pooled connection would go on being answered by a
"stopped" server), and the request threads are joined.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING, Self

from cheroot import wsgi

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

HOST = "127.0.0.1"
THREADS = 64  # requests answered at once: fakes that wait (a GitHub taking 100 ms) hold one


class LoopbackServer:
    """A started-on-demand HTTP server for ``app``; ``url`` once started. Also a context
    manager (started on entry, stopped on exit)."""

    def __init__(self, app: WSGIApplication, name: str) -> None:
        self._app = app
        self._name = name
        self._server: wsgi.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self._name} is not started")
        return int(self._server.bind_addr[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{self._name} is already started")
        server = wsgi.Server((HOST, 0), self._app, numthreads=THREADS, shutdown_timeout=10)
        server.prepare()  # bound and listening: the port is known from here on
        self._server = server
        self._thread = threading.Thread(target=server.serve, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None or thread is None:
            return
        server.stop()  # closes the listener and the connections, joins the request threads
        thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
