"""HTTP plumbing shared by the GraphQL client and the downloader.

One pooled ``requests.Session`` (no urllib3 retries), the one retry loop of the action
(:func:`retrying`, with a backoff schedule as a plain function), and the one place where
``requests`` exceptions become :class:`~action.errors.ActionError`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from action.errors import ActionError

USER_AGENT = "wandb-github-bridge-action/0.1.0"
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 120.0
Sleep = Callable[[float], None]
T = TypeVar("T")

# What requests raises when the other side, not our request, is at fault: retried.
TRANSIENT_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class Transient(Exception):
    """Raised by an attempt whose failure is worth another try (a 5xx, a 429)."""

    def __init__(self, cause: str, retry_after: str | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; ``Retry-After`` is honoured up to ``cap``."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        wait = min(self.cap, self.base * 2.0 ** (attempt - 1))
        wait = wait / 2 + random.uniform(0, wait / 2)
        if retry_after and retry_after.strip().isascii() and retry_after.strip().isdigit():
            wait = max(wait, min(self.cap, float(retry_after)))
        return wait


def is_transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def make_session(pool_size: int) -> requests.Session:
    """A session whose pool keeps ``pool_size`` connections per host alive."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def redact_url(url: str) -> str:
    """A URL fit for a message: no userinfo, no query (pre-signed URLs carry signatures)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # an unparsable host or port: show the scheme and host part only
        return url.split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def describe(exc: BaseException) -> str:
    """A short cause for a network error, without URLs (which may hold signatures)."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text)
    if found:
        return found.group(0).strip()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return type(exc).__name__


def retrying(
    attempt: Callable[[], T],
    *,
    url: str,
    what: str,
    error: type[ActionError],
    fix: str,
    sleep: Sleep,
    policy: RetryPolicy,
) -> T:
    """Call ``attempt`` until it returns, retrying :class:`Transient` and network errors.

    A request that cannot be sent at all (a bad URL, too many redirects) is final. After
    the last attempt raises ``error`` naming ``what``, the last cause and ``url``.
    """
    cause = ""
    for number in range(1, policy.attempts + 1):
        retry_after = None
        try:
            return attempt()
        except Transient as exc:
            cause, retry_after = exc.cause, exc.retry_after
        except TRANSIENT_EXCEPTIONS as exc:
            cause = describe(exc)
        except requests.RequestException as exc:
            raise error(f"{what} failed ({describe(exc)}) at {redact_url(url)}.", fix=fix) from exc
        if number < policy.attempts:
            sleep(policy.delay(number, retry_after))
    raise error(
        f"{what} failed after {policy.attempts} attempts ({cause}) at {redact_url(url)}.",
        fix=fix,
    )


def request_once(
    session: requests.Session, method: str, url: str, **kwargs: Any
) -> requests.Response:
    """One attempt for :func:`retrying`: the answer, unless it is a 5xx or 429, which is
    raised as :class:`Transient` (the caller judges 4xx)."""
    kwargs.setdefault("timeout", (CONNECT_TIMEOUT, READ_TIMEOUT))
    response = session.request(method, url, **kwargs)
    if is_transient_status(response.status_code):
        response.close()
        raise Transient(f"HTTP {response.status_code}", response.headers.get("Retry-After"))
    return response
