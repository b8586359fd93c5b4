"""Child processes on loopback: each in its own process group, stopped with its children.

:class:`Processes` owns the children it starts and stops them together (the bridge's
gunicorn workers with their master) on ``close``. :func:`wait_healthy` waits for a
server's ``/healthz`` and tolerates a slow start: a refused connection, a connect or
read timeout and a non-200 answer all mean "not yet" until the deadline; a child that
exits meanwhile fails at once. Either failure is a :class:`StartFailed` carrying the
last lines of the child's log. Nothing here talks to any host but 127.0.0.1.
"""

from __future__ import annotations

import http.client
import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0  # a loaded machine (two test workers, a benchmark) boots gunicorn slowly
PROBE_TIMEOUT = 2.0  # one /healthz request; a slower answer is retried, not a failure


class StartFailed(RuntimeError):
    """A child exited before it served, or did not answer 200 before the deadline."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: this checkout importable, no proxy for loopback,
    output unbuffered, none of the parent's bridge settings; then ``extra``."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = HOST
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("WANDB_BRIDGE_CONFIG", None)
    env.update(extra or {})
    return env


class Processes:
    """Child processes, each in its own process group, stopped together on ``close``."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``args``; stdout and stderr go to ``log`` (appended; else a pipe the
        caller reads)."""
        out: Any = subprocess.PIPE
        if log is not None:
            out = log.open("ab")
        try:
            proc = subprocess.Popen(
                list(args), stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd,
                start_new_session=True,
            )  # fmt: skip
        finally:
            if log is not None:
                out.close()
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
        """SIGTERM to the process group, SIGKILL if it is still there after ``grace``.
        Does nothing to a process already stopped here (its group id may be reused)."""
        if proc not in self._procs:
            return
        if proc.poll() is None:
            signal_group(proc.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        self.kill(proc)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL to the whole process group at once, as a crash would (nothing if it
        was already stopped here)."""
        if proc not in self._procs:
            return
        # Also after a clean exit: children (gunicorn workers) may outlive their leader.
        signal_group(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        self._procs.remove(proc)

    def close(self) -> None:
        for proc in reversed(list(self._procs)):
            self.stop(proc)


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid``, if it is still there."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def healthy(port: int, path: str = "/healthz", timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether ``GET path`` on ``port`` answers 200 within ``timeout`` seconds; a refused
    or reset connection, a timeout or a broken answer is False."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):  # OSError covers both timeouts
        return False
    finally:
        conn.close()


def wait_healthy(
    port: int,
    proc: subprocess.Popen[bytes],
    log: Path | None,
    timeout: float = START_TIMEOUT,
    *,
    path: str = "/healthz",
    probe_timeout: float = PROBE_TIMEOUT,
) -> None:
    """Wait until ``GET path`` on ``port`` answers 200; raise :class:`StartFailed` (with
    the tail of ``log``) at once if ``proc`` exits meanwhile, or after ``timeout`` s."""
    url = f"http://{HOST}:{port}{path}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise StartFailed(f"{url}: the server exited ({proc.returncode}){tail(log)}")
        if healthy(port, path, min(probe_timeout, max(0.1, deadline - time.monotonic()))):
            return
        if time.monotonic() >= deadline:
            raise StartFailed(f"{url}: no 200 within {timeout:g} s{tail(log)}")
        time.sleep(0.1)


@dataclass(frozen=True)
class Started:
    """A server that :func:`start_server` started and saw healthy on ``port``."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    command: list[str]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def start_server(
    procs: Processes,
    command: Callable[[int], list[str]],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    timeout: float = START_TIMEOUT,
) -> Started:
    """Start ``command(port)`` on a free port, its output to ``log``; return once its
    ``/healthz`` answers 200 (see :func:`wait_healthy`)."""
    port = free_port()
    cmd = command(port)
    proc = procs.start(cmd, env=env, cwd=cwd, log=log)
    wait_healthy(port, proc, log, timeout)
    return Started(port, proc, log, cmd)


def tail(log: Path | None, lines: int = 40) -> str:
    """The last ``lines`` of ``log`` under a heading, for an error message ("" if none)."""
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- last lines of " + str(log) + " ---\n" + "\n".join(text)


def _group_stats(pgid: int) -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields after "(comm)" in /proc/PID/stat) of each process of group
    ``pgid``, zombies included: state ppid pgrp ... utime stime."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if int(fields[2]) == pgid:
            yield int(stat.parent.name), fields


def group_pids(pgid: int) -> set[int]:
    """The live processes of group ``pgid`` (Linux: reads /proc), such as a gunicorn
    master and its workers: a worker that died and was replaced shows as a new pid."""
    return {pid for pid, fields in _group_stats(pgid) if fields[0] != "Z"}


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds used so far by the live processes of group ``pgid``.

    Linux only (reads /proc); NaN elsewhere. Waiting (locks, fsync, sockets) is not CPU.
    """
    if not Path("/proc").is_dir():
        return math.nan
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in _group_stats(pgid))
    return ticks / os.sysconf("SC_CLK_TCK")
