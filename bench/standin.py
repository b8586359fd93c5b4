"""A GitHub stand-in for the benchmarks: ``POST /repos/<o>/<r>/dispatches`` on loopback.

It runs in the benchmark's own process (served by :mod:`harness.loopback`, HTTP/1.1
keep-alive as GitHub: the bridge pools its connections) and answers each dispatch 204 after
``delay`` seconds, or 503 while it is "down". The bridge's look-ups of the workflow runs
its dispatches started (``GET /repos/<o>/<r>/actions/runs``) get, after the same delay,
an empty list with an ETag, and 304 when they present it: no run ever appears, as for a
repository without a workflow that listens; they are counted, not checked.

For every 204 it records, by ``client_payload.bridge_event_id``, how many times that
event arrived and when first, and by ``client_payload.bench_marker`` (copied from the
webhook by the benchmark's route) when each arrived. A dispatch that differs from the
one GitHub documents (path, ``Authorization``, ``Accept``, ``X-GitHub-Api-Version``, a
body without the event id) is answered 204 but counted as malformed. Nothing here
listens beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from bench.common import BENCH_SECRETS
from harness.loopback import LoopbackServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

DISPATCH_PATH = re.compile(r"^/repos/[^/]+/[^/]+/dispatches$")
RUNS_PATH = re.compile(r"^/repos/[^/]+/[^/]+/actions/runs$")
_UNAVAILABLE = b'{"message":"Service Unavailable (bench stand-in outage)"}'
_NO_RUNS = b'{"total_count":0,"workflow_runs":[]}'
_NOT_FOUND = b'{"message":"Not Found"}'
_ETAG = '"bench-no-runs"'


@dataclass(frozen=True)
class Arrival:
    at: float  # time.time() when the request had been read, before any delay
    event_id: str | None


def _problem(path: str, headers: Any) -> str | None:
    """The first way the request differs from the documented dispatch request, if any."""
    if not DISPATCH_PATH.match(path):
        return "unexpected path"
    expected = {
        "Authorization": f"Bearer {BENCH_SECRETS['BENCH_GITHUB_TOKEN']}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    for name, value in expected.items():
        if headers.get(name) != value:
            return f"header {name} is missing or wrong"
    return None


class GitHubStandIn:
    """Answers dispatches 204 after ``delay`` s (503 while ``down``); counts what it saw.

    Use as a context manager: the server stops (and its port closes) on exit.
    """

    def __init__(self, *, delay: float = 0.0, down: bool = False) -> None:
        self.delay = delay
        self.cond = threading.Condition()
        self._down = down
        self.recovered_at: float | None = None
        self.unavailable = 0  # 503 answers
        self.ok = 0  # 204 answers
        self.malformed: list[str] = []
        self.run_lookups = 0  # GETs of the runs list (200 or 304)
        self.other_gets = 0  # GETs of anything else (404)
        self.seen: dict[str, int] = {}  # bridge_event_id -> 204s
        self.first_at: dict[str, float] = {}  # bridge_event_id -> first 204's arrival
        self.markers: dict[str, list[Arrival]] = {}
        self._expected: set[str] = set()
        self._missing = 0
        self._server = LoopbackServer(partial(_wsgi, self), "github-stand-in")

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> GitHubStandIn:
        self._server.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self._server.stop()

    # -- control ----------------------------------------------------------------------

    def set_down(self, down: bool) -> float:
        """Start or end an outage; returns the time (``time.time()``) of the change."""
        with self.cond:
            now = time.time()
            if self._down and not down:
                self.recovered_at = now
            self._down = down
            return now

    def wait_for_ids(self, ids: Iterable[str], timeout: float) -> bool:
        """Wait until every event in ``ids`` has been answered 204 at least once."""
        with self.cond:
            self._expected = set(ids)
            self._missing = len(self._expected - self.seen.keys())
            return self.cond.wait_for(lambda: self._missing <= 0, timeout)

    def wait_for_markers(self, markers: set[str], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: markers <= self.markers.keys(), timeout)

    def counts(self) -> tuple[int, int]:
        """(503 answers, 204 answers) so far."""
        with self.cond:
            return self.unavailable, self.ok

    def lookups(self) -> str:
        """The GETs it answered, as a phrase for a summary."""
        with self.cond:
            return f"run look-ups {self.run_lookups}, other GETs {self.other_gets}"

    def delivered(self) -> dict[str, int]:
        """A copy of bridge_event_id -> number of 204s."""
        with self.cond:
            return dict(self.seen)

    # -- the handler's side -----------------------------------------------------------

    def answer(self, path: str, headers: Any, body: bytes) -> int:
        """Record one dispatch that arrived at ``time.time()``; the status to answer."""
        at = time.time()
        problem = _problem(path, headers)
        try:
            payload = json.loads(body)["client_payload"]
            event_id, marker = payload.get("bridge_event_id"), payload.get("bench_marker")
        except (ValueError, KeyError, TypeError, AttributeError):
            event_id, marker = None, None
        if not isinstance(event_id, str):
            event_id = None
            problem = problem or "no client_payload.bridge_event_id"
        with self.cond:
            if self._down:
                self.unavailable += 1
                return 503
            self.ok += 1
            if problem:
                self.malformed.append(f"{path}: {problem}")
            if isinstance(marker, str):
                self.markers.setdefault(marker, []).append(Arrival(at, event_id))
            if event_id is not None:
                count = self.seen.get(event_id, 0) + 1
                self.seen[event_id] = count
                if count == 1:
                    self.first_at[event_id] = at
                    if event_id in self._expected:
                        self._missing -= 1
            self.cond.notify_all()
            return 204


def _wsgi(standin: GitHubStandIn, environ: WSGIEnvironment, start_response: StartResponse
          ) -> Iterable[bytes]:  # fmt: skip
    """Answer one request: a dispatch (POST) or a look-up (GET)."""
    request = Request(environ)
    if request.method == "POST":
        body = request.get_data()
        status = standin.answer(request.path, request.headers, body)
        if standin.delay > 0:
            time.sleep(standin.delay)
        if status == 503:
            response = Response(_UNAVAILABLE, 503, content_type="application/json")
        else:
            response = Response(status=status)
        return response(environ, start_response)
    runs = bool(RUNS_PATH.match(request.path))
    with standin.cond:
        if runs:
            standin.run_lookups += 1
        else:
            standin.other_gets += 1
    if standin.delay > 0:
        time.sleep(standin.delay)
    if runs and request.headers.get("If-None-Match") == _ETAG:
        response = Response(status=304, headers={"ETag": _ETAG})
    elif runs:
        response = Response(_NO_RUNS, 200, {"ETag": _ETAG}, content_type="application/json")
    else:
        response = Response(_NOT_FOUND, 404, content_type="application/json")
    return response(environ, start_response)
