"""Send a repository dispatch to GitHub, exactly as GitHub documents the request.

One retry layer only: this module makes one attempt, never follows a redirect, and
classifies the answer as delivered, transient (:class:`TransientDeliveryError`, with
the earliest time GitHub allows a retry) or permanent (:class:`PermanentDeliveryError`,
with GitHub's message). The worker decides when to try again.
"""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

import requests

from bridge import __version__
from bridge.errors import PermanentDeliveryError, TransientDeliveryError

log = logging.getLogger(__name__)
USER_AGENT = f"wandb-github-bridge/{__version__}"
API_VERSION = "2022-11-28"
# Without a header that says how long, GitHub asks for at least a minute after a limit.
SECONDARY_LIMIT_WAIT = 60.0
_PERMANENT = {400, 401, 404, 410, 422}
_MAX_MESSAGE = 1000


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


def retry_not_before(headers: Mapping[str, str], now: float) -> float | None:
    """The earliest retry time GitHub's headers ask for (retry-after, then reset)."""
    after = headers.get("retry-after")
    if after:
        if after.strip().isdigit():
            return now + float(after.strip())
        try:
            return email.utils.parsedate_to_datetime(after).timestamp()
        except (TypeError, ValueError):
            pass
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
        try:
            return float(headers["x-ratelimit-reset"])
        except ValueError:
            return None
    return None


def classify(status: int, headers: Mapping[str, str], body: str, now: float) -> None:
    """Raise the delivery error GitHub's answer means; return for a 2xx."""
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        # Only GitHub's own answer counts: a redirect (to a login page, a proxy) is a
        # wrong api_url, and following it would turn "nothing sent" into "delivered".
        where = headers.get("location", "nowhere")
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
    if status in _PERMANENT or (400 <= status < 500 and status != 408):
        raise PermanentDeliveryError(text, status)
    raise TransientDeliveryError(text, status, retry_not_before(headers, now))


class GitHubClient:
    """Sends one dispatch per call over a pooled session."""

    def __init__(
        self,
        api_url: str,
        tokens: TokenProvider,
        session: requests.Session,
        timeout: float,
        clock: Callable[[], float],
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.tokens = tokens
        self.session = session
        self.timeout = timeout
        self.clock = clock

    def dispatch(self, repository: str, body: bytes) -> int:
        """POST the dispatch; returns GitHub's status, raises a DeliveryError otherwise."""
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
            "Authorization": f"Bearer {self.tokens.token_for(repository)}",
            "Content-Type": "application/json",
        }
        url = f"{self.api_url}/repos/{repository}/dispatches"
        try:
            resp = self.session.post(
                url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.Timeout as exc:
            raise TransientDeliveryError(
                f"GitHub did not answer within {self.timeout:g} s"
            ) from exc
        except requests.RequestException as exc:
            raise TransientDeliveryError(
                f"cannot reach GitHub at {self.api_url}: {type(exc).__name__}"
            ) from exc
        with resp:
            if resp.status_code == 401:
                self.tokens.invalidate(repository)
            classify(resp.status_code, resp.headers, resp.text, self.clock())
            return resp.status_code
