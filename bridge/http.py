"""Outbound HTTP, the one home for it: the session, the User-Agent, a total deadline,
answers read under a cap, and the waits a server asks for.

Every request the bridge makes (GitHub, notification receivers, W&B) goes through
:func:`fetch`. requests' own ``timeout`` bounds each socket read, so a server that sends
one byte a second never trips it; here each request also has a **total deadline**. A
single watchdog thread per process holds the deadlines in force; when one passes it shuts
the socket of every connection still working for it, and the blocked read returns at
once. The deadline is the caller's: ``with deadline(s):`` around several requests (a
token, then a dispatch) gives them one budget together; a request outside any block gets
its own ``timeout`` as its total.

An answer's body is read as a stream, at most ``cap`` bytes: what is past the cap is
never read (memory stays flat however much the other side sends), and the reply says it
was cut. A caller that needs the whole body (JSON) treats a cut one as that server's
failure.

Resolving a host name is the one step no socket deadline reaches (the system resolver
has its own timeouts).

The environment is read once per process and origin, as curl and requests read it:
``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` less ``NO_PROXY``, and ``REQUESTS_CA_BUNDLE``
or ``CURL_CA_BUNDLE``. ``~/.netrc`` is never read: the bridge sends the credentials its
config names, and requests would let a netrc entry for the host replace them.
"""

from __future__ import annotations

import email.utils
import functools
import heapq
import itertools
import json
import math
import os
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from bridge.errors import OutboundError
from bridge.version import __version__

USER_AGENT = f"wandb-github-bridge/{__version__}"
ERROR_CAP = 16 * 1024  # enough of an error answer for its message
READ_CHUNK = 64 * 1024
GRACE = 1.0  # once, for an answer that is waiting to be read when the deadline passes


# -- deadlines ------------------------------------------------------------------------------


class Deadline:
    """A moment after which the connections working for it are cut."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds  # the budget, for messages
        self.at = time.monotonic() + seconds
        self.expired = False
        self._graced = False
        self._lock = threading.Lock()
        self._conns: list[_Watched] = []

    def left(self) -> float:
        return self.at - time.monotonic()

    def watch(self, conn: _Watched) -> None:
        """``conn`` now works for this deadline (and for no other: see ``_claim``)."""
        with self._lock:
            conn.deadline = self
            self._conns.append(conn)
            if self.expired:
                _cut(conn)

    def release(self, conn: _Watched) -> None:
        """``conn`` no longer works for this deadline, unless another has taken it."""
        with self._lock:
            if conn.deadline is self:
                conn.deadline = None

    def expire(self) -> bool:
        """Cut the connections still working for it; False, cutting nothing, when an
        answer is waiting to be read on one of them and this deadline has not waited
        before. That is a process that was frozen (SIGSTOP, a paused VM) past its
        deadline while the answer came in time: a dispatch GitHub took must not be cut
        into a failure and sent again. A server that trickles gets the grace only once."""
        # Under the lock, so that no connection changes hands between the look and the
        # cut: one returned to the pool and taken by another request is not ours to cut.
        with self._lock:
            conns = [c for c in self._conns if c.deadline is self]
            if not self._graced and any(_waiting(c) for c in conns):
                self._graced = True
                return False
            self.expired = True
            self._conns = []
            for conn in conns:
                _cut(conn)
        return True


def _waiting(conn: _Watched) -> bool:
    """Whether bytes wait to be read on the connection (in the kernel, or decrypted)."""
    sock = conn.watched_sock
    if sock is None or sock.fileno() < 0:
        return False
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return False


def _cut(conn: _Watched) -> None:
    """Shut the connection's socket down, so a read blocked on it returns at once. The
    plain socket's shutdown, also for TLS: ssl's own would unwrap the TLS layer from under
    the reading thread."""
    sock = conn.watched_sock
    if sock is not None:
        with suppress(OSError):  # already closed
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One thread per process that expires deadlines in time order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._seq = itertools.count()
        threading.Thread(target=self._run, name="http-deadlines", daemon=True).start()

    def add(self, d: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (d.at, next(self._seq), d))
            if self._heap[0][2] is d:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                d = heapq.heappop(self._heap)[2]
            if not d.expired and not d.expire():
                d.at = time.monotonic() + GRACE
                self.add(d)


_watchdogs: dict[int, _Watchdog] = {}  # by pid: a forked child starts its own thread
_watchdog_lock = threading.Lock()
_local = threading.local()


def _watchdog() -> _Watchdog:
    pid = os.getpid()
    with _watchdog_lock:
        if pid not in _watchdogs:
            _watchdogs[pid] = _Watchdog()
        return _watchdogs[pid]


def current() -> Deadline | None:
    """The deadline in force in this thread, if any."""
    return getattr(_local, "deadline", None)


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Every request made in this thread inside the block ends ``seconds`` from now (or
    by an enclosing block's deadline, whichever comes first)."""
    outer = current()
    d = Deadline(max(0.0, seconds))
    if outer is not None and outer.at <= d.at:
        yield outer
        return
    _watchdog().add(d)
    _local.deadline = d
    try:
        yield d
    finally:
        _local.deadline = outer
        d.expired = True  # later requests on its connections are no longer its business


# -- connections that answer to the calling thread's deadline -----------------------------


