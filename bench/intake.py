"""Intake as users run it: ``wandb-bridge serve`` with its delivery workers, against a
bare signature-checking Flask app.

    python -m bench.intake [--duration 10] [--rounds 2] [--threads 2] [--connections 16]

The quality bar: events/s accepted by ``wandb-bridge serve`` (default settings: 2 gunicorn
processes of 64 threads, a delivery worker in each), every event sent on to a GitHub
stand-in that answers 204 after 100 ms, ≥ 0.25x a bare Flask app that only verifies the
signature (bench/baseline_app.py) under the same gunicorn settings, same load generator
(wrk), same run; p99 of the 202 ≤ 100 ms; no error. At the end, every accepted event
must have reached the stand-in exactly once.

Both servers stay up for the whole run; wrk hits them in turn, baseline then bridge,
``--rounds`` times, after a warm-up of each. While the baseline is measured the bridge
is paused (SIGSTOP to its process group, SIGCONT after), so the backlog its delivery
workers are draining does not take the baseline's CPU; while the bridge is measured, it
delivers as it would for a user. Every request carries a body never sent before (the
bridge de-duplicates identical bodies): the bodies are signed here ahead of time and
replayed by bench/intake.lua. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, closing, suppress
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    BENCH_SECRETS,
    WEBHOOK_PATH,
    arg_parser,
    bridge_config,
    bridge_env,
    first_error,
    log_line,
    machine_load,
    run_main,
    say,
    start_bridge,
    terminate_on_sigterm,
    wandb_body,
)
from bench.standin import GitHubStandIn
from bridge.signature import sign
from harness.processes import (
    HOST,
    REPO_ROOT,
    Processes,
    Started,
    child_env,
    group_cpu_seconds,
    start_server,
    tail,
)

LUA = REPO_ROOT / "bench" / "intake.lua"
# The gunicorn settings bridge/server.py uses (threaded workers, timeouts, no access log,
# no control socket, errors to stderr, app preloaded), as command-line flags; --workers
# and --threads are added from the options, for both servers.
GUNICORN_FLAGS = ("--worker-class", "gthread", "--timeout", "30", "--graceful-timeout", "30",
                  "--error-logfile", "-", "--no-control-socket", "--preload")  # fmt: skip
FIRST_GUESS = 4000.0  # req/s: the fewest bodies a run gets; later runs use measurements
MAX_PAUSE = 25  # s: gunicorn's master kills a worker silent for 30 s, paused time included


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
    event_ids: list[str] = field(default_factory=list)  # from the 202 answers (bridge only)
    split: tuple[float, ...] = ()  # each process's share of that CPU, largest first

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


@dataclass
class Deliveries:
    """What reached the stand-in, against the events the bridge accepted."""

    accepted: int = 0  # distinct event ids in 202 answers wrk received
    drained: bool = False
    drain_s: float = 0.0  # end of the last bridge round -> the last accepted event arrived
    during_load: int = 0  # events delivered before the load stopped
    lookups: str = ""  # the stand-in's GETs
    checked: bool = True  # False with --no-worker: nothing is delivered
    delivered: int = 0  # accepted ids that reached the stand-in
    doubled: int = 0  # ids the stand-in answered 204 more than once
    extra: int = 0  # ids delivered that no 202 wrk received carried (answers in flight)
    malformed: int = 0
    stored_events: int | None = None
    store_states: dict[str, int] = field(default_factory=dict)
    store_error: str = ""
    log_line: str = ""  # what is worth counting in the bridge's log

    @property
    def ok(self) -> bool:
        if not self.checked:
            return True
        # Every delivery in the store delivered, one per stored event (one route matches),
        # and exactly those reached the stand-in, once each.
        states_ok = self.store_states.get("delivered") == self.stored_events and not any(
            v for k, v in self.store_states.items() if k != "delivered"
        )
        return (
            self.drained
            and self.delivered == self.accepted
            and not self.doubled
            and not self.malformed
            and states_ok
            and self.stored_events == self.delivered + self.extra
        )


def _parser() -> argparse.ArgumentParser:
    p = arg_parser("intake", __doc__)
    p.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    p.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per server")
    p.add_argument("--rounds", type=int, default=2, help="baseline+bridge pairs (default 2)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn processes, both servers")
    p.add_argument("--server-threads", type=int, default=64,
                   help="gunicorn threads per process, both servers (default 64)")  # fmt: skip
    p.add_argument("--github-delay", type=float, default=0.1,
                   help="seconds the GitHub stand-in takes to answer (default 0.1)")  # fmt: skip
    p.add_argument("--keep-logs", metavar="DIR", help="copy both servers' logs to DIR")
    p.add_argument("--slow-drain", action="store_true",
                   help="keep the stand-in's delay while the backlog drains after the load "
                   "(default: it answers at once then, so the check takes seconds)")  # fmt: skip
    p.add_argument("--drain-wait", type=float, default=300.0,
                   help="bound on the wait for every delivery (default 300 s)")  # fmt: skip
    p.add_argument("--settle", type=float, default=3.0,
                   help="seconds after the drain before counting again (late doubles)")  # fmt: skip
    g = p.add_argument_group("bridge config variants (for investigation; defaults = spec)")
    g.add_argument("--no-worker", action="store_true",
                   help="serve --no-worker: the accept path alone, nothing delivered")  # fmt: skip
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
    # Exit order matters: processes are stopped before the stand-in closes and their
    # directories are removed.
    with ExitStack() as stack:
        stack.enter_context(terminate_on_sigterm())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wandb-bridge-bench-")))
        store_parent = args.store_dir or tmp
        store = stack.enter_context(tempfile.TemporaryDirectory(prefix="store-", dir=store_parent))
        github = stack.enter_context(GitHubStandIn(delay=args.github_delay))
        procs = stack.enter_context(Processes())
        return _bench(args, procs, tmp, Path(store), github)
    return 1  # not reached


def _bench(args: argparse.Namespace, procs: Processes, tmp: Path, store_dir: Path,
           github: GitHubStandIn) -> int:  # fmt: skip
    config = bridge_config(
        store_dir,
        api_url=github.url,
        dedupe_window=args.dedupe_window,
        log_level=args.log_level,
        synchronous=args.synchronous,
    )
    sizing = ["--workers", str(args.workers), "--threads", str(args.server_threads)]

    def baseline_command(port: int) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{port}", *sizing,
                *GUNICORN_FLAGS, "bench.baseline_app:create_app()"]  # fmt: skip

    # The baseline runs with the bridge's environment (the same secrets).
    env, log = bridge_env(tmp), tmp / "baseline.log"
    baseline = _server(
        "baseline", start_server(procs, baseline_command, env=env, cwd=REPO_ROOT, log=log)
    )
    no_worker = ["--no-worker"] if args.no_worker else []
    bridge = _server("bridge", start_bridge(procs, tmp, config, *sizing, *no_worker))
    pause = max(args.duration, args.warmup) <= MAX_PAUSE
    wrk_flags = ["-t", str(args.threads), "-c", str(args.connections), "--timeout", "10s"]
    say(f"intake benchmark (figures only, nothing asserted); {machine_load()}")
    say(f"  baseline: {' '.join(baseline.command[1:])}")
    say(f"  bridge:   {' '.join(bridge.command[1:])}")
    say("            = wandb-bridge serve: token + signature + dedupe + SQLite commit "
        f"(synchronous={args.synchronous or 'normal'}) + 202, and a delivery worker in "
        "each process")  # fmt: skip
    say(f"            GitHub stand-in {github.url} answering 204 after "
        f"{args.github_delay * 1000:g} ms; store {store_dir}")  # fmt: skip
    say(f"  load:     wrk {' '.join(wrk_flags)} -d{args.duration}s -s bench/intake.lua, "
        "one unique pre-signed body per request")  # fmt: skip
    say("            the bridge is " + ("paused (SIGSTOP) while the baseline is measured"
        if pause else f"NOT paused during baseline runs (runs over {MAX_PAUSE} s)"))  # fmt: skip

    marker = uuid.uuid4().hex[:8]
    runs: list[Run] = []
    warmups: list[Run] = []

    def measure(server: Server, seconds: int, label: str) -> Run:
        if pause and server is baseline:
            with _paused(bridge):
                return _wrk(procs, tmp, server, wrk_flags, seconds, label, marker)
        return _wrk(procs, tmp, server, wrk_flags, seconds, label, marker)

    for server in (baseline, bridge):
        warmups.append(measure(server, args.warmup, "warm-up"))
        say(_line(warmups[-1]))
    for n in range(1, args.rounds + 1):
        for server in (baseline, bridge):
            runs.append(measure(server, args.duration, f"round {n}"))
            say(_line(runs[-1]))

    during_load = len(github.delivered())
    if not args.slow_drain:
        github.delay = 0.0  # the drain only checks that each event arrives, once
    accepted = {e for r in warmups + runs for e in r.event_ids}
    answered = sum(r.accepted for r in warmups + runs if r.server == "bridge")
    answering = f"after {args.github_delay * 1000:g} ms" if args.slow_drain else "at once"
    say(f"  delivering: {len(accepted)} accepted events (from {answered} 202s; "
        f"{during_load} delivered while the load ran) to reach the stand-in, now answering "
        f"{answering}, at most {args.drain_wait:g} s ...")  # fmt: skip
    if args.no_worker:
        deliveries = Deliveries(accepted=len(accepted), checked=False)
    else:
        deliveries = _check_deliveries(args, github, accepted, store_dir / "bridge.db")
    deliveries.during_load = during_load
    deliveries.lookups = github.lookups()
    procs.stop(bridge.proc)
    procs.stop(baseline.proc)
    text = bridge.log.read_text(errors="replace")
    if args.keep_logs:
        keep = Path(args.keep_logs)
        keep.mkdir(parents=True, exist_ok=True)
        for server in (baseline, bridge):
            shutil.copyfile(server.log, keep / f"intake-{server.name}.log")
        say(f"  logs kept in {keep}")
    deliveries.log_line = log_line(text)
    _summary(args, runs, deliveries, answered)
    if (error := first_error(text)) is not None:
        say(f"first error in the bridge's log: {error[:300]}")
    clean = all(not r.problems for r in warmups + runs)
    return 0 if clean and deliveries.ok and answered == len(accepted) else 1


class _paused:
    """SIGSTOP the server's process group for the block, SIGCONT after."""

    def __init__(self, server: Server) -> None:
        self.pgid = server.proc.pid

    def __enter__(self) -> None:
        time.sleep(1.0)  # let the answers still in flight when wrk stopped go out
        with suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGSTOP)

    def __exit__(self, *exc: object) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGCONT)


