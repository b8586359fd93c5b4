"""What the fakes share, served by :class:`harness.loopback.LoopbackServer`.

:class:`ServedFake` is the lifecycle of a fake: ``start`` / ``stop``, use as a context
manager, ``url``, and the fake's own failures raised by ``stop``; :class:`Scripted`, an
answer a fake's ``fail_next`` queues.
"""

from __future__ import annotations

import abc
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from werkzeug.wrappers import Response

from harness.loopback import LoopbackServer

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

T = TypeVar("T")


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
