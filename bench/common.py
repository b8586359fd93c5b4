"""Helpers shared by the benchmarks: the command line, starting the bridge, configs,
signed webhooks, its log, stats.

Processes are started by :mod:`harness` (shared with the tests): every process a
benchmark starts runs in its own process group (session) and is owned by a
:class:`harness.processes.Processes` stack, so it is stopped with all its children
(gunicorn's workers) when the benchmark ends, fails, or is interrupted (Ctrl-C,
SIGTERM). Nothing here talks to any host but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO

from bridge.signature import sign
from harness.bridge import BridgeProcess
from harness.processes import Processes, Started, child_env

WEBHOOK_PATH = "/webhooks/wandb"
LOG_PATTERNS = {  # what is worth counting in the bridge's log
    "ERROR lines": " ERROR ",
    "WARNING lines": " WARNING ",
    "tracebacks": "Traceback",
    "WORKER TIMEOUT": "WORKER TIMEOUT",
    "worker boots": "Booting worker",
}


def arg_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The command line of ``python -m bench.MODULE``, its help the module's docstring."""
    raw = argparse.RawDescriptionHelpFormatter
    return argparse.ArgumentParser(
        f"python -m bench.{module}", description=doc, formatter_class=raw
    )


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


def bridge_env(tmp: Path) -> dict[str, str]:
    """The environment of a bridge run in ``tmp``: the benchmark's secrets, and a metrics
    directory of its own (``serve`` would otherwise make one in /tmp and leave it)."""
    (tmp / "metrics").mkdir(exist_ok=True)
    return child_env({**BENCH_SECRETS, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics")})


def start_bridge(procs: Processes, tmp: Path, config: Mapping[str, Any], *flags: str) -> Started:
    """``wandb-bridge serve`` (as ``python -m bridge serve``) with ``config`` and ``flags``,
    run in ``tmp`` (config ``bridge.yaml``, log ``bridge.log``) with the benchmark's
    secrets, owned by ``procs``; returns once healthy (:class:`harness.bridge.BridgeProcess`)."""
    bridge = BridgeProcess(tmp, config, BENCH_SECRETS, workers=None, flags=flags, procs=procs)
    bridge.start()
    assert bridge.proc is not None
    return Started(bridge.port, bridge.proc, bridge.log_path, bridge.command)


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
