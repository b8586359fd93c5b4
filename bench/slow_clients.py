"""Slow clients: 50 connections trickling bytes must not stop the bridge.

    python -m bench.slow_clients [--slow 50] [--duration 30] [--byte-every 2]

The quality bar: 50 connections that send their headers or body a byte every few seconds do not
stop the bridge: ``/healthz`` answers within a second and signed webhooks are accepted
throughout.

The bridge runs as users run it, ``wandb-bridge serve`` with its defaults (2 processes,
gthread workers, a delivery worker in each), delivering to a GitHub stand-in in this
process that answers at once. Two phases of ``--duration`` seconds each, same run:

- control: no slow client;
- slow: ``--slow`` connections are opened first; some send a webhook request's headers a
  byte every ~``--byte-every`` seconds (they never finish them), the others send their
  headers at once, with a ``Content-Length``, then the body a byte at a time (they never
  finish it either). They stay open for the whole phase, then are closed.

In both phases one thread asks ``GET /healthz`` every ``--probe-every`` seconds (a new
connection each, as a load balancer does) and another sends a signed, distinct webhook
every ``--webhook-every`` seconds (a new connection each, as W&B does); both time each
answer. The figures are the two phases side by side and their ratios (slow ÷ control);
the bar is a ``/healthz`` max under 1 s and every webhook answered 202 in the slow phase.
At the end every accepted webhook must have reached the stand-in exactly once. Only
127.0.0.1 is used; everything is bounded in count and time and stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import select
import socket
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    WEBHOOK_PATH,
    arg_parser,
    bridge_config,
    first_error,
    log_line,
    machine_load,
    percentile,
    run_main,
    say,
    start_bridge,
    terminate_on_sigterm,
    webhook_request,
)
from bench.standin import GitHubStandIn
from harness.processes import HOST, Processes

TIMEOUT = 10.0  # s: a probe or webhook that takes longer counts as failed
HEALTHZ_BAR = 1.0  # s


@dataclass
class Timed:
    """Answers of one kind of request during one phase."""

    latencies: list[float] = field(default_factory=list)  # seconds, answered as expected
    failures: dict[str, int] = field(default_factory=dict)  # what else happened, counted
    event_ids: list[str] = field(default_factory=list)  # webhooks: ids from the 202s

    def fail(self, what: str) -> None:
        self.failures[what] = self.failures.get(what, 0) + 1

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def count(self) -> int:
        return len(self.latencies) + self.failed

    def ms(self, p: float) -> float:
        return percentile(self.latencies, p) * 1000


@dataclass
class Phase:
    name: str
    slow: int
    healthz: Timed = field(default_factory=Timed)
    webhooks: Timed = field(default_factory=Timed)
    seconds: float = 0.0
    slow_report: str = ""


# -- the measuring clients ----------------------------------------------------------------


def _probe(port: int, until: float, every: float, out: Timed) -> None:
    """GET /healthz every ``every`` s on a new connection until ``until``."""
    next_at = time.monotonic()
    while next_at < until:
        time.sleep(max(0.0, next_at - time.monotonic()))
        conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
        started = time.monotonic()
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            took = time.monotonic() - started
            if resp.status == 200:
                out.latencies.append(took)
            else:
                out.fail(f"HTTP {resp.status}")
        except (OSError, http.client.HTTPException) as exc:
            out.fail(type(exc).__name__)
        finally:
            conn.close()
        next_at = max(next_at + every, time.monotonic())


def _send_webhooks(port: int, until: float, every: float, marker: str, out: Timed) -> None:
    """A signed, distinct webhook every ``every`` s on a new connection until ``until``."""
    next_at = time.monotonic()
    n = 0
    while next_at < until:
        time.sleep(max(0.0, next_at - time.monotonic()))
        body, headers = webhook_request(f"{marker}-{n}", n)
        n += 1
        conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
        started = time.monotonic()
        try:
            conn.request("POST", WEBHOOK_PATH, body, headers)
            resp = conn.getresponse()
            data = resp.read()
            took = time.monotonic() - started
            if resp.status == 202:
                out.latencies.append(took)
                out.event_ids.append(json.loads(data)["event_id"])
            else:
                out.fail(f"HTTP {resp.status}")
        except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            out.fail(type(exc).__name__)
        finally:
            conn.close()
        next_at = max(next_at + every, time.monotonic())


# -- the slow clients ---------------------------------------------------------------------


@dataclass
class Slow:
    sock: socket.socket
    kind: str  # "headers" or "body"
    data: bytes  # what is left to send, a byte at a time
    next_at: float
    sent: int = 0
    closed_after: float | None = None  # seconds after opening when the server closed it
    answered: str = ""  # the status line, if the server answered something


def _open_slow(
    port: int, n: int, body_share: float, every: float, marker: str, rng: random.Random
) -> list[Slow]:
    conns = []
    now = time.monotonic()
    n_body = round(n * body_share)
    for i in range(n):
        body, headers = webhook_request(f"{marker}-slow-{i}", i)
        head = f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in {**headers, "Content-Length": str(len(body))}.items()
        )
        request = head.encode() + b"\r\n" + body
        sock = socket.create_connection((HOST, port), timeout=5)
        kind = "body" if i < n_body else "headers"
        if kind == "body":
            sock.sendall(request[: len(request) - len(body)])  # headers in full, at once
            rest = body
        else:
            rest = request
        conns.append(Slow(sock, kind, rest, now + rng.uniform(0, every)))
    return conns


def _trickle(
    conns: list[Slow], until: float, every: float, opened: float, rng: random.Random
) -> None:
    """Send each open connection one more byte when it is due, until ``until``."""
    while True:
        now = time.monotonic()
        if now >= until:
            return
        live = [c for c in conns if c.closed_after is None]
        _notice_closed(live, opened)
        due = [c for c in live if c.closed_after is None and c.next_at <= now and c.data]
        for c in due:
            try:
                c.sock.send(c.data[:1])
                c.data = c.data[1:]
                c.sent += 1
            except OSError:
                c.closed_after = time.monotonic() - opened
            c.next_at = now + every * rng.uniform(0.8, 1.2)
        waits = [c.next_at for c in live if c.closed_after is None and c.data]
        time.sleep(max(0.0, min([*waits, until, now + 0.5]) - time.monotonic()))


def _notice_closed(conns: list[Slow], opened: float) -> None:
    """Mark the connections the server answered or closed (readable without blocking)."""
    if not conns:
        return
    readable, _, _ = select.select([c.sock for c in conns], [], [], 0)
    for c in conns:
        if c.sock in readable:
            try:
                data = c.sock.recv(4096)
            except OSError:
                data = b""
            if data and not c.answered:
                c.answered = data.split(b"\r\n", 1)[0].decode(errors="replace")
            c.closed_after = time.monotonic() - opened


def _slow_report(conns: list[Slow], seconds: float) -> str:
    parts = []
    for kind in ("headers", "body"):
        group = [c for c in conns if c.kind == kind]
        if not group:
            continue
        closed = [c for c in group if c.closed_after is not None]
        answers = sorted({c.answered for c in closed if c.answered})
        text = f"{len(group)} slow {kind}: {sum(c.sent for c in group)} bytes trickled, "
        if closed:
            first = min(c.closed_after or 0 for c in closed)
            text += f"{len(closed)} closed by the server (first after {first:.1f} s"
            text += f"; answers {', '.join(answers)})" if answers else ")"
        else:
            text += f"all still open after {seconds:.0f} s"
        parts.append(text)
    return "; ".join(parts)


# -- the run ------------------------------------------------------------------------------


def _phase(name: str, port: int, args: argparse.Namespace, marker: str) -> Phase:
    phase = Phase(name, args.slow if name == "slow" else 0)
    rng = random.Random(args.seed)
    conns: list[Slow] = []
    opened = time.monotonic()
    try:
        if phase.slow:
            conns = _open_slow(
                port, phase.slow, args.body_share, args.byte_every, f"{marker}-{name}", rng
            )
            time.sleep(min(1.0, args.byte_every))  # let them reach the workers first
        started = time.monotonic()
        until = started + args.duration
        threads = [
            threading.Thread(
                target=_probe, args=(port, until, args.probe_every, phase.healthz), daemon=True
            ),
            threading.Thread(
                target=_send_webhooks,
                daemon=True,
                args=(port, until, args.webhook_every, f"{marker}-{name}", phase.webhooks),
            ),
        ]
        for t in threads:
            t.start()
        if conns:
            _trickle(conns, until, args.byte_every, opened, rng)
        for t in threads:
            t.join(args.duration + 2 * TIMEOUT)
        phase.seconds = time.monotonic() - started
        if conns:
            _notice_closed([c for c in conns if c.closed_after is None], opened)
            phase.slow_report = _slow_report(conns, time.monotonic() - opened)
    finally:
        for c in conns:
            with suppress(OSError):
                c.sock.close()
    return phase


def _parser() -> argparse.ArgumentParser:
    p = arg_parser("slow_clients", __doc__)
    p.add_argument("--slow", type=int, default=50, help="slow connections (default 50)")
    p.add_argument("--body-share", type=float, default=0.5, help="share trickling a body (0.5)")
    p.add_argument("--byte-every", type=float, default=2.0, help="s between two bytes, +-20%% (2)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per phase (default 30)")
    p.add_argument("--probe-every", type=float, default=0.1, help="/healthz interval (0.1 s)")
    p.add_argument("--webhook-every", type=float, default=0.2, help="webhook interval (0.2 s)")
    p.add_argument("--wait", type=float, default=30.0, help="bound on the wait for deliveries")
    p.add_argument("--seed", type=int, default=1, help="seed for the slow clients' timing")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 < args.slow <= 200 or not 1 <= args.duration <= 300:
        say("bench.slow_clients: --slow must be 1-200 and --duration 1-300 s", sys.stderr)
        return 2
    with ExitStack() as stack:
        stack.enter_context(terminate_on_sigterm())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wandb-bridge-bench-")))
        github = stack.enter_context(GitHubStandIn())
        procs = stack.enter_context(Processes())
        return _bench(args, procs, tmp, github)
    return 1  # not reached


def _bench(args: argparse.Namespace, procs: Processes, tmp: Path, github: GitHubStandIn) -> int:
    bridge = start_bridge(procs, tmp, bridge_config(tmp, api_url=github.url))
    port = bridge.port
    say(f"slow-clients benchmark (figures only, nothing asserted); {machine_load()}")
    say(
        f"  bridge:   {' '.join(bridge.command[1:])} (defaults: 2 processes, gthread, "
        "delivery workers)"
    )
    say(f"            GitHub stand-in {github.url} answering 204 at once")
    say(
        f"  measure:  GET /healthz every {args.probe_every:g} s, a signed webhook every "
        f"{args.webhook_every:g} s, each on a new connection, {args.duration:g} s per phase"
    )
    n_body = round(args.slow * args.body_share)
    say(
        f"  slow:     {args.slow - n_body} connections trickling headers and {n_body} "
        f"trickling a body, a byte every ~{args.byte_every:g} s"
    )

    marker = uuid.uuid4().hex[:8]
    warm = Timed()  # imports, connections, first requests: not measured
    _send_webhooks(port, time.monotonic() + 1.0, 0.1, f"{marker}-warm", warm)
    phases = []
    for name in ("control", "slow"):
        say(f"  phase {name} ...")
        phases.append(_phase(name, port, args, marker))
        say(_phase_line(phases[-1]))
    accepted = set(warm.event_ids) | {e for ph in phases for e in ph.webhooks.event_ids}
    drained = github.wait_for_ids(accepted, args.wait)
    time.sleep(1.0)  # late doubles
    seen = github.delivered()
    procs.stop(bridge.proc)
    text = bridge.log.read_text(errors="replace")
    delivered = sum(1 for e in accepted if e in seen)
    doubled = sum(1 for n in seen.values() if n > 1)
    lookups = github.lookups()
    return _summary(args, phases, len(accepted), delivered, doubled, drained, text, lookups)


def _phase_line(ph: Phase) -> str:
    h, w = ph.healthz, ph.webhooks
    text = (
        f"    /healthz {h.count} probes: p50 {h.ms(50):.1f} ms, p99 {h.ms(99):.1f} ms, max "
        f"{h.ms(100):.1f} ms, failed {h.failed} {h.failures or ''}\n"
        f"    webhooks {w.count} sent: {len(w.latencies)} x 202, p50 {w.ms(50):.1f} ms, p99 "
        f"{w.ms(99):.1f} ms, max {w.ms(100):.1f} ms, other {w.failed} "
        f"{w.failures or ''}"
    )
    if ph.slow_report:
        text += f"\n    {ph.slow_report}"
    return text


def _ratio(a: float, b: float) -> str:
    return f"{b / a:.2f}x" if a > 0 else "n/a"


def _ms_rows(name: str, control: Timed, slow: Timed) -> list[tuple[str, float, float, bool]]:
    """The p50, p99 and max rows of one kind of request in the summary's table."""
    return [
        (f"{name} {label} ms", control.ms(p), slow.ms(p), True)
        for label, p in (("p50", 50), ("p99", 99), ("max", 100))
    ]


