"""Send a repository dispatch to GitHub, exactly as GitHub documents the request.

One retry layer only: this module makes one attempt, never follows a redirect, and
classifies the answer as delivered, transient (:class:`TransientDeliveryError`, with
the earliest time GitHub allows a retry) or permanent (:class:`PermanentDeliveryError`,
with GitHub's message). The worker decides when to try again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import requests

from bridge import http
from bridge.errors import (
    DeliveryError,
    OutboundError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from bridge.http import USER_AGENT, retry_not_before
from bridge.store.models import NewRun

log = logging.getLogger(__name__)
API_VERSION = "2022-11-28"
# Without a header that says how long, GitHub asks for at least a minute after a limit.
SECONDARY_LIMIT_WAIT = 60.0
_PERMANENT = {400, 401, 404, 410, 422}
_MAX_MESSAGE = 1000
# What a read of GitHub's API may take: a page of 100 workflow runs is about 1 MB.
READ_CAP = 8 * 1024 * 1024


class TokenProvider(Protocol):
    def token_for(self, repository: str) -> str: ...
    def invalidate(self, repository: str) -> None: ...


def github_message(body: str) -> str:
    """GitHub's ``message`` (and its first error detail), else the start of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:_MAX_MESSAGE]
    if not isinstance(data, dict):
        return body.strip()[:_MAX_MESSAGE]
    message = str(data.get("message", "")).strip()
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        detail = first.get("message") if isinstance(first, dict) else first
        if detail:
            message = f"{message}: {detail}" if message else str(detail)
    return (message or body.strip())[:_MAX_MESSAGE]


def classify(
    status: int,
    headers: Mapping[str, str],
    body: str,
    now: float,
    redact: Callable[[str], str] = str,
) -> None:
    """Raise the delivery error GitHub's answer means; return for a 2xx. What GitHub
    said goes through ``redact`` whole, before any of it is cut into the message."""
    if 200 <= status < 300:
        return
    body = redact(body)
    if 300 <= status < 400:
        # Only GitHub's own answer counts: a redirect (to a login page, a proxy) is a
        # wrong api_url, and following it would turn "nothing sent" into "delivered".
        where = redact(headers.get("location", "nowhere"))
        raise PermanentDeliveryError(
            f"the server answered {status} redirecting to {where[:200]}; github.api_url "
            "must be GitHub's API itself (https://api.github.com, or https://HOST/api/v3 "
            "for GitHub Enterprise Server)",
            status,
        )
    message = github_message(body) or f"HTTP {status}"
    text = f"GitHub answered {status}: {message}"
    limited = (
        headers.get("x-ratelimit-remaining") == "0"
        or "retry-after" in headers
        or "rate limit" in message.lower()
    )
    if status == 429 or (status == 403 and limited):
        not_before = retry_not_before(headers, now) or now + SECONDARY_LIMIT_WAIT
        raise TransientDeliveryError(f"{text} (rate limited)", status, not_before, True)
    if status == 403:
        needed = headers.get("x-accepted-github-permissions")
        hint = f"; the credential needs {needed}" if needed else ""
        raise PermanentDeliveryError(f"{text}{hint}", status)
    if status == 404:  # GitHub hides what a credential may not see behind a 404
        raise PermanentDeliveryError(
            f"{text}; GitHub answers 404 when the credential cannot see the repository or "
            "workflow: check the name for a typo, that the token may access that "
            "repository, and that the GitHub App is installed on it",
            status,
        )
    if status in _PERMANENT or (400 <= status < 500 and status != 408):
        raise PermanentDeliveryError(text, status)
    raise TransientDeliveryError(text, status, retry_not_before(headers, now))


@dataclass(frozen=True)
class Answer:
    """A 2xx (or 304) answer: its status, headers and parsed JSON body (None if empty)."""

    status: int
    headers: Mapping[str, str]
    data: Any


