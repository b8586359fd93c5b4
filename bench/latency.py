"""Delivery latency at light load: webhook sent → dispatch at a local GitHub stand-in.

    python -m bench.latency [--events 300] [--gap-ms 20 50] [--workers 2]

The quality bar: the delivery latency the bridge adds (webhook received → request at a local
GitHub stand-in that answers at once), p50 ≤ 20 ms and p99 ≤ 100 ms at light load.

The bridge runs as in production, ``wandb-bridge serve`` with its delivery worker in
every gunicorn process, ``github.api_url`` pointing at a stand-in served from this
process on loopback, which answers 204 at once and records when each dispatch arrived.
Events go one at a time, a random 20-50 ms apart, each with a unique body carrying a
marker that the route copies into ``client_payload``. Latency is the stand-in's
``time.time()`` at arrival minus ``time.time()`` just before the webhook was sent (one
machine, one clock). The 202 round trip is reported separately.

The baseline, in the same run: after each event (and a pause like the others) the
benchmark sends the stand-in, itself, the dispatch the bridge would send (same headers,
a new connection each): one loopback HTTP hop from a Python client, the least any
relay costs on this machine at this moment. The ratios are bridge ÷ direct. Figures
are printed, never asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    BENCH_SECRETS,
    WEBHOOK_PATH,
    arg_parser,
    bridge_config,
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


def _parser() -> argparse.ArgumentParser:
    p = arg_parser("latency", __doc__)
    p.add_argument("--events", type=int, default=300, help="measured events (default 300)")
    p.add_argument("--warmup", type=int, default=10, help="events sent first, not counted")
    p.add_argument("--gap-ms", type=float, nargs=2, default=(20.0, 50.0), metavar=("MIN", "MAX"),
                   help="random pause between events (default 20 50)")  # fmt: skip
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for stragglers")
    p.add_argument("--seed", type=int, default=None, help="seed for the pauses")
    return p


@dataclass(frozen=True)
class Sent:
    marker: str
    sent_at: float
    answered_at: float
    status: int
    event_id: str | None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    # Exit order matters: processes stop, then the stand-in, then the directory goes.
    with ExitStack() as stack:
        stack.enter_context(terminate_on_sigterm())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wandb-bridge-bench-")))
        seen = stack.enter_context(GitHubStandIn())
        procs = stack.enter_context(Processes())
        return _bench(args, seed, procs, tmp, seen)
    return 1  # not reached


def _bench(args: argparse.Namespace, seed: int, procs: Processes, tmp: Path,
           seen: GitHubStandIn) -> int:  # fmt: skip
    api_url = seen.url
    bridge = start_bridge(
        procs, tmp, bridge_config(tmp, api_url=api_url), "--workers", str(args.workers)
    )
    port = bridge.port
    say(f"delivery latency benchmark (figures only, nothing asserted); {machine_load()}")
    say(f"  bridge:   {' '.join(bridge.command[1:])}")
    say(f"            with a delivery worker in each process; GitHub stand-in {api_url} (204)")
    say(f"  load:     {args.warmup} warm-up + {args.events} events one at a time, "
        f"{args.gap_ms[0]:g}-{args.gap_ms[1]:g} ms apart (seed {seed})")  # fmt: skip

    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    warm = [_send(port, f"{run}-warm-{i}", i) for i in range(args.warmup)]
    seen.wait_for_markers({s.marker for s in warm}, args.wait)
    sent: list[Sent] = []
    direct: list[Sent] = []
    for i in range(args.events):
        time.sleep(rng.uniform(*args.gap_ms) / 1000)
        sent.append(_send(port, f"{run}-{i}", i))
        time.sleep(rng.uniform(*args.gap_ms) / 1000)
        direct.append(_send_direct(seen, f"{run}-direct-{i}"))
    arrived = seen.wait_for_markers({s.marker for s in sent + direct}, args.wait)
    if not arrived:
        time.sleep(1.0)  # let a late delivery in before counting
    lines = bridge.log.read_text(errors="replace").splitlines()
    errors = sum(1 for ln in lines if " ERROR " in ln or "Traceback" in ln)
    warnings = sum(1 for ln in lines if " WARNING " in ln)
    return _summary(args, sent, direct, seen, errors, warnings)


def _send_direct(standin: GitHubStandIn, marker: str) -> Sent:
    """The baseline: the dispatch sent straight to the stand-in, as the bridge sends it."""
    body = json.dumps(
        {"event_type": "DEPLOY_MODEL",
         "client_payload": {"bench_marker": marker, "bridge_event_id": marker}}
    ).encode()  # fmt: skip
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {BENCH_SECRETS['BENCH_GITHUB_TOKEN']}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    port = int(standin.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        sent_at = time.time()
        conn.request("POST", "/repos/acme/churn-svc/dispatches", body, headers)
        resp = conn.getresponse()
        resp.read()
        answered_at = time.time()
    finally:
        conn.close()
    return Sent(marker, sent_at, answered_at, resp.status, marker)


def _send(port: int, marker: str, n: int) -> Sent:
    """Send one webhook as W&B does; the clock starts once the body is signed."""
    body, headers = webhook_request(marker, n)
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        sent_at = time.time()
        conn.request("POST", WEBHOOK_PATH, body, headers)
        resp = conn.getresponse()
        data = resp.read()
        answered_at = time.time()
    finally:
        conn.close()
    event_id = json.loads(data).get("event_id") if resp.status == 202 else None
    return Sent(marker, sent_at, answered_at, resp.status, event_id)


def _ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p) * 1000:7.2f}"


def _summary(args: argparse.Namespace, sent: list[Sent], direct: list[Sent],
             seen: GitHubStandIn, errors: int, warnings: int) -> int:  # fmt: skip
    with seen.cond:
        arrivals = {k: list(v) for k, v in seen.markers.items()}
        malformed = list(seen.malformed)
    delivered = [s for s in sent if s.marker in arrivals]
    doubled = sum(1 for s in sent if len(arrivals.get(s.marker, ())) > 1)
    wrong_id = sum(1 for s in delivered if arrivals[s.marker][0].event_id != s.event_id)
    not_202 = sum(1 for s in sent if s.status != 202)
    latency = [arrivals[s.marker][0].at - s.sent_at for s in delivered]
    rtt = [s.answered_at - s.sent_at for s in sent]
    after = [arrivals[s.marker][0].at - s.answered_at for s in delivered]
    hop = [arrivals[d.marker][0].at - d.sent_at for d in direct if d.marker in arrivals]
    direct_bad = sum(1 for d in direct if d.status != 204 or d.marker not in arrivals)

    def row(name: str, values: list[float]) -> str:
        return (f"{name:34} p50 {_ms(values, 50)}  p90 {_ms(values, 90)}  "
                f"p99 {_ms(values, 99)}  max {_ms(values, 100)} ms")  # fmt: skip

    say()
    say("=== delivery latency summary " + "=" * 50)
    say(f"bridge: wandb-bridge serve --workers {args.workers} (delivery worker in each "
        "process), SQLite, stand-in answering 204 at once")  # fmt: skip
    say(
        f"delivered {len(delivered)}/{len(sent)} within {args.wait:g} s; answered non-202: "
        f"{not_202}; delivered twice: {doubled}; bridge_event_id mismatch: {wrong_id}; "
        f"malformed dispatches: {len(malformed)}; ERROR lines in the bridge log: {errors}, "
        f"WARNING lines {warnings}; stand-in: {seen.lookups()}"
    )
    say(row("webhook sent -> dispatch arrived", latency))
    say(row("202 round trip (client)", rtt))
    say(row("202 received -> dispatch arrived", after))
    say(row("direct to the stand-in (baseline)", hop))
    p50, p99 = percentile(latency, 50) * 1000, percentile(latency, 99) * 1000
    h50, h99 = percentile(hop, 50) * 1000, percentile(hop, 99) * 1000
    say(
        f"ratio bridge / direct: p50 {p50 / h50:.1f}x, p99 {p99 / h99:.1f}x "
        f"(direct dispatches not answered 204 or not seen: {direct_bad})"
    )
    say(
        f"bars: p50 {p50:.2f} ms vs 20 ms ({'meets' if p50 <= 20 else 'MISSES'}), "
        f"p99 {p99:.2f} ms vs 100 ms ({'meets' if p99 <= 100 else 'MISSES'})"
    )
    for line in malformed[:5]:
        say(f"  malformed: {line}")
    say(f"machine at the end: {machine_load()}")
    say("=" * 79)
    bad = doubled or wrong_id or not_202 or malformed or direct_bad
    ok = len(delivered) == len(sent) and not bad
    return 0 if ok else 1


if __name__ == "__main__":
    run_main(main)
