"""Attacks on a file's GET from a server that answers oddly, over a real loopback socket."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from action.commands import Console
from action.errors import DownloadError
from action.http import RetryPolicy, make_session
from action.manifest import Entry
from action.plan import Job
from action.progress import Progress
from action.transfer import Transfer


class _Busy(BaseHTTPRequestHandler):
    """Every GET: 503 with a ``Retry-After`` of one byte, 0xB2 ('²' in Latin-1)."""

    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Retry-After", "\xb2")  # a digit to str.isdigit, not to float()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def busy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/o"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_retry_after_of_a_superscript_digit_is_a_download_error(
    busy: str, tmp_path: Path
) -> None:
    """A 503's ``Retry-After`` that str.isdigit takes for a number is ignored, not a crash:
    the retries run out into a DownloadError, never a ValueError from float()."""
    console = Console(io.StringIO())
    entry = Entry("o.bin", "", 3, "MD5", "", "")
    job = Job(entry, tmp_path / "o.bin", busy)
    session = make_session(2)
    progress = Progress(3, interval=60.0, clock=lambda: 0.0, console=console)
    transfer = Transfer(
        session,
        session,
        policy=RetryPolicy(attempts=2),
        sleep=lambda _: None,
        progress=progress,
        stop=threading.Event(),
    )
    with session, pytest.raises(DownloadError, match="after 2 attempts"):
        transfer.get(job, tmp_path / "staged", busy, None, None)