def _server(name: str, started: Started) -> Server:
    return Server(name, started.url, started.proc, started.log, started.command)


def _write_bodies(prefix: Path, threads: int, per_thread: int, marker: str) -> None:
    """One file per wrk thread of ``<signature>\\t<body>`` lines, every body distinct."""
    key = BENCH_SECRETS["BENCH_WEBHOOK_SECRET"].encode()
    for t in range(1, threads + 1):
        lines = []
        for i in range(per_thread):
            body = wandb_body(f"{marker}-{t}-{i}", i)
            lines.append(sign(key, body).encode() + b"\t" + body + b"\n")
        Path(f"{prefix}.{t}").write_bytes(b"".join(lines))


def _wrk(procs: Processes, tmp: Path, server: Server, flags: list[str], seconds: int,
         label: str, marker: str) -> Run:  # fmt: skip
    """One wrk run against ``server`` with fresh bodies: twice what its last rate needs."""
    threads = int(flags[flags.index("-t") + 1])
    rate = max(server.rate_guess * 2, FIRST_GUESS)
    per_thread = math.ceil(rate * seconds / threads) + 1000
    prefix = tmp / "bodies"
    _write_bodies(prefix, threads, per_thread, f"{marker}-{server.name}-{label.replace(' ', '')}")
    cmd = ["wrk", *flags, f"-d{seconds}s", "-s", str(LUA), server.url + WEBHOOK_PATH, "--",
           str(prefix), WEBHOOK_PATH, BENCH_SECRETS["BENCH_WEBHOOK_TOKEN"]]  # fmt: skip
    cpu_before = group_cpu_seconds(server.proc.pid)
    split_before = _cpu_by_process(server.proc.pid)
    proc = procs.start(cmd, env=child_env(), cwd=tmp)
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    finally:
        procs.stop(proc)
    cpu = group_cpu_seconds(server.proc.pid) - cpu_before
    split = _shares(split_before, _cpu_by_process(server.proc.pid))
    event_ids: list[str] = []
    for t in range(1, threads + 1):
        Path(f"{prefix}.{t}").unlink()
        ids = Path(f"{prefix}.ids.{t}")
        if ids.exists():
            event_ids += ids.read_text().split()
            ids.unlink()
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
        event_ids, split,
    )  # fmt: skip
    if run.rate > 0:
        server.rate_guess = run.rate
    return run