class _Watched(HTTPConnection):
    deadline: Deadline | None = None
    # The socket, kept here too: http.client drops ``sock`` when it hands a response that
    # ends with the connection (no length) to the reader, while the body is still coming.
    watched_sock: socket.socket | None = None

    def connect(self) -> None:
        self._claim()
        super().connect()
        self.watched_sock = self.sock
        if self.deadline is not None and self.deadline.expired:
            _cut(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._claim()
        super().request(*args, **kwargs)

    def _claim(self) -> None:
        d = current()
        old = self.deadline
        if old is not None and old is not d:
            old.release(self)
        if d is not None:
            d.watch(self)


class _WatchedHTTPS(_Watched, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Watched


class _PoolS(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPS


_POOLS = {"http": _Pool, "https": _PoolS}


class _Adapter(HTTPAdapter):
    """requests' adapter with connections that obey deadlines (also through a proxy)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        socks = proxy.lower().startswith("socks")  # requests refuses it without PySocks
        manager.pool_classes_by_scheme = _socks_pools() if socks else _POOLS
        return manager


@functools.cache
def _socks_pools() -> dict[str, type[HTTPConnectionPool]]:
    """Pools of connections through a SOCKS proxy that obey deadlines too (urllib3's
    SOCKS support imports PySocks, so only when such a proxy is named)."""
    from urllib3.contrib import socks

    class Conn(_Watched, socks.SOCKSConnection):
        pass

    class ConnS(_Watched, socks.SOCKSHTTPSConnection):
        pass

    class Pool(socks.SOCKSHTTPConnectionPool):
        ConnectionCls = Conn

    class PoolS(socks.SOCKSHTTPSConnectionPool):
        ConnectionCls = ConnS

    return {"http": Pool, "https": PoolS}


def new_session(pool: int = 10) -> requests.Session:
    """A pooled session with no retries of its own (the caller is the one retry layer),
    that leaves the environment to :func:`fetch` (see :func:`environment`)."""
    session = requests.Session()
    session.trust_env = False  # else each request walks os.environ twice and reads ~/.netrc
    adapter = _Adapter(pool_connections=4, pool_maxsize=max(1, pool), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


@functools.lru_cache(maxsize=64)
def environment(origin: str) -> tuple[dict[str, str], str | bool]:
    """The proxies and the CA bundle (or True: the system's) the environment gives for
    requests to ``origin`` (``scheme://host:port``), read on first use."""
    proxies = requests.utils.get_environ_proxies(origin)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return proxies, bundle or True


# -- one request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """An answer: status, headers, and the body's first ``cap`` bytes (``complete`` is
    False when there was more, which was not read)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    complete: bool

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not JSON or was cut."""
        if not self.complete:
            raise ValueError("the answer is larger than the bridge reads")
        return json.loads(self.body) if self.body else None


def fetch(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    cap: int = ERROR_CAP,
    **kwargs: Any,
) -> Reply:
    """One request, never following a redirect, that ends by ``timeout`` seconds from now
    (or an enclosing :func:`deadline`) however the bytes arrive; the body is read up to
    ``cap``. An :class:`OutboundError` when no answer came in time."""
    parts = urllib.parse.urlsplit(url)
    proxies, verify = environment(f"{parts.scheme}://{parts.netloc}")
    with deadline(timeout) as d:
        try:
            left = max(0.001, d.left())
            with session.request(
                method,
                url,
                timeout=left,
                stream=True,
                allow_redirects=False,
                proxies=proxies,
                verify=verify,
                **kwargs,
            ) as resp:
                conn = getattr(resp.raw, "connection", None)  # urllib3's; a test's may lack it
                body, complete = _read(resp, cap)
                if d.expired and not _framed(method, resp):
                    # cut: a body with neither a length nor chunks just ends early
                    raise requests.Timeout("the total deadline passed")
            if isinstance(conn, _Watched):
                d.release(conn)  # back in the pool: this deadline's end is not its end
            return Reply(resp.status_code, resp.headers, body, complete)
        except requests.RequestException as exc:
            if d.expired or isinstance(exc, requests.Timeout):
                raise OutboundError(
                    f"no complete answer within {d.seconds:g} s", timed_out=True
                ) from exc
            raise OutboundError(f"cannot connect or read ({type(exc).__name__})") from exc


def _framed(method: str, resp: requests.Response) -> bool:
    """Whether the answer says where it ends, so that reading it whole proves it whole
    (urllib3 raises on a body shorter than its length, or a chunk cut off)."""
    if method == "HEAD" or resp.status_code in (204, 304) or resp.status_code < 200:
        return True
    chunked = "chunked" in resp.headers.get("transfer-encoding", "").lower()
    return chunked or "content-length" in resp.headers


def _read(resp: requests.Response, cap: int) -> tuple[bytes, bool]:
    body = bytearray()
    for chunk in resp.iter_content(READ_CHUNK):
        body += chunk
        if len(body) > cap:
            return bytes(body[:cap]), False
    return bytes(body), True


# -- waits a server asks for ----------------------------------------------------------------


def retry_not_before(headers: Mapping[str, str], now: float) -> float | None:
    """The earliest retry time an answer's headers ask for (Retry-After, then GitHub's
    x-ratelimit-reset when the limit is spent)."""
    after = headers.get("retry-after")
    if after:
        if after.strip().isascii() and after.strip().isdigit():  # not "²"
            return now + float(after.strip())
        try:
            return email.utils.parsedate_to_datetime(after).timestamp()
        except (TypeError, ValueError):
            pass
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
        try:
            reset = float(headers["x-ratelimit-reset"])
        except ValueError:
            return None
        return None if math.isnan(reset) else reset  # "nan" would compare false with any time
    return None
