"""Burst: 5,000 events accepted while GitHub answers 503, then GitHub recovers.

    python -m bench.burst [--backend sqlite|postgresql|both] [--events 5000]

The quality bar: "5,000 events accepted while GitHub answers 503 for a while: every one delivered
exactly once afterwards, none lost, none doubled".

The bridge runs as in production, ``wandb-bridge serve --workers 2`` with a delivery
worker in each gunicorn process; ``github.api_url`` points at a GitHub stand-in served
from this process on loopback. The stand-in starts "down": every
``POST /repos/<o>/<r>/dispatches`` gets 503. Client threads send ``--events`` distinct
signed webhooks as fast as they can; the outage lasts ``--outage-after`` seconds past the
last answer, then the stand-in answers 204 and records ``client_payload.bridge_event_id``.
The drain time is from recovery until every accepted event (an id from a 202 answer) has
reached the stand-in. After a settle pause the counts are taken again (late doubles) and
the store is checked (every delivery delivered, none queued, in flight or dead). Figures
are printed; the exit status is 0 only when every event was accepted and delivered once.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sqlite3
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    LOG_PATTERNS,
    WEBHOOK_PATH,
    arg_parser,
    first_error,
    log_line,
    run_main,
    say,
    start_bridge,
    terminate_on_sigterm,
    webhook_request,
)
from bench.standin import GitHubStandIn
from harness import pg
from harness.processes import HOST, Processes

REPOSITORY = "acme/churn-svc"
BURST_LOG_PATTERNS = {  # beside common's: what an outage and a drain may leave in the log
    **LOG_PATTERNS,
    **{text: text for text in ("lease lost", "store unavailable", "database is locked")},
}


# -- the burst --------------------------------------------------------------------------


@dataclass
class Burst:
    """Answers to the webhooks, indexed by event number (None: not sent or no answer)."""

    statuses: list[int | str | None]
    event_ids: list[str | None]
    started: float = 0.0
    ended: float = 0.0


def _send_all(
    port: int, n_events: int, threads: int, deadline: float, stop: threading.Event, run: str
) -> Burst:
    # Signed ahead of time: the clients only send.
    requests = [webhook_request(f"{run}-{i}", i) for i in range(n_events)]
    burst = Burst([None] * n_events, [None] * n_events)

    def client(k: int) -> None:
        for i in range(k, n_events, threads):
            if stop.is_set() or time.monotonic() > deadline:
                return
            body, headers = requests[i]
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            try:
                conn.request("POST", WEBHOOK_PATH, body, headers)
                resp = conn.getresponse()
                data = resp.read()
                burst.statuses[i] = resp.status
                if resp.status == 202:
                    burst.event_ids[i] = json.loads(data).get("event_id")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                burst.statuses[i] = type(exc).__name__
            finally:
                conn.close()

    workers = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(threads)]
    burst.started = time.monotonic()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    burst.ended = time.monotonic()
    return burst


# -- one backend ------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    sent: int = 0
    accepted: int = 0
    delivered: int = 0
    lost: int = 0
    doubled: int = 0
    non_202: int = 0
    accept_rate: float = 0.0
    drain: float | None = None
    attempts_503: int = 0
    attempts_204: int = 0
    details: list[str] = field(default_factory=list)
    ok: bool = False
    skipped: str = ""


def _config(store_url: str, api_url: str, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "store": store_url,
        "dedupe_window": "10m",
        "sources": {
            "wandb": {
                "secrets": [{"env": "BENCH_WEBHOOK_SECRET"}],
                "tokens": [{"env": "BENCH_WEBHOOK_TOKEN"}],
            }
        },
        "github": {
            "api_url": api_url,
            "token": {"env": "BENCH_GITHUB_TOKEN"},
            "repositories": ["acme/*"],
        },
        "routes": [
            {
                "name": "everything",
                "when": {},
                "dispatch": {
                    "repository": REPOSITORY,
                    "event_type": "BURST",
                    "client_payload": {  # + bridge_event_id, added by the bridge
                        "artifact_version_string": "${artifact_version_string}",
                        "bench_marker": "${artifact_metadata.bench_marker}",
                    },
                },
            }
        ],
        "delivery": _delivery(args),
        "logging": {"level": args.log_level},
    }


def _delivery(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "initial_backoff": args.initial_backoff,
        "max_backoff": args.max_backoff,
        "max_attempts": args.max_attempts,
        "max_age": args.max_age,
        "concurrency": args.concurrency,
    }


def run_backend(backend: str, args: argparse.Namespace) -> Result:
    result = Result(backend)
    stop = threading.Event()
    with ExitStack() as stack:
        stack.callback(stop.set)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wandb-bridge-burst-")))
        store_url, reason = pg.store_url(backend, tmp, stack)
        if store_url is None:
            result.skipped = reason
            return result
        github = stack.enter_context(GitHubStandIn(down=not args.no_outage))
        api_url = github.url
        procs = stack.enter_context(Processes())  # stopped first: before the stand-in, PG
        _run(result, args, tmp, store_url, api_url, github, procs, stop)
    return result


def _run(
    result: Result,
    args: argparse.Namespace,
    tmp: Path,
    store_url: str,
    api_url: str,
    github: GitHubStandIn,
    procs: Processes,
    stop: threading.Event,
) -> None:
    t_start = time.monotonic()
    config = _config(store_url, api_url, args)
    bridge = start_bridge(procs, tmp, config, "--workers", str(args.workers))
    port = bridge.port
    say(
        f"[{result.backend}] bridge up; GitHub stand-in {api_url} "
        f"{'UP (204: control run)' if args.no_outage else 'DOWN (503)'}; sending "
        f"{args.events} events with {args.clients} client threads"
    )

    run = uuid.uuid4().hex[:8]
    deadline = time.monotonic() + args.burst_timeout
    burst = _send_all(port, args.events, args.clients, deadline, stop, run)
    burst_503, _ = github.counts()
    accepted = {e for e, s in zip(burst.event_ids, burst.statuses, strict=True) if s == 202 and e}
    result.sent = sum(1 for s in burst.statuses if s is not None)
    result.accepted = len(accepted)
    result.non_202 = sum(1 for s in burst.statuses if s is not None and s != 202)
    burst_s = burst.ended - burst.started
    result.accept_rate = result.accepted / burst_s if burst_s > 0 else 0.0
    others: dict[str, int] = {}
    for s in burst.statuses:
        if s is not None and s != 202:
            others[str(s)] = others.get(str(s), 0) + 1
    say(
        f"[{result.backend}] burst: {result.accepted} accepted of {args.events} in {burst_s:.1f} s"
        f" ({result.accept_rate:.0f}/s); other answers {others or 'none'}; "
        f"503s during the burst {burst_503}"
    )

    outage_after = 0.0 if args.no_outage else args.outage_after
    time.sleep(outage_after)
    down_503, _ = github.counts()
    recovered = github.set_down(False)
    outage = 0.0 if args.no_outage else time.monotonic() - burst.started
    say(
        f"[{result.backend}] stand-in up, {outage:.1f} s of outage; draining "
        f"(at most {args.wait:g} s)"
    )
    drained = github.wait_for_ids(accepted, args.wait)
    with github.cond:
        last = max((github.first_at[e] for e in accepted if e in github.first_at), default=None)
    result.drain = max(0.0, last - recovered) if drained and last is not None else None
    time.sleep(args.settle)  # late doubles

    with github.cond:
        seen = dict(github.seen)
        result.attempts_503, result.attempts_204 = github.unavailable, github.ok
        malformed = len(github.malformed)
    result.delivered = sum(1 for e in accepted if e in seen)
    result.lost = result.accepted - result.delivered
    result.doubled = sum(1 for c in seen.values() if c > 1)
    extra = sum(1 for e in seen if e not in accepted)
    by_state, store = _store_check(store_url)
    procs.stop(bridge.proc)
    total = time.monotonic() - t_start
    text = bridge.log.read_text(errors="replace")

    after_burst = down_503 - burst_503
    d = result.details
    if args.no_outage:
        d.append("no outage (control run): the stand-in answered 204 from the start")
    else:
        d.append(
            f"outage {outage:.1f} s ({burst_s:.1f} s burst + {outage_after:g} s); 503s: "
            f"{burst_503} during the burst ({burst_503 / max(burst_s, 1e-9):.0f}/s), "
            f"{after_burst} after it ({after_burst / max(outage_after, 1e-9):.0f}/s)"
        )
    since = "the last answer" if args.no_outage else "recovery"
    d.append(
        f"drain: {'all delivered' if drained else 'NOT all delivered'} "
        f"{'' if result.drain is None else f'{result.drain:.2f} s after {since}'}; "
        f"total {total:.1f} s (bridge start to stop); dispatches for ids not in a 202: "
        f"{extra}; malformed dispatches: {malformed}"
    )
    d.append(f"store: {store}")
    d.append(f"stand-in: {github.lookups()}")
    d.append(log_line(text, BURST_LOG_PATTERNS))
    if (error := first_error(text)) is not None:
        d.append(f"  first error: {error[:200]}")
    if args.keep_logs:
        Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
        kept = Path(args.keep_logs) / f"burst-{result.backend}.log"
        kept.write_text(text)
        d.append(f"bridge log kept: {kept}")
    pending = {k: v for k, v in by_state.items() if k != "delivered"}
    store_ok = by_state.get("delivered") == result.accepted and not any(pending.values())
    result.ok = (
        result.accepted == args.events
        and result.lost == 0
        and result.doubled == 0
        and result.non_202 == 0
        and drained
        and store_ok
    )


def _store_check(url: str) -> tuple[dict[str, int], str]:
    """Delivery states (via the bridge's store) and attempts recorded, as one line."""
    from bridge.store import open_store

    try:
        store = open_store(url)
        try:
            stats = store.stats()
        finally:
            store.close()
        by_state = stats.by_state
        sql = "SELECT outcome, COUNT(*), MAX(attempt) FROM attempts GROUP BY outcome"
        if url.startswith("sqlite:///"):
            with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
                rows = conn.execute(sql).fetchall()
        else:
            import psycopg

            with psycopg.connect(url) as conn:
                rows = conn.execute(sql).fetchall()
    except Exception as exc:  # a figure, not a crash: report what went wrong
        return {}, f"cannot read the store: {type(exc).__name__}: {exc}"
    states = " ".join(f"{k} {v}" for k, v in by_state.items())
    attempts = ", ".join(f"{r[0]} {r[1]}" for r in rows) or "none"
    most = max((int(r[2]) for r in rows if r[2] is not None), default=0)
    text = f"deliveries {states}; attempts recorded: {attempts}; most attempts for one: {most}"
    return dict(by_state), text


# -- command line -----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = arg_parser("burst", __doc__)
    p.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--events", type=int, default=5000, help="webhooks sent (default 5000)")
    p.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument(
        "--outage-after", type=float, default=10.0, help="s of 503s after the last answer"
    )
    p.add_argument("--wait", type=float, default=180.0, help="bound on the drain (default 180 s)")
    p.add_argument("--burst-timeout", type=float, default=180.0, help="stop sending after (180 s)")
    p.add_argument("--settle", type=float, default=3.0, help="s after the drain, then count again")
    p.add_argument("--initial-backoff", default="200ms")
    p.add_argument("--max-backoff", default="2s")
    p.add_argument("--max-attempts", type=int, default=1000)
    p.add_argument("--max-age", default="1h")
    p.add_argument("--concurrency", type=int, default=8, help="delivery.concurrency per process")
    p.add_argument("--no-outage", action="store_true", help="control run: 204s from the start")
    p.add_argument("--keep-logs", metavar="DIR", help="copy the bridge's log to DIR")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def _summary(results: list[Result], args: argparse.Namespace) -> None:
    say()
    say("=== burst summary " + "=" * 61)
    say(
        f"bridge: wandb-bridge serve --workers {args.workers} (delivery worker in each process); "
        f"delivery: {_delivery(args)}"
    )
    outage = (
        "no outage (control run: 204 from the start)"
        if args.no_outage
        else f"stand-in 503 until {args.outage_after:g} s after the last answer, then 204"
    )
    say(f"load: {args.events} signed webhooks, {args.clients} client threads, {outage}")
    head = (
        "backend",
        "accepted",
        "delivered",
        "lost",
        "doubled",
        "non-202",
        "accept/s",
        "drain s",
        "attempts (503+204)",
    )
    say("| " + " | ".join(head) + " |")
    say("|" + "|".join("---" for _ in head) + "|")
    for r in results:
        if r.skipped:
            say(f"| {r.backend} | skipped: {r.skipped} |")
            continue
        drain = "n/a" if r.drain is None else f"{r.drain:.1f}"
        attempts = f"{r.attempts_503 + r.attempts_204} ({r.attempts_503}+{r.attempts_204})"
        cells = (
            r.backend,
            r.accepted,
            r.delivered,
            r.lost,
            r.doubled,
            r.non_202,
            f"{r.accept_rate:.0f}",
            drain,
            attempts,
        )
        say("| " + " | ".join(str(c) for c in cells) + " |")
    for r in results:
        if not r.skipped:
            say(f"{r.backend}: {'OK' if r.ok else 'FAILED'}")
            for line in r.details:
                say(f"  {line}")
    say("=" * 79)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    with terminate_on_sigterm():
        for backend in backends:
            results.append(run_backend(backend, args))
    _summary(results, args)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    run_main(main)