def _summary(
    args: argparse.Namespace,
    phases: list[Phase],
    accepted: int,
    delivered: int,
    doubled: int,
    drained: bool,
    text: str,
    lookups: str,
) -> int:
    control, slow = phases
    say()
    say("=== slow clients summary " + "=" * 54)
    say(
        f"wandb-bridge serve (defaults); {args.duration:g} s per phase; slow phase: "
        f"{args.slow} connections, a byte every ~{args.byte_every:g} s"
    )
    say(f"{'':22} {'control':>10} {'slow':>10} {'ratio':>7}")
    rows = [
        ("/healthz probes", control.healthz.count, slow.healthz.count, None),
        *_ms_rows("/healthz", control.healthz, slow.healthz),
        ("/healthz failed", control.healthz.failed, slow.healthz.failed, None),
        ("webhooks sent", control.webhooks.count, slow.webhooks.count, None),
        ("webhooks 202", len(control.webhooks.latencies), len(slow.webhooks.latencies), None),
        *_ms_rows("webhook", control.webhooks, slow.webhooks),
        ("webhooks not 202", control.webhooks.failed, slow.webhooks.failed, None),
    ]
    for name, a, b, ratio in rows:
        if ratio:
            say(f"{name:22} {a:>10.1f} {b:>10.1f} {_ratio(a, b):>7}")
        else:
            say(f"{name:22} {a:>10} {b:>10}")
    say(f"slow clients: {slow.slow_report}")
    say(
        f"deliveries: {delivered}/{accepted} accepted webhooks reached the stand-in "
        f"({'all' if drained else 'NOT all'} within {args.wait:g} s), doubled {doubled}"
    )
    say(f"stand-in: {lookups}")
    say(log_line(text))
    if (error := first_error(text)) is not None:
        say(f"first error in the bridge's log: {error[:300]}")
    h_ok = not slow.healthz.failures and slow.healthz.ms(100) <= HEALTHZ_BAR * 1000
    w_ok = not slow.webhooks.failures and len(slow.webhooks.latencies) > 0
    say("bars:")
    say(
        f"  /healthz within 1 s with {args.slow} slow clients: max {slow.healthz.ms(100):.0f} "
        f"ms, {slow.healthz.failed} failed: {'meets' if h_ok else 'MISSES'}"
    )
    say(
        f"  webhooks accepted throughout: {len(slow.webhooks.latencies)}/{slow.webhooks.count}"
        f" x 202, max {slow.webhooks.ms(100):.0f} ms: {'meets' if w_ok else 'MISSES'}"
    )
    once = drained and delivered == accepted and not doubled
    say(f"  every accepted webhook delivered exactly once: {'yes' if once else 'NO'}")
    say(f"machine at the end: {machine_load()}")
    say("=" * 79)
    # The status says whether every request got its answer; the 1 s bar is printed above.
    answered = not any(ph.healthz.failures or ph.webhooks.failures for ph in phases)
    return 0 if answered and once else 1


if __name__ == "__main__":
    run_main(main)