def _cpu_by_process(pgid: int) -> dict[int, int]:
    """CPU clock ticks (user + system) used so far by each live process of group ``pgid``
    (Linux only: empty elsewhere)."""
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime stime
            ticks[int(stat.parent.name)] = int(fields[11]) + int(fields[12])
    return ticks


def _shares(before: dict[int, int], after: dict[int, int]) -> tuple[float, ...]:
    """Each process's share of the ticks used between ``before`` and ``after``, largest
    first: how evenly the server's processes shared the load."""
    used = [n - before.get(pid, 0) for pid, n in after.items()]
    total = sum(used)
    return tuple(sorted((n / total for n in used), reverse=True)) if total > 0 else ()


def _check_deliveries(args: argparse.Namespace, github: GitHubStandIn, accepted: set[str],
                      db: Path) -> Deliveries:  # fmt: skip
    d = Deliveries(accepted=len(accepted))
    load_ended = time.time()
    d.drained = github.wait_for_ids(accepted, args.drain_wait)
    with github.cond:
        last = max((github.first_at[e] for e in accepted if e in github.first_at), default=None)
    if last is not None:
        d.drain_s = max(0.0, last - load_ended)
    time.sleep(args.settle)  # late doubles, and events whose 202 wrk never read
    seen = github.delivered()
    with github.cond:
        d.malformed = len(github.malformed)
    d.delivered = sum(1 for e in accepted if e in seen)
    d.doubled = sum(1 for n in seen.values() if n > 1)
    d.extra = sum(1 for e in seen if e not in accepted)
    try:
        from bridge.store import open_store

        store = open_store(f"sqlite:///{db}")
        try:
            d.store_states = dict(store.stats().by_state)
        finally:
            store.close()
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
            d.stored_events = int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    except Exception as exc:  # a figure, not a crash: report what went wrong
        d.store_error = f"{type(exc).__name__}: {exc}"
    return d


