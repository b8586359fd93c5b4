"""A stateful fake of the few GitHub REST endpoints the bridge calls, with failure injection.

It runs a real threaded HTTP server on ``127.0.0.1`` (port 0) inside the test process and
checks what GitHub checks (see ``/work/shared/reference/github.md``), stricter on purpose
where that proves the bridge sends exactly the documented request (``Accept`` and
``X-GitHub-Api-Version`` must be the documented values, else 400).

A request whose method and path match no endpoint is answered 404. A request to
``POST /repos/{owner}/{repo}/dispatches`` then meets, in this order:

1. ``delay_next``: the request is held, then carries on below (a client that timed out
   still gets its dispatch accepted, as on GitHub: its retry makes a duplicate);
2. ``set_down``: the outage status, consuming nothing;
3. scripted answers (``fail_next``, ``rate_limit_next``, ``secondary_rate_limit_next``),
   one per request in the order queued, whatever the request holds: an outage or a limit
   strikes before GitHub looks at a request. So a test that wants a real check's answer
   must not leave scripted answers queued;
4. the real checks: credential (401), repository visible to the credential (404),
   headers (403 User-Agent; 400 Accept, API version, Content-Type), body (400, 422);
5. 204, recorded in ``dispatches``.

Every request, whatever its answer, is recorded in ``requests``. Error bodies are shaped
like GitHub's; every answer carries ``x-ratelimit-*`` headers counting down per presented
credential (informational only: the limit itself is only hit through
``rate_limit_next``). "Now" is always the injected ``clock``. The App endpoints
(``/app/installations/...``, ``/repos/{owner}/{repo}/installation``) take a JWT of the
configured App and no injected failures.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes._github_auth import Credentials, Minted
from tests.fakes._github_rules import (
    RATE_DOCS,
    Reject,
    check_dispatch_body,
    check_dispatch_headers,
    error_body,
    json_response,
    phrase,
    presented_credential,
)
from tests.fakes._server import LoopbackServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["Dispatch", "FakeGitHub", "Minted", "Seen"]

RATE_LIMIT = 5000
_ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"
_ROUTES = [  # path, method, name of the FakeGitHub method answering it
    ("/repos/<owner>/<repo>/dispatches", "POST", "_dispatch"),
    ("/repos/<owner>/<repo>/installation", "GET", "_repo_installation"),
    ("/app/installations/<int:installation_id>/access_tokens", "POST", "_access_token"),
    ("/app/installations/<int:installation_id>", "GET", "_installation"),
]


@dataclass(frozen=True)
class Dispatch:
    """An accepted (204) repository dispatch."""

    repo: str  # "owner/repo" as it appeared in the path
    event_type: str
    client_payload: dict[str, Any]  # {} when the request had none
    headers: dict[str, str]  # names lower-cased
    body: bytes
    received_at: float  # clock()
    token: str


@dataclass(frozen=True)
class Seen:
    """Any request, with the status it was answered."""

    method: str
    path: str
    status: int
    time: float  # clock()


@dataclass(frozen=True)
class _Scripted:
    status: int
    headers: Mapping[str, str]
    body: Any


class FakeGitHub:
    """See the module docstring. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = ("ghp_fake_token",),
        repositories: Iterable[str] | None = None,
        app_id: int | None = None,
        app_public_key_pem: bytes | None = None,
        installations: Mapping[str, int] | None = None,
        token_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._auth = Credentials(
            tokens=tokens,
            repositories=repositories,
            app_id=app_id,
            app_public_key_pem=app_public_key_pem,
            installations=installations,
            token_ttl=token_ttl,
            clock=clock,
        )
        self._clock = clock
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._delays: deque[float] = deque()
        self._script: deque[_Scripted] = deque()
        self._down: int | None = None
        self._windows: dict[str, tuple[float, int]] = {}  # credential -> (reset, used)
        self._dispatches: list[Dispatch] = []
        self._requests: list[Seen] = []
        self._errors: list[Exception] = []
        self._server = LoopbackServer(self._wsgi, "fake-github")
        self._urls = Map(
            [Rule(path, methods=[method], endpoint=name) for path, method, name in _ROUTES],
            merge_slashes=False,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the bridge's ``github.api_url``."""
        return self._server.url

    def start(self) -> FakeGitHub:
        self._stopping.clear()
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving, leaving nothing open (a held ``delay_next`` request goes on at once).
        Raises if the fake itself failed while answering, so its bugs cannot pass for a 500."""
        self._stopping.set()
        self._server.stop()
        with self._cond:
            errors, self._errors = self._errors, []
        if errors:
            raise RuntimeError(f"the fake GitHub failed {len(errors)} time(s)") from errors[0]

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- failure injection ---------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``count`` dispatches with ``status``. ``body``: None for a GitHub-style
        message, ``bytes``/``str`` sent as is, anything else as JSON."""
        with self._cond:
            self._script.extend([_Scripted(status, dict(headers or {}), body)] * count)

    def rate_limit_next(self, reset_at: float, *, count: int = 1) -> None:
        """Answer the next ``count`` dispatches as GitHub's primary rate limit (403)."""
        headers = {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": str(RATE_LIMIT),
            "x-ratelimit-reset": str(math.ceil(reset_at)),
        }
        body = error_body("API rate limit exceeded for user ID 1.", RATE_DOCS, 403)
        self.fail_next(403, count=count, headers=headers, body=body)

    def secondary_rate_limit_next(self, retry_after: int, *, count: int = 1) -> None:
        """Answer the next ``count`` dispatches as a secondary rate limit (403 + retry-after);
        ``x-ratelimit-remaining`` stays positive, as on GitHub."""
        message = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try"
            " again. If you reach out to GitHub Support for help, please include the request ID"
            " 0000:0000:0000000:0000000:00000000."
        )
        body = error_body(message, RATE_DOCS + "#about-secondary-rate-limits", 403)
        self.fail_next(403, count=count, headers={"retry-after": str(retry_after)}, body=body)

    def set_down(self, down: bool, status: int = 503) -> None:
        """While down, every dispatch is answered ``status`` (scripted answers wait)."""
        with self._cond:
            self._down = status if down else None

    def delay_next(self, seconds: float, *, count: int = 1) -> None:
        """Hold the next ``count`` dispatches ``seconds`` before answering them."""
        with self._cond:
            self._delays.extend([seconds] * count)

    def revoke_token(self, token: str) -> None:
        """A static or minted token stops working (401)."""
        self._auth.revoke(token)

    # -- what it saw ---------------------------------------------------------------------------

    @property
    def dispatches(self) -> list[Dispatch]:
        with self._cond:
            return list(self._dispatches)

    @property
    def requests(self) -> list[Seen]:
        with self._cond:
            return list(self._requests)

    @property
    def minted(self) -> list[Minted]:
        return self._auth.minted

    def wait_for_dispatches(self, n: int, timeout: float = 10.0) -> list[Dispatch]:
        """Block until at least ``n`` dispatches were accepted; AssertionError after ``timeout``."""
        with self._cond:
            if self._cond.wait_for(lambda: len(self._dispatches) >= n, timeout):
                return list(self._dispatches)
            seen = "".join(f"\n  {s.method} {s.path} -> {s.status}" for s in self._requests)
            raise AssertionError(
                f"expected {n} accepted dispatch(es) within {timeout} s, got"
                f" {len(self._dispatches)}; requests seen:{seen or ' none'}"
            )

    def wait_for_event_ids(self, ids: Iterable[str], timeout: float = 10.0) -> list[Dispatch]:
        """Block until every one of ``ids`` arrived as a ``bridge_event_id``, however many
        dispatches that takes (a repeat counts once); AssertionError after ``timeout``."""
        wanted = set(ids)

        def arrived() -> set[str]:
            return {str(d.client_payload.get("bridge_event_id")) for d in self._dispatches}

        with self._cond:
            if self._cond.wait_for(lambda: wanted <= arrived(), timeout):
                return list(self._dispatches)
            missing = sorted(wanted - arrived())
            raise AssertionError(
                f"{len(missing)} of {len(wanted)} event(s) not dispatched within {timeout} s:"
                f" {', '.join(missing[:10])}"
            )

    def attempts_for(self, repo: str) -> list[Seen]:
        """Every dispatch POST to ``repo`` ("owner/repo"), whatever its answer."""
        path = f"/repos/{repo}/dispatches".lower()
        return [s for s in self.requests if s.method == "POST" and s.path.lower() == path]

    # -- serving -------------------------------------------------------------------------------

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            try:
                endpoint, args = self._urls.bind_to_environ(environ).match()
            except HTTPException:  # no route, wrong method, redirect: GitHub says 404
                raise Reject(404, "Not Found") from None
            response: Response = getattr(self, endpoint)(request, **args)
        except Reject as exc:
            response = exc.response()
        except Exception as exc:  # a bug of the fake: see stop()
            with self._cond:
                self._errors.append(exc)
            response = Reject(500, f"the fake GitHub failed: {exc!r}").response()
        credential = presented_credential(request) or f"ip:{request.remote_addr}"
        with self._cond:
            for name, value in self._count(credential).items():
                response.headers.setdefault(name, value)
            self._requests.append(
                Seen(request.method, request.path, response.status_code, self._clock())
            )
        return response(environ, start_response)

    def _count(self, credential: str) -> dict[str, str]:
        now = self._clock()
        reset, used = self._windows.get(credential, (0.0, 0))
        if now >= reset:
            reset, used = now + 3600, 0
        self._windows[credential] = (reset, used + 1)
        return {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(max(RATE_LIMIT - used - 1, 0)),
            "x-ratelimit-reset": str(math.ceil(reset)),
            "x-ratelimit-used": str(used + 1),
            "x-ratelimit-resource": "core",
        }

    def _dispatch(self, request: Request, owner: str, repo: str) -> Response:
        with self._cond:
            delay = self._delays.popleft() if self._delays else 0.0
        if delay:
            self._stopping.wait(delay)
        with self._cond:
            down = self._down
            scripted = self._script.popleft() if down is None and self._script else None
        if down is not None:
            raise Reject(down, phrase(down))
        if scripted is not None:
            return _scripted_response(scripted)
        full = f"{owner}/{repo}"
        token = self._auth.dispatch_token(request, full)
        check_dispatch_headers(request)
        body = request.get_data()
        event_type, client_payload = check_dispatch_body(body)
        headers = {name.lower(): value for name, value in request.headers.items()}
        dispatch = Dispatch(full, event_type, client_payload, headers, body, self._clock(), token)
        with self._cond:
            self._dispatches.append(dispatch)
            self._cond.notify_all()
        return Response(status=204)

    def _access_token(self, request: Request, installation_id: int) -> Response:
        self._auth.verify_app_jwt(request)
        minted = self._auth.mint(installation_id)
        body = {
            "token": minted.token,
            "expires_at": datetime.fromtimestamp(minted.expires_at, UTC).strftime(_ISO_UTC),
            "permissions": {"contents": "write"},
            "repository_selection": "selected",
        }
        return json_response(201, body)

    def _repo_installation(self, request: Request, owner: str, repo: str) -> Response:
        self._auth.verify_app_jwt(request)
        return self._installation_response(self._auth.installation_of(f"{owner}/{repo}"))

    def _installation(self, request: Request, installation_id: int) -> Response:
        self._auth.verify_app_jwt(request)
        return self._installation_response(installation_id)

    def _installation_response(self, installation_id: int) -> Response:
        account = {"login": self._auth.owner_of(installation_id), "type": "Organization"}
        body = {
            "id": installation_id,
            "app_id": self._auth.app_id,
            "account": account,
            "target_type": "Organization",  # PyGithub picks the account's class by it
            "repository_selection": "selected",
        }
        return json_response(200, body)


def _scripted_response(scripted: _Scripted) -> Response:
    if scripted.status in (204, 304):
        response = Response(status=scripted.status)
    elif scripted.body is None:
        response = Reject(scripted.status, phrase(scripted.status)).response()
    elif isinstance(scripted.body, bytes | str):
        response = Response(scripted.body, status=scripted.status)
    else:
        response = json_response(scripted.status, scripted.body)
    response.headers.update(scripted.headers)
    return response
