"""Helpers shared by the benchmarks: ports, process groups, health checks, starting the
bridge, configs, signed webhooks, its log, stats.

Every process a benchmark starts runs in its own process group (session) and is owned by
a :class:`Processes` stack, so it is stopped with all its children (gunicorn's workers)
when the benchmark ends, fails, or is interrupted (Ctrl-C, SIGTERM). Nothing here talks
to any host but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

import yaml

from bridge.signature import sign

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
WEBHOOK_PATH = "/webhooks/wandb"
LOG_PATTERNS = {  # what is worth counting in the bridge's log
    "ERROR lines": " ERROR ",
    "WARNING lines": " WARNING ",
    "tracebacks": "Traceback",
    "WORKER TIMEOUT": "WORKER TIMEOUT",
    "worker boots": "Booting worker",
}


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: this checkout importable, no proxy for loopback."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = HOST
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("WANDB_BRIDGE_CONFIG", None)
    env.update(extra or {})
    return env


def arg_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The command line of ``python -m bench.MODULE``, its help the module's docstring."""
    raw = argparse.RawDescriptionHelpFormatter
    return argparse.ArgumentParser(
        f"python -m bench.{module}", description=doc, formatter_class=raw
    )


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
        """Start ``args``; stdout and stderr go to ``log`` (else a pipe the caller reads)."""
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

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
        """SIGTERM to the process group, SIGKILL if it is still there after ``grace``."""
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        # Children (gunicorn workers) may outlive a leader that exited: sweep the group.
        _signal_group(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc in self._procs:
            self._procs.remove(proc)

    def close(self) -> None:
        for proc in reversed(list(self._procs)):
            self.stop(proc)


def _signal_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so ``finally`` blocks (process cleanup) run."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes], log: Path | None, timeout: float = 30.0
) -> None:
    """Wait until ``GET url`` answers 200; fail at once if ``proc`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({proc.returncode}){tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}: no 200 within {timeout:g} s{tail(log)}")


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
) -> Started:
    """Start ``command(port)`` on a free port, its output to ``log``; return once its
    ``/healthz`` answers 200."""
    port = free_port()
    cmd = command(port)
    proc = procs.start(cmd, env=env, cwd=cwd, log=log)
    wait_healthy(f"http://{HOST}:{port}/healthz", proc, log)
    return Started(port, proc, log, cmd)


def bridge_env(tmp: Path) -> dict[str, str]:
    """The environment of a bridge run in ``tmp``: the benchmark's secrets, and a metrics
    directory of its own (``serve`` would otherwise make one in /tmp and leave it)."""
    (tmp / "metrics").mkdir(exist_ok=True)
    return child_env({**BENCH_SECRETS, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics")})


def start_bridge(procs: Processes, tmp: Path, config: Mapping[str, Any], *flags: str) -> Started:
    """``wandb-bridge serve`` (as ``python -m bridge serve``) with ``config`` and ``flags``,
    run in ``tmp`` (config ``bridge.yaml``, log ``bridge.log``); returns once healthy."""
    config_path = write_config(tmp / "bridge.yaml", config)

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "bridge", "serve", "--config", str(config_path),
                "--bind", f"{HOST}:{port}", *flags]  # fmt: skip

    return start_server(procs, command, env=bridge_env(tmp), cwd=tmp, log=tmp / "bridge.log")


def tail(log: Path | None, lines: int = 20) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- last lines of " + str(log) + " ---\n" + "\n".join(text)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds used so far by the live processes of group ``pgid``.

    Linux only (reads /proc); NaN elsewhere. Waiting (locks, fsync, sockets) is not CPU.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return math.nan
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime stime
            total += int(fields[11]) + int(fields[12])
    return total / tick


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path


def bridge_config(
    store_dir: Path,
    *,
    api_url: str | None = None,
    dedupe_window: str = "10m",
    log_level: str = "INFO",
    synchronous: str | None = None,
) -> dict[str, Any]:
    """One source (one secret, one token from the environment), one matching route.

    Without ``api_url`` GitHub is in dry-run mode (nothing is sent anywhere).
    """
    github: dict[str, Any] = {"repositories": ["acme/*"]}
    if api_url is None:
        github["dry_run"] = True
    else:
        github.update(api_url=api_url, token={"env": "BENCH_GITHUB_TOKEN"})
    return {
        "store": f"sqlite:///{store_dir / 'bridge.db'}"
        + (f"?synchronous={synchronous}" if synchronous else ""),
        "dedupe_window": dedupe_window,
        "sources": {
            "wandb": {
                "secrets": [{"env": "BENCH_WEBHOOK_SECRET"}],
                "tokens": [{"env": "BENCH_WEBHOOK_TOKEN"}],
            }
        },
        "github": github,
        "routes": [
            {
                "name": "deploy-production",
                "when": {"event_type": "ADD_ARTIFACT_ALIAS", "alias": "production"},
                "dispatch": {
                    "repository": "acme/churn-svc",
                    "event_type": "DEPLOY_MODEL",
                    "client_payload": {
                        "artifact_version_string": "${artifact_version_string}",
                        "event_author": "${event_author}",
                        "bench_marker": "${artifact_metadata.bench_marker}",
                    },
                },
            }
        ],
        "logging": {"level": log_level},
    }


# Secrets for the benchmark's own throwaway bridge; passed to children via the environment.
BENCH_SECRETS = {
    "BENCH_WEBHOOK_SECRET": "bench-only-webhook-secret",
    "BENCH_WEBHOOK_TOKEN": "bench-only-access-token",
    "BENCH_GITHUB_TOKEN": "bench-only-dummy-github-token",
}


def log_line(text: str, patterns: Mapping[str, str] = LOG_PATTERNS) -> str:
    """``bridge log: ERROR lines 0, ...``: how many times each of ``patterns`` stands in
    the bridge's log ``text``."""
    return "bridge log: " + ", ".join(f"{k} {text.count(v)}" for k, v in patterns.items())


