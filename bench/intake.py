"""Intake throughput: the bridge's accept path against a bare signature-checking Flask app.

    python -m bench.intake [--duration 15] [--rounds 2] [--threads 2] [--connections 16]

SPEC §8: requests/s of the full accept path (token + signature + durable write + 202)
under gunicorn, against a bare Flask app that only verifies the signature
(bench/baseline_app.py), same gunicorn settings, same load generator, same run; the bar
is a ratio ≥ 0.6. The bridge runs ``wandb-bridge serve --no-worker``: the accept path
only, no delivery worker competing for the CPU or the SQLite write lock.

Both servers stay up for the whole run; wrk hits them in turn, baseline then bridge,
``--rounds`` times (A B A B ...), after a warm-up of each. Every request carries a body
never sent before (the bridge de-duplicates identical bodies within ``dedupe_window``,
and the de-duplication write is part of the accept path): the bodies are signed here
ahead of time and replayed by bench/intake.lua. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import math
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_SECRETS,
    HOST,
    REPO_ROOT,
    Processes,
    bridge_config,
    child_env,
    free_port,
    group_cpu_seconds,
    machine_load,
    run_main,
    say,
    tail,
    terminate_on_sigterm,
    wait_healthy,
    wandb_body,
    write_config,
)

LUA = REPO_ROOT / "bench" / "intake.lua"
PATH = "/webhooks/wandb"
# The gunicorn settings bridge/serve.py passes (timeouts, no access log, no control
# socket, errors to stderr, app preloaded in the master), as command-line flags.
GUNICORN_FLAGS = ("--worker-class", "sync", "--timeout", "30", "--graceful-timeout", "30",
                  "--error-logfile", "-", "--no-control-socket", "--preload")  # fmt: skip
FIRST_GUESS = 8000.0  # req/s: the fewest bodies a run gets; later runs use measurements


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    command: list[str]
    rate_guess: float = FIRST_GUESS


@dataclass(frozen=True)
class Run:
    server: str
    label: str
    requests: int
    seconds: float
    codes: dict[int, int]
    wrapped: int
    socket_errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_s: float  # CPU used by the server's processes (master and workers) during the run

    @property
    def accepted(self) -> int:
        return self.codes.get(202, 0)

    @property
    def rate(self) -> float:
        """202 answers per second (a run with anything else is flagged, not hidden)."""
        return self.accepted / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_s * 1000 / self.requests if self.requests else math.nan

    @property
    def problems(self) -> str:
        issues = [f"{n}x HTTP {c}" for c, n in sorted(self.codes.items()) if c != 202]
        issues += [f"{n} {kind} errors" for kind, n in self.socket_errors.items() if n]
        if self.wrapped:
            issues.append(f"bodies ran out {self.wrapped}x (repeats sent)")
        return ", ".join(issues)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--duration", type=int, default=15, help="seconds per measured run")
    p.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per server")
    p.add_argument("--rounds", type=int, default=2, help="baseline+bridge pairs (default 2)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers, both servers")
    g = p.add_argument_group("bridge config variants (for investigation; defaults = spec)")
    g.add_argument("--log-level", default="INFO", help="the bridge's logging.level")
    g.add_argument("--dedupe-window", default="10m", help="the bridge's dedupe_window")
    g.add_argument(
        "--synchronous",
        choices=["normal", "full"],
        default=None,
        help="the SQLite store's synchronous option (default: the bridge's, normal)",
    )
    g.add_argument("--store-dir", type=Path, default=None,
                   help="directory for the SQLite file (default: a temp dir under $TMPDIR; "
                   "/dev/shm takes the disk's fsync out)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if shutil.which("wrk") is None:
        say("bench.intake: wrk is not installed (apt-get install wrk)", sys.stderr)
        return 2
    # Exit order matters: processes are stopped before their directories are removed.
    with ExitStack() as stack:
        stack.enter_context(terminate_on_sigterm())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wandb-bridge-bench-")))
        store_parent = args.store_dir or tmp
        store = stack.enter_context(tempfile.TemporaryDirectory(prefix="store-", dir=store_parent))
        procs = stack.enter_context(Processes())
        return _bench(args, procs, tmp, Path(store))


def _bench(args: argparse.Namespace, procs: Processes, tmp: Path, store_dir: Path) -> int:
    # Our own metrics directory: ``serve`` would otherwise make one in /tmp and leave it.
    (tmp / "metrics").mkdir()
    env = child_env({**BENCH_SECRETS, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics")})
    config = bridge_config(
        store_dir,
        dedupe_window=args.dedupe_window,
        log_level=args.log_level,
        synchronous=args.synchronous,
    )
    config_path = write_config(tmp / "bridge.yaml", config)

    baseline = _start(procs, tmp, env, "baseline", args.workers, lambda port: [
        sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{port}",
        "--workers", str(args.workers), *GUNICORN_FLAGS, "bench.baseline_app:create_app()",
    ])  # fmt: skip
    bridge = _start(procs, tmp, env, "bridge", args.workers, lambda port: [
        sys.executable, "-m", "bridge", "serve", "--config", str(config_path),
        "--bind", f"{HOST}:{port}", "--workers", str(args.workers), "--no-worker",
    ])  # fmt: skip
    wrk_flags = ["-t", str(args.threads), "-c", str(args.connections), "--timeout", "10s"]
    say(f"intake benchmark (figures only, nothing asserted); {machine_load()}")
    say(f"  baseline: {' '.join(baseline.command[1:])}")
    say(f"  bridge:   {' '.join(bridge.command[1:])}")
    say("            accept path only (--no-worker): token + signature + dedupe + SQLite "
        f"commit (WAL, synchronous={args.synchronous or 'normal'}) + 202")  # fmt: skip
    say(f"            config: dedupe_window {args.dedupe_window}, logging.level "
        f"{args.log_level}, store {store_dir}")  # fmt: skip
    say(f"  load:     wrk {' '.join(wrk_flags)} -d{args.duration}s -s bench/intake.lua, "
        "one unique pre-signed body per request")  # fmt: skip

    marker = uuid.uuid4().hex[:8]
    warmups, runs = [], []
    for server in (baseline, bridge):
        warmups.append(_wrk(procs, tmp, server, wrk_flags, args.warmup, "warm-up", marker))
        say(_line(warmups[-1]))
    for n in range(1, args.rounds + 1):
        for server in (baseline, bridge):
            runs.append(_wrk(procs, tmp, server, wrk_flags, args.duration, f"round {n}", marker))
            say(_line(runs[-1]))

    answered = sum(r.accepted for r in warmups + runs if r.server == "bridge")
    _summary(args, runs, _count_events(store_dir / "bridge.db"), answered)
    return 0 if all(not r.problems for r in runs) else 1


def _start(procs: Processes, tmp: Path, env: dict[str, str], name: str, workers: int,
           command: Any) -> Server:  # fmt: skip
    port = free_port()
    cmd = command(port)
    log = tmp / f"{name}.log"
    proc = procs.start(cmd, env=env, cwd=tmp if name == "bridge" else REPO_ROOT, log=log)
    wait_healthy(f"http://{HOST}:{port}/healthz", proc, log)
    return Server(name, f"http://{HOST}:{port}", proc, log, cmd)


def _write_bodies(prefix: Path, threads: int, per_thread: int, marker: str) -> None:
    """One file per wrk thread of ``<signature>\\t<body>`` lines, every body distinct."""
    key = BENCH_SECRETS["BENCH_WEBHOOK_SECRET"].encode()
    for t in range(1, threads + 1):
        lines = []
        for i in range(per_thread):
            body = wandb_body(f"{marker}-{t}-{i}", i)
            sig = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest())
            lines.append(sig + b"\t" + body + b"\n")
        Path(f"{prefix}.{t}").write_bytes(b"".join(lines))


def _wrk(procs: Processes, tmp: Path, server: Server, flags: list[str], seconds: int,
         label: str, marker: str) -> Run:  # fmt: skip
    """One wrk run against ``server`` with fresh bodies: twice what its last rate needs."""
    threads = int(flags[flags.index("-t") + 1])
    rate = max(server.rate_guess * 2, FIRST_GUESS)
    per_thread = math.ceil(rate * seconds / threads) + 1000
    prefix = tmp / "bodies"
    _write_bodies(prefix, threads, per_thread, f"{marker}-{server.name}-{label.replace(' ', '')}")
    cmd = ["wrk", *flags, f"-d{seconds}s", "-s", str(LUA), server.url + PATH, "--",
           str(prefix), PATH, BENCH_SECRETS["BENCH_WEBHOOK_TOKEN"]]  # fmt: skip
    cpu_before = group_cpu_seconds(server.proc.pid)
    proc = procs.start(cmd, env=child_env(), cwd=tmp)
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    finally:
        procs.stop(proc)
    cpu = group_cpu_seconds(server.proc.pid) - cpu_before
    for t in range(1, threads + 1):
        Path(f"{prefix}.{t}").unlink()
    text = out.decode(errors="replace")
    found = [ln for ln in text.splitlines() if ln.startswith("BENCH_RESULT ")]
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{text}{tail(server.log)}")
    data = json.loads(found[-1].removeprefix("BENCH_RESULT "))
    lat = data["latency_us"]
    run = Run(
        server.name, label, data["requests"], data["duration_us"] / 1e6,
        {int(c): n for c, n in data["codes"].items()}, data["wrapped"],
        {k: v for k, v in data["errors"].items() if k != "status"},
        lat["p50"] / 1000, lat["p90"] / 1000, lat["p99"] / 1000, lat["max"] / 1000, cpu,
    )  # fmt: skip
    if run.rate > 0:
        server.rate_guess = run.rate
    return run


def _line(r: Run) -> str:
    return (
        f"  {r.label:8} {r.server:8} {r.rate:8.0f} req/s  202: {r.accepted}/{r.requests}  "
        f"latency p50 {r.p50_ms:6.2f} ms  p90 {r.p90_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
        f"max {r.max_ms:7.2f} ms  CPU {r.cpu_ms_per_request:.2f} ms/req  "
        f"{('ERRORS: ' + r.problems) if r.problems else 'ok'}"
    )


def _count_events(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def _summary(args: argparse.Namespace, runs: list[Run], stored: int, answered: int) -> None:
    base = [r for r in runs if r.server == "baseline"]
    brid = [r for r in runs if r.server == "bridge"]
    ratios = [b.rate / a.rate if a.rate else math.nan for a, b in zip(base, brid, strict=True)]
    mean_a = statistics.fmean(r.rate for r in base)
    mean_b = statistics.fmean(r.rate for r in brid)
    ratio = mean_b / mean_a if mean_a else math.nan
    say()
    say("=== intake summary " + "=" * 60)
    say(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} rounds "
        f"(baseline, bridge alternated), gunicorn sync x{args.workers} for both")  # fmt: skip
    say("bridge = wandb-bridge serve --no-worker (accept path only, no delivery worker)")
    say(f"{'round':>6} {'baseline req/s':>15} {'bridge req/s':>13} {'ratio':>6}   "
        f"{'baseline p50/p99 ms':>20} {'bridge p50/p99 ms':>18}")  # fmt: skip
    for i, (a, b, q) in enumerate(zip(base, brid, ratios, strict=True), 1):
        say(f"{i:>6} {a.rate:>15.0f} {b.rate:>13.0f} {q:>6.2f}   "
            f"{a.p50_ms:>9.2f} / {a.p99_ms:<8.2f} {b.p50_ms:>8.2f} / {b.p99_ms:<8.2f}")  # fmt: skip
    verdict = "meets" if ratio >= 0.6 else "BELOW"
    say(
        f"{'mean':>6} {mean_a:>15.0f} {mean_b:>13.0f} {ratio:>6.2f}   "
        f"(bar >= 0.60: {verdict}; per-round ratios {min(ratios):.2f}..{max(ratios):.2f})"
    )
    say(
        f"bridge latency p50 {statistics.median(r.p50_ms for r in brid):.2f} ms, "
        f"p99 {statistics.median(r.p99_ms for r in brid):.2f} ms; baseline p50 "
        f"{statistics.median(r.p50_ms for r in base):.2f} ms, "
        f"p99 {statistics.median(r.p99_ms for r in base):.2f} ms (median of rounds)"
    )
    cpu_a = statistics.fmean(r.cpu_ms_per_request for r in base)
    cpu_b = statistics.fmean(r.cpu_ms_per_request for r in brid)
    say(
        f"server CPU per request (user+sys, all its processes): baseline {cpu_a:.2f} ms, "
        f"bridge {cpu_b:.2f} ms ({cpu_b / cpu_a:.1f}x); waiting (SQLite lock, fsync) is not CPU"
    )
    bad = [f"{r.server} {r.label}: {r.problems}" for r in runs if r.problems]
    say("responses: all 202, no socket errors" if not bad else "ERRORS: " + "; ".join(bad))
    say(
        f"store check: {stored} events stored, {answered} answered 202 by the bridge "
        f"(stored >= answered expected; wrk drops in-flight answers at the end)"
    )
    say(f"machine at the end: {machine_load()} (wrk and both servers share these CPUs)")
    say("=" * 79)


if __name__ == "__main__":
    run_main(main)