def _line(r: Run) -> str:
    return (
        f"  {r.label:8} {r.server:8} {r.rate:7.0f} req/s  202: {r.accepted}/{r.requests}  "
        f"latency p50 {r.p50_ms:6.2f} ms  p90 {r.p90_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
        f"max {r.max_ms:7.2f} ms  CPU {r.cpu_ms_per_request:.2f} ms/req "
        f"({'/'.join(f'{100 * s:.0f}' for s in r.split[:2])} %)  "
        f"{('ERRORS: ' + r.problems) if r.problems else 'ok'}"
    )


def _summary(args: argparse.Namespace, runs: list[Run], d: Deliveries, answered: int) -> None:
    base = [r for r in runs if r.server == "baseline"]
    brid = [r for r in runs if r.server == "bridge"]
    ratios = [b.rate / a.rate if a.rate else math.nan for a, b in zip(base, brid, strict=True)]
    mean_a = statistics.fmean(r.rate for r in base)
    mean_b = statistics.fmean(r.rate for r in brid)
    ratio = mean_b / mean_a if mean_a else math.nan
    p99_a = max(r.p99_ms for r in base)
    p99_b = max(r.p99_ms for r in brid)
    say()
    say("=== intake summary " + "=" * 60)
    say(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} rounds "
        f"(baseline, bridge alternated); gunicorn gthread, {args.workers} processes x "
        f"{args.server_threads} threads for both")  # fmt: skip
    say(f"bridge = wandb-bridge serve with its delivery workers; GitHub stand-in answers "
        f"after {args.github_delay * 1000:g} ms")  # fmt: skip
    say(f"{'round':>6} {'baseline ev/s':>14} {'bridge ev/s':>12} {'ratio':>6}   "
        f"{'baseline p50/p99 ms':>20} {'bridge p50/p99 ms':>18}")  # fmt: skip
    for i, (a, b, q) in enumerate(zip(base, brid, ratios, strict=True), 1):
        say(f"{i:>6} {a.rate:>14.0f} {b.rate:>12.0f} {q:>6.2f}   "
            f"{a.p50_ms:>9.2f} / {a.p99_ms:<8.2f} {b.p50_ms:>8.2f} / {b.p99_ms:<8.2f}")  # fmt: skip
    say(f"{'mean':>6} {mean_a:>14.0f} {mean_b:>12.0f} {ratio:>6.2f}   "
        f"(per-round ratios {min(ratios):.2f}..{max(ratios):.2f})")  # fmt: skip
    cpu_a = statistics.fmean(r.cpu_ms_per_request for r in base)
    cpu_b = statistics.fmean(r.cpu_ms_per_request for r in brid)
    say(
        f"server CPU per request (user+sys, all its processes): baseline {cpu_a:.2f} ms, "
        f"bridge {cpu_b:.2f} ms ({cpu_b / cpu_a:.1f}x; the bridge's includes delivering)"
    )
    bad = [f"{r.server} {r.label}: {r.problems}" for r in runs if r.problems]
    say("responses: all 202, no socket errors" if not bad else "ERRORS: " + "; ".join(bad))
    load_s = sum(r.seconds for r in brid)
    if not d.checked:
        say("deliveries: not checked (--no-worker: the bridge delivered nothing)")
    else:
        say(
            f"deliveries: {d.delivered}/{d.accepted} accepted events reached the stand-in "
            f"({'all' if d.drained else 'NOT all'} within {args.drain_wait:g} s; the last "
            f"{d.drain_s:.1f} s after the load stopped), doubled {d.doubled}, malformed "
            f"{d.malformed}, delivered without a 202 wrk read {d.extra} (answers in flight "
            f"when wrk stopped); {d.during_load} delivered while the load ran (the bridge "
            f"was running, not paused, for about {load_s + args.warmup:.0f} s of it)"
        )
    if not d.checked:
        pass
    elif d.store_error:
        say(f"store: cannot read it: {d.store_error}")
    else:
        states = " ".join(f"{k} {v}" for k, v in d.store_states.items())
        say(f"store: {d.stored_events} events; deliveries {states}")
    say(f"stand-in: {d.lookups} (the bridge following the runs of its dispatches)")
    say(d.log_line)
    say("bars:")
    say(f"  events/s ratio {ratio:.2f} vs >= 0.25: {'meets' if ratio >= 0.25 else 'MISSES'}")
    say(f"  p99 of the 202 {p99_b:.1f} ms (worst round; baseline {p99_a:.1f} ms) vs <= 100 ms: "
        f"{'meets' if p99_b <= 100 else 'MISSES'}")  # fmt: skip
    say(f"  errors: {'none (meets)' if not bad else 'SOME (misses)'}")
    once = d.ok and answered == d.accepted
    if d.checked:
        say(f"  every accepted event delivered exactly once: {'yes' if once else 'NO'}")
    say(f"machine at the end: {machine_load()} (wrk, both servers and the stand-in share "
        "these CPUs)")  # fmt: skip
    say("=" * 79)


if __name__ == "__main__":
    run_main(main)
