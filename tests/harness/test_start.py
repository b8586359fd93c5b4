"""Starting a server with :mod:`harness`: a slow ``/healthz`` is waited for, a server that
exits or never answers fails the start with the tail of its log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.bridge import BridgeProcess
from harness.processes import (
    Processes,
    StartFailed,
    child_env,
    free_port,
    healthy,
    start_server,
    wait_healthy,
)
from harness.wait import NeverHappened, wait_until

# A /healthz whose first SLOW answers each take PAUSE seconds (argv: port, SLOW, PAUSE),
# as gunicorn's can while it boots; then 200 at once. "slow answer" in its log each time.
SLOW_HEALTHZ = """
import sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, slow, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        global slow
        with lock:
            late, slow = slow > 0, slow - 1
        if late:
            print("slow answer", flush=True)
            time.sleep(pause)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def test_a_healthz_that_times_out_at_first_does_not_fail_the_start(tmp_path: Path) -> None:
    log, port = tmp_path / "slow.log", free_port()
    with Processes() as procs:
        command = [sys.executable, "-c", SLOW_HEALTHZ, str(port), "3", "2.0"]
        proc = procs.start(command, env=child_env(), cwd=tmp_path, log=log)
        # each of the first three probes gives up after 0.2 s: a read timeout, not an error
        wait_healthy(port, proc, log, timeout=60, probe_timeout=0.2)
        assert healthy(port)
        assert log.read_text().count("slow answer") == 3
    assert proc.poll() is not None  # stopped with its group


def test_a_server_that_exits_early_fails_the_start_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "early.log"
    exits = "print('cannot open the store: disk full', flush=True); raise SystemExit(3)"
    with Processes() as procs, pytest.raises(StartFailed) as failed:
        start_server(procs, lambda port: [sys.executable, "-c", exits],
                     env=child_env(), cwd=tmp_path, log=log)  # fmt: skip
    assert "exited (3)" in str(failed.value)
    assert "cannot open the store: disk full" in str(failed.value)


def test_a_server_that_never_answers_200_fails_at_the_deadline(tmp_path: Path) -> None:
    log = tmp_path / "mute.log"
    mute = "import time; print('listening nowhere', flush=True); time.sleep(600)"
    with Processes() as procs, pytest.raises(StartFailed) as failed:
        start_server(procs, lambda port: [sys.executable, "-c", mute],
                     env=child_env(), cwd=tmp_path, log=log, timeout=1)  # fmt: skip
    assert "no 200 within 1 s" in str(failed.value)
    assert "listening nowhere" in str(failed.value)


def test_a_bridge_with_a_broken_config_fails_the_start_with_its_message(tmp_path: Path) -> None:
    config = {"store": f"sqlite:///{tmp_path}/bridge.db", "sources": {}, "routes": "nope"}
    bridge = BridgeProcess(tmp_path, config, workers=1)
    with pytest.raises(StartFailed) as failed:
        bridge.start()
    assert "routes" in str(failed.value)
    assert bridge.proc is not None and bridge.proc.poll() is not None


def test_wait_until_returns_what_the_condition_gave() -> None:
    answers = iter([None, [], ["ready"]])
    assert wait_until(lambda: next(answers), what="ready", interval=0) == ["ready"]


def test_wait_until_names_what_never_happened() -> None:
    with pytest.raises(NeverHappened, match=r"the queue drained: not so after 0\.1 s"):
        wait_until(lambda: False, what="the queue drained", timeout=0.1, interval=0.02)
