"""Footprint: what ``wandb-bridge serve`` costs while nothing happens.

    python -m bench.footprint [--idle 60] [--workers 2] [--events 20]

The quality bar: ``serve`` with 2 workers (a delivery worker in each), idle for a
minute, uses under 1 % of a core and under 200 MB of memory in all its processes
together. The bridge first takes ``--events`` webhooks and delivers them to a GitHub
stand-in (so its connections, caches and threads are those of a bridge that has
worked), then waits ``--idle`` seconds untouched. CPU is the user + system time of the
whole process group over the idle span; memory is the sum of the processes' resident
sets at its end (pages gunicorn's fork shares are counted once per process, so this
overstates) and the sum of their proportional sets (PSS, shared pages split). Figures
are printed, never asserted. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import http.client
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from bench.common import (
    WEBHOOK_PATH,
    arg_parser,
    bridge_config,
    machine_load,
    run_main,
    say,
    start_bridge,
    terminate_on_sigterm,
    webhook_request,
)
from bench.standin import GitHubStandIn
from harness.processes import HOST, Processes, group_cpu_seconds

CPU_BAR = 0.01  # of one core
MEMORY_BAR_MB = 200.0


def _parser() -> argparse.ArgumentParser:
    p = arg_parser("footprint", __doc__)
    p.add_argument("--idle", type=float, default=60.0, help="seconds measured idle (60)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--events", type=int, default=20, help="webhooks delivered first (20)")
    return p


def group_memory_mb(pgid: int) -> tuple[float, float, int]:
    """(RSS sum, PSS sum) in MB of the live processes of group ``pgid``, and how many."""
    rss = pss = 0
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            rollup = (stat.parent / "smaps_rollup").read_text()
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        fields = {k: v for k, _, v in (line.partition(":") for line in rollup.splitlines())}
        rss += int(fields["Rss"].split()[0])
        pss += int(fields["Pss"].split()[0])
        count += 1
    return rss / 1024, pss / 1024, count


def _post(port: int, marker: str, n: int) -> int:
    body, headers = webhook_request(marker, n)
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", WEBHOOK_PATH, body, headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with ExitStack() as stack:
        stack.enter_context(terminate_on_sigterm())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wandb-bridge-bench-")))
        github = stack.enter_context(GitHubStandIn())
        procs = stack.enter_context(Processes())
        config = bridge_config(tmp, api_url=github.url)
        bridge = start_bridge(procs, tmp, config, "--workers", str(args.workers))
        say(f"footprint benchmark (figures only, nothing asserted); {machine_load()}")
        say(f"  bridge: {' '.join(bridge.command[1:])}, GitHub stand-in {github.url}")
        run = uuid.uuid4().hex[:8]
        markers = {f"{run}-{n}" for n in range(args.events)}
        codes = [_post(bridge.port, marker, n) for n, marker in enumerate(sorted(markers))]
        delivered = github.wait_for_markers(markers, 30.0)
        time.sleep(2.0)  # let the last attempt's bookkeeping finish before the clock starts
        pgid = bridge.proc.pid
        cpu_before, started = group_cpu_seconds(pgid), time.monotonic()
        time.sleep(args.idle)
        cpu = group_cpu_seconds(pgid) - cpu_before
        span = time.monotonic() - started
        rss, pss, count = group_memory_mb(pgid)
    share = cpu / span
    accepted = sum(1 for c in codes if c == 202)
    say("")
    say("=== footprint summary " + "=" * 57)
    reached = "all" if delivered else "NOT all"
    say(f"warm-up: {accepted}/{args.events} webhooks 202, {reached} delivered")
    cpu_verdict = "meets" if share < CPU_BAR else "MISSES"
    say(f"idle {span:.1f} s: CPU {cpu:.2f} s = {100 * share:.2f} % of a core "
        f"(bar < {100 * CPU_BAR:g} %: {cpu_verdict})")  # fmt: skip
    memory_verdict = "meets" if rss < MEMORY_BAR_MB else "MISSES"
    say(f"memory of {count} processes: RSS sum {rss:.0f} MB, PSS sum {pss:.0f} MB "
        f"(bar < {MEMORY_BAR_MB:g} MB on the RSS sum: {memory_verdict})")  # fmt: skip
    say("=" * 79)
    return 0 if accepted == args.events and delivered else 1


if __name__ == "__main__":
    run_main(main)