def parse_time(text: Any) -> float | None:
    """GitHub's ISO 8601 time (``2026-11-29T10:00:00Z``) as epoch seconds."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def is_run(data: Any) -> bool:
    """Whether ``data`` looks like a workflow run object (an object with a numeric id)."""
    run_id = data.get("id") if isinstance(data, dict) else None
    return isinstance(run_id, int) and not isinstance(run_id, bool) and 0 < run_id < 2**63


def run_of(data: Mapping[str, Any]) -> NewRun:
    """A workflow run object of GitHub's REST API as the store keeps it; fields of the
    wrong type are left out rather than stored."""

    def text(name: str) -> str | None:
        value = data.get(name)
        return value[:2000] if isinstance(value, str) and value else None

    return NewRun(
        run_id=int(data["id"]),
        workflow=text("name") or text("path"),
        html_url=text("html_url"),
        status=text("status"),
        conclusion=text("conclusion"),
        created_at=parse_time(data.get("created_at")),
        updated_at=parse_time(data.get("updated_at")),
    )


RUNS_PER_PAGE = 100  # GitHub's most


@dataclass(frozen=True)
class RunPage:
    """One page of a run listing: the runs as the store keeps them, GitHub's objects,
    the ETag, whether it changed (False: a 304), and whether GitHub has a next page."""

    runs: list[NewRun]
    objects: list[Mapping[str, Any]]
    etag: str | None
    changed: bool
    more: bool


def has_next_page(link: str | None, data: Mapping[str, Any], page: int, listed: int) -> bool:
    """Whether a listing goes on after ``page``: GitHub's ``Link`` header names a
    ``rel="next"``; without the header, a full page short of ``total_count``."""
    if link is not None:
        return any(part.strip().endswith('rel="next"') for part in link.split(","))
    total = data.get("total_count")
    full = listed >= RUNS_PER_PAGE
    return full and isinstance(total, int) and total > page * RUNS_PER_PAGE


def call(
    session: requests.Session,
    api_url: str,
    method: str,
    path: str,
    token: str,
    *,
    timeout: float,
    clock: Callable[[], float],
    redact: Callable[[str], str] = str,
    whole: bool = True,
    body: bytes | None = None,
    params: Mapping[str, str] | None = None,
    etag: str | None = None,
) -> Answer:
    """One request to GitHub's API (``api_url + path``) with ``token``, as GitHub
    documents it; a DeliveryError unless 2xx or 304. With ``whole``, an answer over
    ``READ_CAP`` is a failure; without, only the first ``ERROR_CAP`` bytes are read."""
    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": USER_AGENT,
        "Authorization": f"Bearer {token}",
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    if etag:
        headers["If-None-Match"] = etag
    cap = READ_CAP if whole else http.ERROR_CAP
    try:
        reply = http.fetch(
            session,
            method,
            api_url + path,
            timeout=timeout,
            cap=cap,
            data=body,
            params=params,
            headers=headers,
        )
    except OutboundError as exc:
        raise TransientDeliveryError(f"GitHub at {api_url}: {exc.message}") from exc
    if reply.status == 304:
        return Answer(304, reply.headers, None)
    classify(reply.status, reply.headers, reply.text(), clock(), redact)
    if whole and not reply.complete:
        raise TransientDeliveryError(
            f"GitHub's answer to {method} {path.split('?')[0]} is larger than {cap} bytes; not read"
        )
    try:
        data = reply.json()
    except ValueError:
        data = None
    return Answer(reply.status, reply.headers, data)


class GitHubClient:
    """One request per call over a pooled session: dispatches, and reads of runs.

    Every request ends by ``timeout`` (or the caller's :func:`bridge.http.deadline`);
    GitHub's answer is redacted (``redact``) before any of it is cut into a message."""

    def __init__(
        self,
        api_url: str,
        tokens: TokenProvider,
        session: requests.Session,
        timeout: float,
        clock: Callable[[], float],
        redact: Callable[[str], str] = str,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.tokens = tokens
        self.session = session
        self.timeout = timeout
        self.clock = clock
        self.redact = redact

    def request(
        self,
        method: str,
        repository: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        etag: str | None = None,
    ) -> Answer:
        """One request to ``/repos/{repository}{path}``; a DeliveryError unless 2xx or 304.

        A read (GET) must come whole within ``READ_CAP``; of a write's answer only the
        status is needed, so a long one is cut, never a reason to send again."""
        try:
            return call(
                self.session,
                self.api_url,
                method,
                f"/repos/{repository}{path}",
                self.tokens.token_for(repository),
                timeout=self.timeout,
                clock=self.clock,
                redact=self.redact,
                whole=method == "GET",
                body=body,
                params=params,
                etag=etag,
            )
        except DeliveryError as exc:
            if exc.status == 401:
                self.tokens.invalidate(repository)
            raise

    def dispatch(self, repository: str, body: bytes) -> int:
        """POST a repository dispatch; GitHub's status, or a DeliveryError."""
        return self.request("POST", repository, "/dispatches", body=body).status

    def workflow_dispatch(
        self, repository: str, workflow: str, ref: str, inputs_json: str
    ) -> tuple[int, NewRun | None]:
        """POST a workflow dispatch asking for the run's details; a server that refuses
        the flag (GitHub Enterprise Server) is asked again without it."""
        path = f"/actions/workflows/{quote(workflow, safe='')}/dispatches"
        ref_json = json.dumps(ref, ensure_ascii=False)
        body = f'{{"ref":{ref_json},"inputs":{inputs_json},"return_run_details":true}}'
        try:
            answer = self.request("POST", repository, path, body=body.encode())
        except PermanentDeliveryError as exc:
            if exc.status != 422 or "return_run_details" not in exc.message:
                raise
            plain = f'{{"ref":{ref_json},"inputs":{inputs_json}}}'
            return self.request("POST", repository, path, body=plain.encode()).status, None
        data = answer.data if isinstance(answer.data, dict) else {}
        if not is_run({"id": data.get("workflow_run_id")}):  # found by searching instead
            return answer.status, None
        run_id = int(data["workflow_run_id"])
        url = data.get("html_url")
        run = NewRun(
            run_id, workflow, url if isinstance(url, str) else None, "queued", None, None, None
        )
        return answer.status, run

    def list_runs(
        self, repository: str, event: str, since: float, etag: str | None, page: int = 1
    ) -> RunPage:
        """Page ``page`` of the repository's runs of ``event`` created since ``since``,
        newest first, 100 a page. A 304 (``etag`` still holds) is an empty page."""
        created = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        params = {"event": event, "created": f">={created}", "per_page": str(RUNS_PER_PAGE)}
        if page > 1:
            params["page"] = str(page)
        answer = self.request("GET", repository, "/actions/runs", params=params, etag=etag)
        new_etag = answer.headers.get("etag") or etag
        if answer.status == 304 or not isinstance(answer.data, dict):
            return RunPage([], [], new_etag, answer.status != 304, False)
        listed = answer.data.get("workflow_runs")
        listed = listed if isinstance(listed, list) else []
        objects: list[Mapping[str, Any]] = [r for r in listed if is_run(r)]
        more = has_next_page(answer.headers.get("link"), answer.data, page, len(listed))
        return RunPage([run_of(r) for r in objects], objects, new_etag, True, more)

    def get_run(
        self, repository: str, run_id: int, etag: str | None
    ) -> tuple[NewRun | None, str | None]:
        """One run (None when GitHub answered 304: unchanged) and its ETag."""
        answer = self.request("GET", repository, f"/actions/runs/{run_id}", etag=etag)
        new_etag = answer.headers.get("etag") or etag
        if answer.status == 304:
            return None, new_etag
        if not is_run(answer.data):
            raise TransientDeliveryError(f"GitHub's answer for run {run_id} is not a run object")
        return run_of(answer.data), new_etag
