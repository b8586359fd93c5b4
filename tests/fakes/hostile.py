"""A server on loopback that answers HTTP the way a broken or hostile peer does: its
status line and headers a byte at a time, a body that trickles or never ends. Raw
sockets, since a WSGI server always sends its headers whole.

Each connection reads one request, then plays ``mode``:

- ``"ok"``: ``status`` with a short JSON body, at once (keep-alive);
- ``"trickle_headers"``: the status line and headers of a 204, one byte every ``pace`` s;
- ``"trickle_body"``: a 200's headers at once, then its body one byte every ``pace`` s;
- ``"endless"``: ``status`` and a body that never ends, as fast as the peer reads, up to
  ``LIMIT`` bytes (a bound for the test's own sake).

Every request is kept in ``requests`` with when it arrived and when its connection
closed (``closed_at``), and how many body bytes the peer took before it hung up.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass

LIMIT = 256 * 1024 * 1024
CHUNK = b"[" + b"0," * 32767


@dataclass
class Seen:
    line: str  # the request line, e.g. "POST /repos/acme/x/dispatches HTTP/1.1"
    body: bytes
    started_at: float
    closed_at: float | None = None
    sent: int = 0  # body bytes the peer accepted


class Hostile:
    def __init__(self, mode: str = "ok", *, status: int = 200, pace: float = 0.5) -> None:
        self.mode = mode
        self.status = status
        self.pace = pace
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._stopping = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Hostile:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._sock.close()

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def wait_for(self, n: int, timeout: float = 30.0, closed: bool = False) -> list[Seen]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            seen = [s for s in self.requests if not closed or s.closed_at is not None]
            if len(seen) >= n:
                return seen
            time.sleep(0.05)
        raise AssertionError(f"expected {n} requests, got {len(self.requests)}")

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        with conn:
            while not self._stopping.is_set():
                seen = self._read_request(conn)
                if seen is None:
                    return
                with self._lock:
                    self._seen.append(seen)
                try:
                    keep = self._answer(conn, seen)
                except OSError:
                    keep = False
                if not keep:
                    seen.closed_at = time.monotonic()
                    return

    def _read_request(self, conn: socket.socket) -> Seen | None:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return None
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return None
                body += chunk
        except OSError:
            return None
        return Seen(head.split(b"\r\n")[0].decode("latin-1"), body, time.monotonic())

    def _answer(self, conn: socket.socket, seen: Seen) -> bool:
        if self.mode == "ok":
            body = b'{"ok": true}'
            conn.sendall(
                b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (self.status, len(body), body)
            )
            return True
        if self.mode == "trickle_headers":
            self._trickle(
                conn, b"HTTP/1.1 204 No Content\r\nX-Slow: " + b"s" * 10_000 + b"\r\n\r\n"
            )
            return False
        if self.mode == "trickle_body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
            self._trickle(conn, b"[" + b"0," * 100_000)
            return False
        conn.sendall(
            b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n\r\n" % self.status
        )  # "endless": no length, the body ends when the connection does
        while seen.sent < LIMIT and not self._stopping.is_set():
            conn.sendall(CHUNK)
            seen.sent += len(CHUNK)
        return False

    def _trickle(self, conn: socket.socket, data: bytes) -> None:
        for i in range(len(data)):
            # Waits by watching the socket: the moment the peer hangs up is when it closed.
            readable, _, _ = select.select([conn], [], [], self.pace)
            if self._stopping.is_set() or (readable and not conn.recv(1)):
                return
            conn.sendall(data[i : i + 1])
