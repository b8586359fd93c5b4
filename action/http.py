"""HTTP plumbing shared by the GraphQL client and the downloader.

One pooled ``requests.Session`` (no urllib3 retries: the only retry layer is here),
a backoff schedule as a plain function, and the one place where ``requests`` exceptions
become :class:`~action.errors.ActionError`.
"""

from __future__ import annotations

import http.client
import itertools
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from action.errors import ActionError

USER_AGENT = "wandb-github-bridge-action/0.1.0"
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 120.0
Sleep = Callable[[float], None]

# What requests raises when the other side, not our request, is at fault: retried.
TRANSIENT_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


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
        if retry_after and retry_after.strip().isdigit():
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
    """A URL fit for a message: no query (pre-signed URLs carry signatures there)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0]
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
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


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    error: type[ActionError],
    fix: str,
    sleep: Sleep,
    policy: RetryPolicy,
    **kwargs: Any,
) -> requests.Response:
    """Send a request, retrying connection errors, timeouts, 5xx and 429.

    Returns the first response that is not transient (the caller judges 4xx). After the
    last attempt raises ``error`` naming ``what`` and the last cause.
    """
    kwargs.setdefault("timeout", (CONNECT_TIMEOUT, READ_TIMEOUT))
    cause = ""
    for attempt in range(1, policy.attempts + 1):
        retry_after = None
        try:
            response = session.request(method, url, **kwargs)
        except TRANSIENT_EXCEPTIONS as exc:
            cause = describe(exc)
        except requests.RequestException as exc:  # a bad URL, too many redirects: final
            raise error(f"{what} failed ({describe(exc)}) at {redact_url(url)}.", fix=fix) from exc
        else:
            if not is_transient_status(response.status_code):
                return response
            cause = f"HTTP {response.status_code}"
            retry_after = response.headers.get("Retry-After")
            response.close()
        if attempt < policy.attempts:
            sleep(policy.delay(attempt, retry_after))
    raise error(
        f"{what} failed after {policy.attempts} attempts ({cause}) at {redact_url(url)}.",
        fix=fix,
    )


def read_body(
    response: requests.Response, chunk_size: int, buffers: Sequence[memoryview] = ()
) -> Iterator[memoryview | bytes]:
    """The body in pieces, read straight into reused buffers when the connection allows.

    ``iter_content`` makes a new bytes object per chunk (and urllib3 copies it again on
    the way); reading into a buffer that is hashed and written in place halves the bytes
    the CPU moves, which is what leaves room for the digest. ``buffers`` (writable, of
    one size) are taken in turn, so that a piece stays intact while the next is read
    into the other (its hash may still be running); the caller keeps them across
    bodies. Without, one of ``chunk_size`` bytes is made. Every piece but the last fills
    its buffer; it is valid only until that buffer comes round again. Encoded bodies go
    through ``iter_content``.
    """
    raw = response.raw
    fp: Any = getattr(raw, "_fp", None)  # urllib3's http.client response
    identity = response.headers.get("Content-Encoding", "identity").lower() == "identity"
    if not identity or not callable(getattr(fp, "readinto", None)):
        yield from response.iter_content(chunk_size)
        return
    length = response.headers.get("Content-Length")
    views = buffers or (memoryview(bytearray(chunk_size)),)
    total = 0
    for turn in itertools.count():
        view = views[turn % len(views)]
        n = _fill(fp, view)
        if not n:
            break
        total += n
        yield view[:n]
    # http.client's readinto ends quietly when the peer closes early: check the length.
    if length is not None and length.isdigit() and total != int(length):
        raise requests.ConnectionError(f"the body was cut short ({total} of {length} bytes)")
    raw.read()  # lets urllib3 see the end of the body and pool the connection again


def _fill(fp: Any, view: memoryview) -> int:
    """Read until ``view`` is full or the body ends: whole pieces, one write and one
    hash call each, and whole 64-byte blocks for the MD5 lanes. Returns the count."""
    filled = 0
    while filled < len(view):
        try:
            n = fp.readinto(view[filled:])
        except (http.client.HTTPException, OSError) as exc:  # reset, timeout
            raise requests.ConnectionError(f"the body broke off ({type(exc).__name__})") from exc
        if not n:
            break
        filled += n
    return filled