def first_error(text: str) -> str | None:
    """The first ERROR or Traceback line of the log ``text``, if any."""
    for line in text.splitlines():
        if " ERROR " in line or "Traceback" in line:
            return line
    return None


def wandb_body(marker: str, n: int) -> bytes:
    """A W&B "alias added" payload, unique through ``marker`` (the dedupe key is the body)."""
    return (
        '{"event_type":"ADD_ARTIFACT_ALIAS","event_author":"bench","entity_name":"acme",'
        '"project_name":"churn","artifact_collection_name":"churn-model",'
        f'"artifact_version":"wandb-artifact://_id/QXJ0aWZhY3Q6{n}",'
        f'"artifact_version_string":"acme/churn/churn-model:v{n}","alias":"production",'
        f'"artifact_metadata":{{"bench_marker":"{marker}"}}}}'
    ).encode()


def webhook_request(marker: str, n: int) -> tuple[bytes, dict[str, str]]:
    """:func:`wandb_body` and the headers W&B sends with it (token, signature)."""
    body = wandb_body(marker, n)
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {BENCH_SECRETS['BENCH_WEBHOOK_TOKEN']}",
        "X-Wandb-Signature": sign(BENCH_SECRETS["BENCH_WEBHOOK_SECRET"], body),
    }
    return body, headers


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def machine_load() -> str:
    """The 1-minute load average against the CPU count: other work skews the figures."""
    try:
        one = os.getloadavg()[0]
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} on {os.cpu_count()} CPUs"


def say(text: str = "", stream: TextIO = sys.stdout) -> None:
    print(text, file=stream, flush=True)


def run_main(main: Callable[[], int]) -> NoReturn:
    """Exit with ``main()``'s status; Ctrl-C exits 130 (the servers are stopped by then)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted; every process this benchmark started has been stopped", sys.stderr)
        sys.exit(130)
