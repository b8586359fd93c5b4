"""Serve a WSGI app on ``127.0.0.1`` (port 0) from a thread of the test process.

``stop()`` leaves nothing behind: the listening socket is closed, open keep-alive
connections are shut (else a client's pooled connection would go on being answered by a
"stopped" server), and every request thread is joined. No access log is written.

:class:`ServedFake` is the lifecycle the fakes share: ``start`` / ``stop``, use as a
context manager, ``url``, and the fake's own failures raised by ``stop``;
:class:`Scripted`, an answer a fake's ``fail_next`` queues.
"""

from __future__ import annotations

import abc
import json
import socket
import threading
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

T = TypeVar("T")


class _QuietHandler(WSGIRequestHandler):
    """No access log: werkzeug's would also attach a handler to the 'werkzeug' logger."""

    protocol_version = "HTTP/1.1"  # keep-alive, as GitHub

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class _Server(ThreadedWSGIServer):
    daemon_threads = False  # so that server_close() joins the request threads

    def __init__(self, app: WSGIApplication) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__("127.0.0.1", 0, app, handler=_QuietHandler)

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
    """A started-on-demand HTTP server for ``app``; ``url`` once started."""

    def __init__(self, app: WSGIApplication, name: str) -> None:
        self._app = app
        self._name = name
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self._name} is not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError(f"{self._name} is already started")
        self._server = _Server(self._app)
        # A short poll interval keeps stop() quick: shutdown() waits for one poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=self._name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None or thread is None:
            return
        server.shutdown()  # werkzeug's serve_forever() then calls server_close() itself
        thread.join()
        server.server_close()  # idempotent; covers a serve thread that died early


class ServedFake(abc.ABC):
    """A fake served by a :class:`LoopbackServer` from its ``_wsgi``.

    ``_cond`` guards the fake's state, ``_stopping`` is set while it stops (a held or
    delayed answer goes out at once), and ``_errors`` collects the fake's own failures
    while answering, which ``stop`` raises so that its bugs cannot pass for a 500.
    """

    def __init__(self, name: str, what: str) -> None:
        """``name``: the serving thread's; ``what``: the fake in the error ``stop`` raises."""
        self._what = what
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._errors: list[Exception] = []
        self._server = LoopbackServer(self._wsgi, name)

    @abc.abstractmethod
    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request (each fake has its own endpoints)."""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self._server.url

    def _copy(self, items: Iterable[T]) -> list[T]:
        """A copy of one of the fake's records, taken under its lock."""
        with self._cond:
            return list(items)

    def start(self) -> Self:
        self._stopping.clear()
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving, leaving nothing open (held and delayed answers go out at once).
        Raises if the fake itself failed while answering."""
        with self._cond:
            self._stopping.set()
            self._cond.notify_all()
        self._server.stop()
        with self._cond:
            errors, self._errors = self._errors, []
        if errors:
            raise RuntimeError(f"the {self._what} failed {len(errors)} time(s)") from errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class Scripted:
    """An answer queued by ``fail_next``: ``body`` None for the fake's own error answer,
    ``bytes``/``str`` sent as is, anything else as JSON."""

    status: int
    headers: Mapping[str, str]
    body: Any

    def response(self, error: Callable[[int], Response], json_type: str) -> Response:
        """The answer; ``error(status)`` for a None body, ``json_type`` the Content-Type of
        a JSON one."""
        if self.status in (204, 304):
            response = Response(status=self.status)
        elif self.body is None:
            response = error(self.status)
        elif isinstance(self.body, bytes | str):
            response = Response(self.body, status=self.status)
        else:
            response = Response(json.dumps(self.body), status=self.status, content_type=json_type)
        response.headers.update(self.headers)
        return response
