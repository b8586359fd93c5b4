"""Run the real bridge under gunicorn on loopback, and talk to it as W&B does."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from bridge.signature import sign

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BridgeProcess:
    """``wandb-bridge serve`` in its own process group, logging to a file."""

    def __init__(
        self,
        workdir: Path,
        config: dict[str, Any],
        env: dict[str, str],
        workers: int = 2,
        with_worker: bool = True,
        name: str = "bridge",
    ) -> None:
        self.workdir = workdir
        self.config_path = workdir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / f"{name}.log"
        # the metrics directory lives with the test, so a kill -9 leaves nothing in /tmp
        metrics = workdir / f"{name}-metrics"
        metrics.mkdir(exist_ok=True)
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1",
                    "PROMETHEUS_MULTIPROC_DIR": str(metrics)}  # fmt: skip
        self.workers = workers
        self.with_worker = with_worker
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> BridgeProcess:
        args = [
            sys.executable,
            "-m",
            "bridge",
            "serve",
            "--config",
            str(self.config_path),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
        ]
        if not self.with_worker:
            args.append("--no-worker")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"bridge exited {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"bridge did not come up:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        """Kill the whole process tree at once, as a crash would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        # gunicorn workers may outlive the master by a moment; make sure none is left
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def post(
    url: str,
    body: bytes,
    *,
    secret: str | None = None,
    token: str | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """POST ``body`` exactly as W&B sends a webhook."""
    h = {"Content-Type": content_type} if content_type else {}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if secret is not None:
        h["X-Wandb-Signature"] = sign(secret, body)
    h.update(headers or {})
    return requests.post(url, data=body, headers=h, timeout=30)


def assert_error(resp: requests.Response, status: int, code: str) -> None:
    """A refusal with ``status`` and the JSON error body a W&B admin can read."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and len(body["message"]) > 20


def events_in_store(bridge: BridgeProcess) -> int:
    """How many events the bridge's SQLite store holds."""
    with sqlite3.connect(bridge.workdir / "bridge.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def events_cli(bridge: BridgeProcess, *args: str, check: bool = True) -> str:
    """``wandb-bridge events ARGS`` on the bridge's config; its standard output."""
    return subprocess.run(
        [sys.executable, "-m", "bridge", "events", *args, "--config", str(bridge.config_path)],
        capture_output=True,
        text=True,
        env=bridge.env,
        check=check,
    ).stdout
