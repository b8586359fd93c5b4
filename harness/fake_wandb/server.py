"""A fake W&B on loopback: GraphQL, pre-signed storage URLs, and the download handlers.

- ``POST /graphql`` with Basic auth ``api:<key>`` (401 otherwise), executed by graphql-core.
- ``GET /storage/<object>?expires=&sig=``: pre-signed URLs. Refused (403) once expired or
  when the file's URLs are refused on demand, and (400) when they carry an Authorization
  header, as S3 and GCS do.
- ``GET /artifactsV2/<region>/<entity>/<project>/<collection>/<birth>/<md5hex>/<name>``
  and ``GET /artifacts/<entity>/<md5hex>``: W&B's own handlers, Basic auth required.
- ``GET /external/<name>``: stands in for an ``https://`` reference's server; a name
  given to :meth:`FakeWandb.redirect` answers ``302`` to another URL instead.

Every object GET honours one ``Range: bytes=...`` as a cloud bucket does: ``206`` with
``Content-Range``, ``416`` when it starts past the end, ``Accept-Ranges: bytes``.

Failure injection: :meth:`FakeWandb.fail` queues statuses (``0`` drops the connection)
for a route; :meth:`cut` drops a file's connection halfway through the body;
:meth:`corrupt` serves a file with one byte changed; :meth:`expire` and :meth:`refuse`
make files' direct URLs fail; :attr:`FakeWandb.ranges` off answers every ``Range`` with the
whole body (``200``), as a server without range support does, and :meth:`skew` makes a
file's ranged answers carry a ``Content-Range`` one byte off. Hostile answers:
:attr:`FakeWandb.answers` replaces the answer to a GraphQL operation, and
``FakeArtifact.raw_manifest`` the manifest's bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sys
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from graphql import graphql_sync

from harness.fake_wandb.schema import Context, Root, make_schema
from harness.fake_wandb.store import FakeArtifact, Store, StoredFile

ROUTES = ("graphql", "storage", "manifest", "handler", "external")


@dataclass(frozen=True)
class Seen:
    """One request the fake received."""

    method: str
    route: str
    path: str
    operation: str
    authorized: bool
    range: str = ""  # the Range header, if any


class FakeWandb:
    """The fake server. Use as a context manager; ``url`` is its base URL."""

    def __init__(
        self,
        api_key: str,
        *,
        legacy: bool = False,
        page_size: int = 50,
        url_ttl: float = 600,
        port: int = 0,
        first_byte: float = 0.0,
        stream_rate: float = 0.0,
    ) -> None:
        self.api_key = api_key
        # Storage like a cloud bucket seen from a runner: a wait before the first byte,
        # then each response sent at ``stream_rate`` bytes/s (0: as fast as it goes).
        self.first_byte = first_byte
        self.stream_rate = stream_rate
        self.store = Store()
        self.legacy = legacy
        self.page_size = page_size
        self.url_ttl = url_ttl
        self.requests: list[Seen] = []
        self.external: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}  # external name -> Location
        self.answers: dict[str, tuple[int, Any]] = {}  # operation -> (status, JSON body)
        self.ranges = True  # False: Range headers are ignored (200, whole body)
        self._secret = b"fake-storage-signing-key"
        self._failures: dict[str, deque[int]] = defaultdict(deque)
        self._corrupt: set[tuple[str, str]] = set()  # stored objects: (birth id, digest)
        self._cuts: dict[str, int] = {}
        self._skewed: set[str] = set()
        self._expired: set[str] = set()
        self._refused: set[str] = set()
        self._lock = threading.Lock()
        self._schemas = {False: make_schema(legacy=False), True: make_schema(legacy=True)}
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        port = self._httpd.server_address[1]
        return f"http://127.0.0.1:{port}"

    def start(self) -> FakeWandb:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join()

    def __enter__(self) -> FakeWandb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- failure injection --------------------------------------------------------------
    def fail(self, route: str, *statuses: int) -> None:
        """The next requests on ``route`` get these statuses (0: connection dropped)."""
        assert route in ROUTES, route
        with self._lock:
            self._failures[route].extend(statuses)

    def cut(self, path: str, times: int = 1) -> None:
        """The next ``times`` GETs of the file send half the body, then drop the connection."""
        with self._lock:
            self._cuts[path] = self._cuts.get(path, 0) + times

    def take_cut(self, path: str) -> bool:
        with self._lock:
            if self._cuts.get(path, 0) > 0:
                self._cuts[path] -= 1
                return True
            return False

    def corrupt(self, path: str) -> None:
        """Damage the stored object of every file at ``path``: as in W&B's storage, which
        keeps one object per content, files with the same content share the damage."""
        self._corrupt.update(
            (f.birth_id, f.digest) for a in self.store.artifacts for f in a.stored if f.path == path
        )

    def skew(self, *paths: str) -> None:
        """Ranged answers for these files name the wrong bytes in ``Content-Range``."""
        self._skewed.update(paths)

    def expire(self, *paths: str) -> None:
        """Direct URLs handed out for these files are already expired."""
        self._expired.update(paths)

    def refuse(self, *paths: str) -> None:
        """Direct URLs of these files are refused (403) whenever used."""
        self._refused.update(paths)

    def heal(self) -> None:
        """Forget every injected failure."""
        with self._lock:
            self._failures.clear()
            self._cuts.clear()
        self._corrupt.clear()
        self._skewed.clear()
        self.ranges = True
        self._expired.clear()
        self._refused.clear()

    def _next_failure(self, route: str) -> int | None:
        with self._lock:
            queue = self._failures[route]
            return queue.popleft() if queue else None

    def seen(self, route: str) -> list[Seen]:
        return [r for r in list(self.requests) if r.route == route]

    # -- URLs ---------------------------------------------------------------------------
    def _sign(self, obj: str, expires: int) -> str:
        return hmac.new(self._secret, f"{obj}|{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def _presign(self, obj: str, ttl: float) -> str:
        expires = int(time.time() + ttl)
        return f"{self.url}/storage/{quote(obj)}?expires={expires}&sig={self._sign(obj, expires)}"

    def file_url(self, f: StoredFile) -> str:
        ttl = -60 if f.path in self._expired else self.url_ttl
        return self._presign(f"files/{f.birth_id}/{f.hex}/{f.path}", ttl)

    def manifest_url(self, artifact: FakeArtifact) -> str:
        return self._presign(f"manifests/{artifact.id}", self.url_ttl)

    def external_url(self, name: str, data: bytes) -> str:
        self.external[name] = data
        return f"{self.url}/external/{quote(name)}"

    def redirect(self, name: str, location: str) -> str:
        """``/external/<name>`` answers 302 to ``location``; its URL."""
        self.redirects[name] = location
        return f"{self.url}/external/{quote(name)}"

    # -- request handling (called from handler threads) ---------------------------------
    def graphql(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("operationName") in self.answers:
            return self.answers[body["operationName"]]
        ctx = Context(self.store, self.file_url, self.manifest_url, self.page_size)
        result = graphql_sync(
            self._schemas[self.legacy],
            body.get("query") or "",
            root_value=Root(ctx),
            variable_values=body.get("variables") or {},
            operation_name=body.get("operationName") or None,
        )
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [{"message": e.message} for e in result.errors]
            if result.data is None:
                return 400, answer
        return 200, answer

    def storage_object(self, obj: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        expires = int((query.get("expires") or ["0"])[0])
        sig = (query.get("sig") or [""])[0]
        if not hmac.compare_digest(sig, self._sign(obj, expires)):
            return 403, b"SignatureDoesNotMatch"
        kind, _, rest = obj.partition("/")
        if kind == "manifests":
            artifact = self.store.by_id(rest)
            if artifact and artifact.raw_manifest is not None:
                return 200, artifact.raw_manifest
            return (200, artifact.manifest()) if artifact else (404, b"NoSuchKey")
        birth, _, rest = rest.partition("/")
        digest_hex, _, path = rest.partition("/")
        found = self.store.file_by_object(birth, digest_hex)
        if not found:
            return 404, b"NoSuchKey"
        if path in self._refused:
            return 403, b"AccessDenied"
        if expires < time.time():
            return 403, b"ExpiredToken: Request has expired"
        return 200, found[1]

    def handler_object(self, parts: list[str]) -> tuple[int, Any]:
        if len(parts) == 7:  # artifactsV2/region/entity/project/collection/birth/hex/name
            _, entity, project, collection, birth, digest_hex, _ = parts
            found = self.store.file_by_object(birth, digest_hex)
            if found and not any(
                (m.entity, m.project, m.collection) == (entity, project, collection)
                for m in found[0].memberships
            ):
                found = None
        elif len(parts) == 2:  # artifacts/entity/hex
            found = self.store.file_by_object("", parts[1])
        else:
            found = None
        return (200, found[1]) if found else (404, b"not found")

    def content(self, f: StoredFile) -> bytes | Path:
        if (f.birth_id, f.digest) in self._corrupt:
            data = bytearray(f.read())
            if data:
                data[len(data) // 2] ^= 0xFF
            return bytes(data)
        return f.source if f.source is not None else f.read()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request is what several tests do on purpose; the
        # default handler prints a traceback, and fails when the test's stderr is gone.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def fake(self) -> FakeWandb:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, key = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == "api" and hmac.compare_digest(key, self.fake.api_key)

    def _send(
        self,
        status: int,
        body: bytes | Path,
        ctype: str = "text/plain",
        *,
        span: tuple[int, int] | None = None,
        cut: bool = False,
        **headers: str,
    ) -> None:
        """Send ``body`` (the ``(start, length)`` of it in ``span``); ``cut``: send half of
        it, then drop the connection."""
        size = body.stat().st_size if isinstance(body, Path) else len(body)
        start, length = span or (0, size)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut:
            length //= 2
            self.close_connection = True
        rate = self.fake.stream_rate if getattr(self, "paced", False) else 0.0
        if isinstance(body, Path):
            with body.open("rb") as fh:
                _paced(lambda at, n: self.connection.sendfile(fh, start + at, n), length, rate)
        else:
            view = memoryview(body)[start : start + length]
            _paced(lambda at, n: self.wfile.write(view[at : at + n]), length, rate)

    def _send_object(self, body: bytes | Path, name: str = "") -> None:
        """An object as storage sends it: whole, or the one byte range asked for."""
        size = body.stat().st_size if isinstance(body, Path) else len(body)
        cut = bool(name) and self.fake.take_cut(name)
        ctype = "application/octet-stream"
        if not self.fake.ranges:
            self._send(200, body, ctype, cut=cut)
            return
        span = byte_range(self.headers.get("Range", ""), size)
        if span is None:
            self._send(200, body, ctype, cut=cut, Accept_Ranges="bytes")
        elif span == (size, 0):
            self._send(416, b"InvalidRange", Content_Range=f"bytes */{size}")
        else:
            start, length = span
            shown = start + 1 if name in self.fake._skewed else start
            where = f"bytes {shown}-{shown + length - 1}/{size}"
            self._send(206, body, ctype, span=span, cut=cut, Content_Range=where)

    def _inject(self, route: str) -> bool:
        status = self.fake._next_failure(route)
        if status is None:
            return False
        if status == 0:
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        self._send(status, b"injected failure", Retry_After="1")
        return True

    def _record(self, route: str, operation: str = "") -> None:
        self.fake.requests.append(
            Seen(
                self.command,
                route,
                urlsplit(self.path).path,
                operation,
                "Authorization" in self.headers,
                self.headers.get("Range", ""),
            )
        )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if urlsplit(self.path).path != "/graphql":
            self._send(404, b"not found")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        self._record("graphql", str(body.get("operationName") or ""))
        if self._inject("graphql"):
            return
        if not self._authorized():
            self._send(401, b'{"errors":[{"message":"user is not logged in"}]}', "application/json")
            return
        status, answer = self.fake.graphql(body)
        self._send(status, json.dumps(answer).encode(), "application/json")

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        segments = [unquote(s) for s in parts.path.split("/")[1:]]
        head = segments[0] if segments else ""
        self.paced = head in ("storage", "artifactsV2", "artifacts", "external")
        if self.paced and self.fake.first_byte:
            time.sleep(self.fake.first_byte)
        if head == "storage":
            obj = "/".join(segments[1:])
            route = "manifest" if obj.startswith("manifests/") else "storage"
            self._record(route)
            if self._inject(route):
                return
            if "Authorization" in self.headers:
                self._send(400, b"InvalidArgument: Only one auth mechanism allowed")
                return
            status, found = self.fake.storage_object(obj, parse_qs(parts.query))
        elif head in ("artifactsV2", "artifacts"):
            self._record("handler")
            if self._inject("handler"):
                return
            if not self._authorized():
                self._send(401, b"unauthorized")
                return
            status, found = self.fake.handler_object(segments[1:])
        elif head == "external" and len(segments) == 2:
            self._record("external")
            if self._inject("external"):
                return
            if segments[1] in self.fake.redirects:
                self._send(302, b"", Location=self.fake.redirects[segments[1]])
                return
            data = self.fake.external.get(segments[1])
            status, found = (200, data) if data is not None else (404, b"not found")
        else:
            self._send(404, b"not found")
            return
        if status != 200:
            self._send(status, found)
        elif isinstance(found, StoredFile):
            self._send_object(self.fake.content(found), found.path)
        else:
            self._send_object(found)

    do_HEAD = do_GET


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, length)`` asked for by a ``Range`` header; None to send the whole body
    (no header, several ranges, or one the server may ignore); ``(size, 0)`` when it
    cannot be satisfied (416)."""
    found = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not found or found.group(1) == found.group(2) == "":
        return None
    first, last = found.groups()
    if not first:  # the last N bytes
        count = min(int(last), size)
        return (size - count, count) if count else (size, 0)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None  # invalid: ignored, as RFC 9110 says
    if start >= size:
        return (size, 0)
    return start, end - start + 1


def _paced(send: Any, size: int, rate: float, piece: int = 1 << 18) -> None:
    """Call ``send(offset, count)`` piece by piece, no faster than ``rate`` bytes/s (at
    once when ``rate`` is 0)."""
    if not rate:
        if size:
            send(0, size)
        return
    start, sent = time.monotonic(), 0
    while sent < size:
        count = min(piece, size - sent)
        send(sent, count)
        sent += count
        ahead = start + sent / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def demo_files() -> dict[str, bytes]:
    """A small multi-file artifact: nested paths, an empty file, a multi-chunk file."""
    big = hashlib.sha256(b"seed").digest() * (9 * 1024 * 1024 // 32 + 7)  # > 2 chunks
    return {
        "model/weights.bin": big,
        "model/config.json": b'{"layers": 3, "hidden": 64}\n',
        "README.md": b"# churn model\n",
        "empty.txt": b"",
        "data/nested/deep/labels.csv": b"id,label\n1,0\n2,1\n",
    }
