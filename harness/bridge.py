"""The real bridge, ``wandb-bridge serve`` under gunicorn, run on loopback.

:class:`BridgeProcess` writes the config to ``NAME.yaml`` in its work directory, starts
``python -m bridge serve`` on a port of its own in a process group of its own (output
to ``NAME.log``), and returns once ``/healthz`` answers 200 (a slow boot is waited for;
see :func:`harness.processes.wait_healthy`). ``stop`` sends SIGTERM, then SIGKILL, to
the whole group; ``kill9`` kills it at once, as a crash would; ``start`` again serves
on the same port, appending to the same log. Tests and benchmarks both start it here.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness.processes import (
    HOST,
    START_TIMEOUT,
    Processes,
    StartFailed,
    child_env,
    free_port,
    group_pids,
    tail,
    wait_healthy,
)
from harness.wait import NeverHappened, wait_until


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    """``config`` as YAML at ``path``, keys in the order given."""
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path


class BridgeProcess:
    """``wandb-bridge serve`` in its own process group, logging to a file.

    ``workers`` None leaves gunicorn's worker count to ``serve``; ``flags`` are further
    ``serve`` options. ``env`` is added to :func:`harness.processes.child_env`, with a
    metrics directory in ``workdir`` (so a kill -9 leaves nothing in /tmp); the
    resulting ``self.env`` may be changed before ``start``. ``procs``, when given, owns
    the process (its ``close`` stops it too).
    """

    def __init__(
        self,
        workdir: Path,
        config: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        workers: int | None = 2,
        with_worker: bool = True,
        name: str = "bridge",
        *,
        flags: Sequence[str] = (),
        procs: Processes | None = None,
    ) -> None:
        self.workdir = workdir
        self.config_path = write_config(workdir / f"{name}.yaml", config)
        self.log_path = workdir / f"{name}.log"
        metrics = workdir / f"{name}-metrics"
        metrics.mkdir(exist_ok=True)
        self.env = child_env({**(env or {}), "PROMETHEUS_MULTIPROC_DIR": str(metrics)})
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.command = [
            sys.executable, "-m", "bridge", "serve", "--config", str(self.config_path),
            "--bind", f"{HOST}:{self.port}",
            *(["--workers", str(workers)] if workers is not None else []),
            *([] if with_worker else ["--no-worker"]),
            *flags,
        ]  # fmt: skip
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self._procs = procs if procs is not None else Processes()

    def start(self, timeout: float = START_TIMEOUT) -> BridgeProcess:
        """Start serving; return once ``/healthz`` answers 200 and, when ``workers`` is
        known, every gunicorn worker has booted (the first to boot answers ``/healthz``
        while the others may still be starting). Raises
        :class:`harness.processes.StartFailed` with the log's tail if it exits first or
        does not answer within ``timeout`` seconds (the process group is stopped then)."""
        began = time.monotonic()
        self.proc = self._procs.start(
            self.command, env=self.env, cwd=self.workdir, log=self.log_path
        )
        try:
            wait_healthy(self.port, self.proc, self.log_path, timeout)
            if self.workers is not None:
                self._wait_for_workers(self.proc.pid, timeout - (time.monotonic() - began))
        except BaseException:
            self._procs.stop(self.proc)
            raise
        return self

    def _wait_for_workers(self, pgid: int, timeout: float) -> None:
        want = 1 + (self.workers or 0)  # gunicorn's master and its workers
        try:
            wait_until(lambda: len(group_pids(pgid)) >= want, what="workers", timeout=timeout)
        except NeverHappened:
            raise StartFailed(
                f"{self.url}: {want - 1} workers did not all boot in time{self.tail()}"
            ) from None

    def log(self) -> str:
        """Everything the bridge has logged so far (all its starts)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        """The log's last ``lines``, under a heading, for an error message."""
        return tail(self.log_path, lines)

    def kill9(self) -> None:
        """Kill the whole process tree at once, as a crash would."""
        if self.proc is None:
            raise RuntimeError(f"the bridge for {self.url} was never started")
        self._procs.kill(self.proc)

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL if it is still there after a grace; no
        process of the group is left either way. Does nothing if it is not running."""
        if self.proc is not None:
            self._procs.stop(self.proc)
