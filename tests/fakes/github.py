"""A stateful fake of the few GitHub REST endpoints the bridge calls, with failure injection.

It runs a real threaded HTTP server on ``127.0.0.1`` (port 0) inside the test process and
checks what GitHub's REST API documentation says GitHub checks, stricter on purpose
where that proves the bridge sends exactly the documented request (``Accept`` and
``X-GitHub-Api-Version`` must be the documented values, else 400).

A request whose method and path match no endpoint is answered 404. A dispatch, that is
``POST /repos/{owner}/{repo}/dispatches`` or
``POST /repos/{owner}/{repo}/actions/workflows/{id or file name}/dispatches``, then meets,
in this order:

1. ``delay_next``: the request is held, then carries on below (a client that timed out
   still gets its dispatch accepted, as on GitHub: its retry makes a duplicate);
2. ``set_down``: the outage status, consuming nothing;
3. scripted answers (``fail_next``, ``rate_limit_next``, ``secondary_rate_limit_next``),
   one per request in the order queued, whatever the request holds: an outage or a limit
   strikes before GitHub looks at a request. So a test that wants a real check's answer
   must not leave scripted answers queued;
4. the real checks: credential (401), repository visible to the credential (404),
   headers (403 User-Agent; 400 Accept, API version, Content-Type), permission (403
   ``contents=write`` for a repository dispatch, ``actions=write`` for a workflow
   dispatch), then for a workflow dispatch the workflow (404) and the body (400, 422:
   the ``workflow_dispatch`` trigger, ``ref``, ``inputs``), for a repository dispatch the
   body (400, 422);
5. a repository dispatch: 204, recorded in ``dispatches``, and a run started for each
   workflow of the repository listening to it (``add_workflow``); a workflow dispatch:
   a run started, recorded in ``workflow_dispatches``, 204 or, asked for
   ``return_run_details``, 200 with the run's id and addresses.

Reads of workflow runs (``GET .../actions/runs``, ``.../actions/runs/{id}``,
``.../actions/workflows/{id}/runs``) meet the same steps with their own injections
(``to="runs"``), then credential, headers (no Content-Type), ``actions=read`` (403), and
answer 200 with an ``ETag``, or 304 with no body when ``If-None-Match`` matches it. A run
moves by the clock: queued, in progress, completed (see ``add_workflow``).

Every request, whatever its answer, is recorded in ``requests`` (run reads also in
``run_requests``). Error bodies are shaped like GitHub's; every answer carries
``x-ratelimit-*`` headers counting down per presented credential, a 304 costing nothing
(informational only: the limit itself is only hit through ``rate_limit_next``). "Now" is
always the injected ``clock``. The App endpoints (``/app/installations/...``,
``/repos/{owner}/{repo}/installation``) take a JWT of the configured App and no injected
failures.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes._github_auth import Credentials, Minted
from tests.fakes._github_rules import (
    DISPATCH_DOCS,
    RATE_DOCS,
    RUN_DOCS,
    RUNS_DOCS,
    WORKFLOW_DISPATCH_DOCS,
    Reject,
    check_dispatch_body,
    check_dispatch_headers,
    check_read_headers,
    error_body,
    json_response,
    not_accessible,
    phrase,
    presented_credential,
)
from tests.fakes._github_runs import (
    DEFAULT_BRANCH,
    Run,
    RunState,
    Workflow,
    check_workflow_dispatch_body,
    dispatched_inputs,
    iso,
    new_workflow,
    render,
    repository_dispatch_context,
    run_json,
    select_runs,
    workflow_dispatch_context,
)
from tests.fakes._server import Scripted, ServedFake

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "Dispatch",
    "FakeGitHub",
    "Minted",
    "Run",
    "RunReads",
    "Seen",
    "Workflow",
    "WorkflowDispatch",
]

RATE_LIMIT = 5000
Target = Literal["dispatches", "runs"]
_TARGETS: tuple[Target, ...] = ("dispatches", "runs")
_GRANTS = ("actions_read", "actions_write", "contents_write")
_ACTIONS = "/repos/<owner>/<repo>/actions"
_ROUTES = [  # path, method, name of the FakeGitHub method answering it
    ("/repos/<owner>/<repo>/dispatches", "POST", "_dispatch"),
    (f"{_ACTIONS}/workflows/<workflow>/dispatches", "POST", "_workflow_dispatch"),
    (f"{_ACTIONS}/runs", "GET", "_list_runs"),
    (f"{_ACTIONS}/runs/<int:run_id>", "GET", "_get_run"),
    (f"{_ACTIONS}/workflows/<workflow>/runs", "GET", "_list_runs"),
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
    run_ids: tuple[int, ...] = ()  # the runs it started (workflows listening to it)


@dataclass(frozen=True)
class WorkflowDispatch:
    """An accepted workflow dispatch (204 or 200)."""

    repo: str  # "owner/repo" as it appeared in the path
    workflow_id: int
    ref: str  # as sent
    inputs: dict[str, Any]  # as sent
    return_run_details: bool
    run_id: int
    headers: dict[str, str]  # names lower-cased
    body: bytes
    received_at: float  # clock()
    token: str


@dataclass(frozen=True)
class RunReads:
    """GET requests to the run endpoints, by answer."""

    ok: int  # 200
    not_modified: int  # 304: free of the rate limit
    failed: int  # anything else

    @property
    def total(self) -> int:
        return self.ok + self.not_modified + self.failed

    @property
    def charged(self) -> int:
        """The requests counted against the rate limit."""
        return self.ok + self.failed


@dataclass(frozen=True)
class Seen:
    """Any request, with the status it was answered."""

    method: str
    path: str
    status: int
    time: float  # clock()


class FakeGitHub(ServedFake):
    """See the module docstring. Use as a context manager, or ``start()`` / ``stop()``;
    ``url`` is the bridge's ``github.api_url``."""

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
        actions_read: bool = True,
        actions_write: bool = True,
        contents_write: bool = True,
        run_details: bool = True,
    ) -> None:
        """``actions_read`` / ``actions_write`` / ``contents_write``: what every credential
        may do (``set_permissions`` for one token). ``run_details=False``: GitHub Enterprise
        Server, where a workflow dispatch with ``return_run_details`` is a 422."""
        super().__init__("fake-github", "fake GitHub")
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
        self._delays: dict[Target, deque[float]] = {t: deque() for t in _TARGETS}
        self._script: dict[Target, deque[Scripted]] = {t: deque() for t in _TARGETS}
        self._down: dict[Target, int | None] = dict.fromkeys(_TARGETS)
        self._windows: dict[str, tuple[float, int]] = {}  # credential -> (reset, used)
        self._dispatches: list[Dispatch] = []
        self._workflow_dispatches: list[WorkflowDispatch] = []
        self._requests: list[Seen] = []
        self._run_requests: list[Seen] = []
        self._grants = dict(
            zip(_GRANTS, (actions_read, actions_write, contents_write), strict=True)
        )
        self._token_grants: dict[str, dict[str, bool]] = {}
        self._run_details = run_details
        self._workflows: dict[str, list[Workflow]] = {}  # repo lower-cased -> its workflows
        self._runs: list[RunState] = []
        self._workflow_ids = itertools.count(100_000_001)
        self._run_ids = itertools.count(12_000_000_001)  # over 2**32, as GitHub's are
        self._urls = Map(
            [Rule(path, methods=[method], endpoint=name) for path, method, name in _ROUTES],
            merge_slashes=False,
        )

    # -- failure injection ---------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        to: Target = "dispatches",
        count: int = 1,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``count`` dispatches (``to="runs"``: run reads) with ``status``.
        ``body``: None for a GitHub-style message, ``bytes``/``str`` sent as is, anything
        else as JSON."""
        with self._cond:
            self._script[to].extend([Scripted(status, dict(headers or {}), body)] * count)

    def rate_limit_next(
        self, reset_at: float, *, count: int = 1, to: Target = "dispatches"
    ) -> None:
        """Answer the next ``count`` dispatches (or run reads) as GitHub's primary rate limit
        (403)."""
        headers = {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": str(RATE_LIMIT),
            "x-ratelimit-reset": str(math.ceil(reset_at)),
        }
        body = error_body("API rate limit exceeded for user ID 1.", RATE_DOCS, 403)
        self.fail_next(403, count=count, headers=headers, body=body, to=to)

    def secondary_rate_limit_next(
        self, retry_after: int, *, count: int = 1, to: Target = "dispatches"
    ) -> None:
        """Answer the next ``count`` dispatches (or run reads) as a secondary rate limit (403 +
        retry-after); ``x-ratelimit-remaining`` stays positive, as on GitHub."""
        message = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try"
            " again. If you reach out to GitHub Support for help, please include the request ID"
            " 0000:0000:0000000:0000000:00000000."
        )
        body = error_body(message, RATE_DOCS + "#about-secondary-rate-limits", 403)
        headers = {"retry-after": str(retry_after)}
        self.fail_next(403, count=count, headers=headers, body=body, to=to)

    def set_down(self, down: bool, status: int = 503, *, to: Target = "dispatches") -> None:
        """While down, every dispatch (or run read) is answered ``status`` (scripted answers
        wait)."""
        with self._cond:
            self._down[to] = status if down else None

    def delay_next(self, seconds: float, *, count: int = 1, to: Target = "dispatches") -> None:
        """Hold the next ``count`` dispatches (or run reads) ``seconds`` before answering."""
        with self._cond:
            self._delays[to].extend([seconds] * count)

    def revoke_token(self, token: str) -> None:
        """A static or minted token stops working (401)."""
        self._auth.revoke(token)

    def set_permissions(
        self,
        token: str,
        *,
        actions_read: bool | None = None,
        actions_write: bool | None = None,
        contents_write: bool | None = None,
    ) -> None:
        """What one (static or minted) token may do; None leaves the fake's setting."""
        given = dict(zip(_GRANTS, (actions_read, actions_write, contents_write), strict=True))
        with self._cond:
            grants = self._token_grants.setdefault(token, {})
            grants.update({k: v for k, v in given.items() if v is not None})

    # -- workflows and runs --------------------------------------------------------------------

    def add_workflow(
        self,
        repo: str,
        path: str = ".github/workflows/deploy.yml",
        *,
        name: str = "Deploy",
        on: str | Iterable[str] = ("repository_dispatch",),
        types: Iterable[str] | None = None,
        inputs: Mapping[str, Mapping[str, Any]] | None = None,
        run_name: str | None = None,
        refs: Iterable[str] = (DEFAULT_BRANCH,),
        steps: Sequence[tuple[float | None, float | None, str]] | None = None,
        queued_for: float | None = 0.2,
        runs_for: float | None = 0.5,
        conclusion: str = "success",
    ) -> Workflow:
        """A workflow file on ``repo``'s default branch ("main").

        ``on``: "repository_dispatch" (starts on every event type, or those in ``types``)
        and/or "workflow_dispatch" (``inputs`` as in the YAML: ``{"model": {"required":
        True}, "env": {"type": "choice", "options": [...], "default": "prod"}}``; ``refs``
        the branches and tags it may run on). ``run_name``: the ``run-name:`` template of the
        ``display_title`` (``${{ github.event.client_payload.x }}``, ``${{
        github.event.action }}``, ``${{ inputs.x }}``, ``${{ github.event.inputs.x }}``...;
        else the title is ``name``). Each run is queued ``queued_for`` s, in progress
        ``runs_for`` s (None: until ``finish_run``), then completed with ``conclusion``;
        ``steps``, one ``(queued_for, runs_for, conclusion)`` per run in order (the last
        repeating), overrides those three. ``updated_at`` is the last transition's time; as
        GitHub's, the API shows it in whole seconds, so two transitions within one second
        show the same text (the status, and so the ETag, still change)."""
        with self._cond:
            if self._auth.repositories is not None and repo.lower() not in self._auth.repositories:
                raise ValueError(f"{repo} is not one of the fake's repositories")
            existing = self._workflows.setdefault(repo.lower(), [])
            if any(w.path == path for w in existing):
                raise ValueError(f"{repo} already has {path}")
            workflow = new_workflow(
                next(self._workflow_ids),
                repo,
                path,
                name=name,
                on=on,
                types=types,
                inputs=inputs,
                run_name=run_name,
                refs=refs,
                steps=steps,
                queued_for=queued_for,
                runs_for=runs_for,
                conclusion=conclusion,
            )
            existing.append(workflow)
            return workflow

    def add_run(
        self,
        repo: str,
        path: str = ".github/workflows/deploy.yml",
        *,
        event: str = "workflow_dispatch",
        ref: str = DEFAULT_BRANCH,
        actor: str = "a-developer",
        created_at: float | None = None,
    ) -> Run:
        """A run of ``repo``'s workflow at ``path`` that the bridge did not start: someone's
        manual run (``event`` "workflow_dispatch") or another event's, triggered by
        ``actor``, created at ``created_at`` (default now), with the workflow's timing."""
        with self._cond:
            workflow = next(w for w in self._workflows[repo.lower()] if w.path == path)
            when = self._clock() if created_at is None else created_at
            context = workflow_dispatch_context(repo, ref, {})
            state = self._start_run(workflow, repo, event, ref, context, when)
            state.actor = actor
            self._cond.notify_all()
            return state.snapshot(self._clock())

    def finish_run(self, run_id: int, conclusion: str = "cancelled") -> Run:
        """Complete a run now with ``conclusion`` (as cancelling it, or as a run that was left
        waiting with ``runs_for=None``); ValueError if it already completed."""
        now = self._clock()
        with self._cond:
            state = self._run_state(run_id)
            if state.phase(now)[0] == "completed":
                raise ValueError(f"run {run_id} already completed")
            if conclusion not in ("success", "failure", "cancelled", "skipped", "timed_out"):
                raise ValueError(f"conclusion {conclusion!r} is not one a run ends with")
            state.finished = (now, conclusion)
            self._cond.notify_all()
            return state.snapshot(now)

    # -- what it saw ---------------------------------------------------------------------------

    @property
    def dispatches(self) -> list[Dispatch]:
        return self._copy(self._dispatches)

    @property
    def requests(self) -> list[Seen]:
        return self._copy(self._requests)

    @property
    def minted(self) -> list[Minted]:
        return self._auth.minted

    @property
    def workflow_dispatches(self) -> list[WorkflowDispatch]:
        return self._copy(self._workflow_dispatches)

    @property
    def runs(self) -> list[Run]:
        """Every run, oldest first, as it stands now."""
        now = self._clock()
        with self._cond:
            return [state.snapshot(now) for state in self._runs]

    def run(self, run_id: int) -> Run:
        """One run as it stands now (KeyError if there is none)."""
        now = self._clock()
        with self._cond:
            return self._run_state(run_id).snapshot(now)

    @property
    def run_requests(self) -> list[Seen]:
        """Every GET to a run endpoint, with its answer."""
        return self._copy(self._run_requests)

    @property
    def run_reads(self) -> RunReads:
        """``run_requests`` counted by answer: "following a run cost N requests"."""
        statuses = [s.status for s in self.run_requests]
        ok, not_modified = statuses.count(200), statuses.count(304)
        return RunReads(ok, not_modified, len(statuses) - ok - not_modified)

    def wait_for_runs(self, n: int, timeout: float = 10.0) -> list[Run]:
        """Block until at least ``n`` runs were started; AssertionError after ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._runs) >= n, timeout):
                raise AssertionError(
                    f"expected {n} run(s) within {timeout} s, got {len(self._runs)}"
                )
        return self.runs

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
        endpoint = ""
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
        status = response.status_code
        with self._cond:
            # A 304 does not count against the primary rate limit.
            for name, value in self._count(credential, charge=status != 304).items():
                response.headers.setdefault(name, value)
            seen = Seen(request.method, request.path, status, self._clock())
            self._requests.append(seen)
            if endpoint in ("_list_runs", "_get_run"):
                self._run_requests.append(seen)
        return response(environ, start_response)

    def _count(self, credential: str, *, charge: bool = True) -> dict[str, str]:
        now = self._clock()
        reset, used = self._windows.get(credential, (0.0, 0))
        if now >= reset:
            reset, used = now + 3600, 0
        used += charge
        self._windows[credential] = (reset, used)
        return {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(max(RATE_LIMIT - used, 0)),
            "x-ratelimit-reset": str(math.ceil(reset)),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
        }

    def _injected(self, target: Target) -> Response | None:
        """Steps 1-3 of the module docstring: the answer they script, or None to go on."""
        with self._cond:
            delays = self._delays[target]
            delay = delays.popleft() if delays else 0.0
        if delay:
            self._stopping.wait(delay)
        with self._cond:
            down, script = self._down[target], self._script[target]
            scripted = script.popleft() if down is None and script else None
        if down is not None:
            raise Reject(down, phrase(down))
        if scripted is not None:
            return scripted.response(_error, "application/json; charset=utf-8")
        return None

    def _require(self, token: str, grant: str, documentation_url: str) -> None:
        """403 unless ``token`` has ``grant`` ("actions_read" ...)."""
        with self._cond:
            allowed = self._token_grants.get(token, {}).get(grant, self._grants[grant])
        if not allowed:
            permission, _, access = grant.partition("_")
            raise not_accessible(f"{permission}={access}", documentation_url)

    def _dispatch(self, request: Request, owner: str, repo: str) -> Response:
        if (injected := self._injected("dispatches")) is not None:
            return injected
        full = f"{owner}/{repo}"
        token = self._auth.dispatch_token(request, full)
        check_dispatch_headers(request)
        self._require(token, "contents_write", DISPATCH_DOCS)
        body = request.get_data()
        event_type, client_payload = check_dispatch_body(body)
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self._cond:
            now = self._clock()
            context = repository_dispatch_context(full, event_type, client_payload)
            run_ids = tuple(
                self._start_run(
                    workflow,
                    full,
                    "repository_dispatch",
                    DEFAULT_BRANCH,
                    context,
                    now,
                    client_payload=client_payload,
                ).id
                for workflow in self._workflows.get(full.lower(), [])
                if workflow.listens_to(event_type)
            )
            dispatch = Dispatch(
                full, event_type, client_payload, headers, body, now, token, run_ids
            )
            self._dispatches.append(dispatch)
            self._cond.notify_all()
        return Response(status=204)

    def _workflow_dispatch(
        self, request: Request, owner: str, repo: str, workflow: str
    ) -> Response:
        if (injected := self._injected("dispatches")) is not None:
            return injected
        full = f"{owner}/{repo}"
        token = self._auth.dispatch_token(request, full)
        check_dispatch_headers(request, WORKFLOW_DISPATCH_DOCS)
        self._require(token, "actions_write", WORKFLOW_DISPATCH_DOCS)
        found = self._workflow(full, workflow)
        raw = request.get_data()
        body = check_workflow_dispatch_body(raw, found, run_details=self._run_details)
        inputs = dispatched_inputs(body.inputs, found.inputs)
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self._cond:
            now = self._clock()
            context = workflow_dispatch_context(full, body.branch, inputs)
            run = self._start_run(
                found, full, "workflow_dispatch", body.branch, context, now, inputs=inputs
            )
            self._workflow_dispatches.append(
                WorkflowDispatch(
                    full,
                    found.id,
                    body.ref,
                    body.inputs,
                    body.return_run_details,
                    run.id,
                    headers,
                    raw,
                    now,
                    token,
                )
            )
            self._cond.notify_all()
        if not body.return_run_details:
            return Response(status=204)
        details = {"workflow_run_id": run.id, "run_url": run.api_url, "html_url": run.html_url}
        return json_response(200, details)

    def _start_run(
        self,
        workflow: Workflow,
        repo: str,
        event: str,
        branch: str,
        context: Mapping[str, Any],
        now: float,
        *,
        client_payload: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
    ) -> RunState:
        """A new run of ``workflow`` (the caller holds the lock)."""
        run_id = next(self._run_ids)
        number = 1 + sum(r.workflow.id == workflow.id for r in self._runs)
        title = workflow.name if workflow.run_name is None else render(workflow.run_name, context)
        owner, _, name = repo.partition("/")
        state = RunState(
            id=run_id,
            workflow=workflow,
            repo=repo,
            run_number=number,
            event=event,
            head_branch=branch,
            display_title=title,
            created_at=now,
            timing=workflow.timing(number),
            api_url=f"{self.url}/repos/{owner}/{name}/actions/runs/{run_id}",
            html_url=f"{self.url}/{owner}/{name}/actions/runs/{run_id}",
            client_payload=client_payload,
            inputs=inputs,
        )
        self._runs.append(state)
        return state

    def _workflow(self, repo: str, id_or_file: str) -> Workflow:
        """``repo``'s workflow by numeric id or file name (404)."""
        with self._cond:
            for workflow in self._workflows.get(repo.lower(), []):
                if id_or_file in (str(workflow.id), workflow.file_name):
                    return workflow
        raise Reject(404, "Not Found", WORKFLOW_DISPATCH_DOCS)

    def _run_state(self, run_id: int) -> RunState:
        for state in self._runs:
            if state.id == run_id:
                return state
        raise KeyError(f"no run {run_id}")

    def _read_runs(self, request: Request, owner: str, repo: str, docs: str) -> str:
        """Step 4 for a run read: the credential, headers, permission; the full name."""
        full = f"{owner}/{repo}"
        token = self._auth.dispatch_token(request, full)
        check_read_headers(request, docs)
        self._require(token, "actions_read", docs)
        return full

    def _list_runs(
        self, request: Request, owner: str, repo: str, workflow: str | None = None
    ) -> Response:
        if (injected := self._injected("runs")) is not None:
            return injected
        full = self._read_runs(request, owner, repo, RUNS_DOCS)
        chosen = None if workflow is None else self._workflow(full, workflow).id
        now = self._clock()
        with self._cond:
            runs = [
                state.snapshot(now)
                for state in self._runs
                if state.repo.lower() == full.lower() and chosen in (None, state.workflow.id)
            ]
        page = select_runs(runs, request.args)
        body = {"total_count": page.total_count, "workflow_runs": [run_json(r) for r in page.runs]}
        links = []
        for rel, number, wanted in (
            ("prev", page.page - 1, page.page > 1),
            ("next", page.page + 1, page.page < page.last_page),
            ("last", page.last_page, page.page < page.last_page),
            ("first", 1, page.page > 1),
        ):
            if wanted:
                query = urlencode({**request.args.to_dict(), "page": number})
                links.append(f'<{request.base_url}?{query}>; rel="{rel}"')
        return _conditional(request, body, {"Link": ", ".join(links)} if links else {})

    def _get_run(self, request: Request, owner: str, repo: str, run_id: int) -> Response:
        if (injected := self._injected("runs")) is not None:
            return injected
        full = self._read_runs(request, owner, repo, RUN_DOCS)
        now = self._clock()
        with self._cond:
            found = [
                s.snapshot(now)
                for s in self._runs
                if s.id == run_id and s.repo.lower() == full.lower()
            ]
        if not found:
            raise Reject(404, "Not Found", RUN_DOCS)
        return _conditional(request, run_json(found[0]))

    def _access_token(self, request: Request, installation_id: int) -> Response:
        self._auth.verify_app_jwt(request)
        minted = self._auth.mint(installation_id)
        body = {
            "token": minted.token,
            "expires_at": iso(minted.expires_at),
            "permissions": self._installation_permissions(),
            "repository_selection": "selected",
        }
        return json_response(201, body)

    def _installation_permissions(self) -> dict[str, str]:
        with self._cond:
            grants = dict(self._grants)
        permissions = {"contents": "write" if grants["contents_write"] else "read"}
        if grants["actions_write"] or grants["actions_read"]:
            permissions["actions"] = "write" if grants["actions_write"] else "read"
        permissions["metadata"] = "read"
        return permissions

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


def _error(status: int) -> Response:
    return Reject(status, phrase(status)).response()


def _conditional(request: Request, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    """200 with ``body`` and its ``ETag``, or 304 with no body when ``If-None-Match`` holds it."""
    data = json.dumps(body).encode()
    etag = 'W/"' + hashlib.sha256(data).hexdigest() + '"'
    common = {
        "ETag": etag,
        "Cache-Control": "private, max-age=60, s-maxage=60",
        "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
    }
    if _etag_matches(request.headers.get("If-None-Match"), etag):
        response = Response(status=304)
    else:
        response = Response(data, status=200, content_type="application/json; charset=utf-8")
        response.headers.update(headers or {})
    response.headers.update(common)
    return response


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison, which ``If-None-Match`` uses."""
    if not if_none_match:
        return False
    opaque = etag.removeprefix("W/")
    given = [tag.strip() for tag in if_none_match.split(",")]
    return any(tag == "*" or tag.removeprefix("W/") == opaque for tag in given)
