"""Catch-up: the W&B requests a pass costs, and how soon it dispatches a change whose
webhook was lost.

    python -m bench.catchup [--every 30] [--latency-ms 50] [--collections 100]
                            [--versions 20] [--changes 5] [--seed N]

The quality bar: a pass over 100 collections costs a bounded, documented number of W&B
requests, and a change is dispatched within ``every`` (plus delivery) of it happening.

``wandb-bridge serve`` (2 workers) runs with ``wandb.catch_up.every`` against a W&B
stand-in (:mod:`bench.wandb_standin`) that answers each request after ``--latency-ms``
and holds a registry of ``--collections`` collections of ``--versions`` versions, with
the automation ``wandb apply`` makes for the benchmark's route (alias ``production`` in
that registry); dispatches go to the GitHub stand-in (:mod:`bench.standin`). After the
first pass (the baseline), ``--changes`` aliases are added whose webhook W&B drops, and
as many whose webhook is sent (the yardstick), at random moments over one ``every``,
each on a collection of its own. The benchmark waits for every dispatch, then for one
more whole pass, and counts each change's dispatches. Figures are printed, never
asserted; the exit status is 1 when a change was not dispatched exactly once.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_SECRETS,
    arg_parser,
    bridge_config,
    log_line,
    machine_load,
    percentile,
    run_main,
    say,
    start_bridge,
    terminate_on_sigterm,
)
from bench.standin import GitHubStandIn
from bench.wandb_standin import ARTIFACT_PREFIX, FEATURES, PAGE, Automation, WandbStandIn
from bridge.config.load import parse_config
from bridge.wandb.wanted import wanted
from harness.processes import Processes

ENTITY, ORG, REGISTRY = "acme", "acme-org", "wandb-registry-bench"
BRIDGE_URL = "https://bridge.bench.test"  # what W&B is told; its webhooks go to loopback
API_KEY = "bench-only-wandb-api-key-0123456789abcdef"
PASS_LINE = re.compile(r"catch-up pass: (\d+) collections read, (\d+) W&B requests")


def _parser() -> argparse.ArgumentParser:
    p = arg_parser("catchup", __doc__)
    p.add_argument("--every", type=float, default=30.0, help="wandb.catch_up.every, s (>= 30)")
    p.add_argument("--latency-ms", type=float, default=50.0, help="W&B's answer time (50)")
    p.add_argument("--collections", type=int, default=100, help="in the registry (100)")
    p.add_argument("--versions", type=int, default=20, help="per collection (20)")
    p.add_argument("--changes", type=int, default=5, help="webhooks dropped, and sent (5)")
    p.add_argument("--seed", type=int, default=None, help="seed for the changes' moments")
    return p


@dataclass(frozen=True)
class Change:
    collection: str
    marker: str  # the version's artifact_version, copied into client_payload.bench_marker
    at: float  # time.time() of the change
    delivered: bool  # its webhook was sent (else W&B dropped it)


@dataclass(frozen=True)
class Pass:
    requests: int
    started: float
    ended: float


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    with ExitStack() as stack:
        stack.enter_context(terminate_on_sigterm())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wandb-bridge-bench-")))
        github = stack.enter_context(GitHubStandIn())
        wandb = stack.enter_context(
            WandbStandIn(
                API_KEY,
                entity=ENTITY,
                org=ORG,
                registry=REGISTRY,
                collections=args.collections,
                versions=args.versions,
                latency=args.latency_ms / 1000,
            )
        )
        procs = stack.enter_context(Processes())
        return _bench(args, random.Random(seed), seed, tmp, github, wandb, procs)
    return 1  # not reached


def _config(tmp: Path, github: GitHubStandIn, wandb: WandbStandIn, every: float) -> dict[str, Any]:
    """The benchmarks' bridge, its one route on the registry, catch-up on."""
    key = tmp / "wandb-api-key"
    key.write_text(API_KEY)
    config = bridge_config(tmp, api_url=github.url)
    config["routes"] = [
        {
            "name": "deploy-production",
            "when": {
                "event_type": "ADD_ARTIFACT_ALIAS",
                "alias": "production",
                "project_name": REGISTRY,
            },
            "dispatch": {
                "repository": "acme/churn-svc",
                "event_type": "DEPLOY_MODEL",
                "client_payload": {
                    "model": "${artifact_version_string}",
                    "bench_marker": "${artifact_version}",
                },
            },
        }
    ]
    config["wandb"] = {
        "base_url": wandb.url,
        "api_key": {"file": str(key)},
        "entity": ENTITY,
        "bridge_url": BRIDGE_URL,
        "secret_name": "BRIDGE_WEBHOOK_SECRET",
        "access_token_name": "BRIDGE_ACCESS_TOKEN",
        "catch_up": {"every": f"{every:g}s", "max_requests_per_hour": 100_000},
    }
    return config


def _automations(config: dict[str, Any]) -> list[Automation]:
    """What ``wandb-bridge wandb apply`` would make in W&B for ``config``'s routes."""
    parsed = parse_config(config, BENCH_SECRETS)
    wb = parsed.wandb
    assert wb is not None
    wants, skipped = wanted(parsed, wb, FEATURES)
    assert not skipped and all(w.scope.type == "PROJECT" for w in wants), (wants, skipped)
    url = f"{wb.bridge_url}/webhooks/{wb.source}"
    return [
        Automation(w.name, w.description, w.event, w.filter, w.payload, wb.integration, url)
        for w in wants
    ]


def _bench(args: argparse.Namespace, rng: random.Random, seed: int, tmp: Path,
           github: GitHubStandIn, wandb: WandbStandIn, procs: Processes) -> int:  # fmt: skip
    config = _config(tmp, github, wandb, args.every)
    wandb.automations = _automations(config)
    wandb.webhook_secret = BENCH_SECRETS["BENCH_WEBHOOK_SECRET"]
    wandb.webhook_token = BENCH_SECRETS["BENCH_WEBHOOK_TOKEN"]
    say(f"catch-up benchmark (figures only, nothing asserted); {machine_load()}")
    bridge = start_bridge(procs, tmp, config, "--workers", "2")
    wandb.deliver_to = bridge.url
    say(f"  bridge:  {' '.join(bridge.command[1:])}; wandb.catch_up.every {args.every:g}s")
    say(
        f"  W&B:     stand-in {wandb.url}, {args.latency_ms:g} ms a request, registry "
        f"{ORG}/{REGISTRY}: {args.collections} collections x {args.versions} versions"
    )
    say(f"  changes: {args.changes} webhooks dropped + {args.changes} sent, over one "
        f"`every` (seed {seed})")  # fmt: skip
    patience = 4 * args.every + 120
    if not _wait(lambda: len(_pass_lines(bridge.log)) >= 1, patience):
        say("the first pass did not end in time")
        return 1

    names = rng.sample(sorted(wandb.registry.collections), 2 * args.changes)
    moments = sorted(rng.uniform(0, args.every) for _ in names)
    start = time.time()
    changes = []
    for n, (name, moment) in enumerate(zip(names, moments, strict=True)):
        time.sleep(max(0.0, start + moment - time.time()))
        index = rng.randrange(args.versions)
        _, versions = wandb.registry.collections[name]
        at = wandb.add_alias(name, index, "production", deliver=n % 2 == 1)
        changes.append(Change(name, ARTIFACT_PREFIX + versions[index].artifact, at, n % 2 == 1))
    markers = {c.marker for c in changes}
    arrived = github.wait_for_markers(markers, patience)
    # One more whole pass, begun after the last dispatch: it must find nothing new.
    last = max((a.at for m in markers for a in github.markers.get(m, ())), default=time.time())
    begun = sum(
        1 for r in wandb.requests if r.operation == "ServerFeaturesQuery" and r.started <= last
    )
    _wait(lambda: len(_pass_lines(bridge.log)) >= begun + 1, patience)
    time.sleep(1.0)  # let a late dispatch in before counting
    return _summary(args, wandb, github, bridge.log, changes, arrived)


def _wait(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _pass_lines(log: Path) -> list[tuple[int, int]]:
    """(collections read, W&B requests) of each pass the bridge's log reports."""
    text = log.read_text(errors="replace")
    return [(int(a), int(b)) for a, b in PASS_LINE.findall(text)]


def _passes(wandb: WandbStandIn) -> list[Pass]:
    """The requests the stand-in received, split into passes (each begins by asking for
    the server's features)."""
    found: list[list[Any]] = []
    with wandb.lock:
        requests = list(wandb.requests)
    for r in requests:
        if r.operation == "ServerFeaturesQuery" or not found:
            found.append([])
        found[-1].append(r)
    return [Pass(len(rs), rs[0].started, rs[-1].ended) for rs in found]


def documented(collections: int, versions: int) -> int:
    """docs/wandb.md's cost of a pass here: the server's features, the team's (no)
    automations, the organization's entity, its automations (one page), the registry's
    collections, and each collection's versions."""
    return 4 + math.ceil(collections / PAGE) + collections * math.ceil(versions / PAGE)


def _summary(args: argparse.Namespace, wandb: WandbStandIn, github: GitHubStandIn, log: Path,
             changes: list[Change], arrived: bool) -> int:  # fmt: skip
    every = args.every
    passes = _passes(wandb)
    lines = _pass_lines(log)
    with github.cond:
        arrivals = {k: list(v) for k, v in github.markers.items()}
        malformed = list(github.malformed)
    with wandb.lock:
        hooks = list(wandb.hooks)
    counts = {c.marker: len(arrivals.get(c.marker, ())) for c in changes}
    lost = [c for c in changes if counts[c.marker] == 0]
    doubled = [c for c in changes if counts[c.marker] > 1]
    strangers = sorted(set(arrivals) - set(counts))
    refused = [h for h in hooks if h.sent and h.status != 202]
    last = max((a.at for c in changes for a in arrivals.get(c.marker, ())), default=math.inf)
    checked = any(p.started > last for p in passes[: len(lines)])  # a whole pass, logged

    say()
    say("=== catch-up summary " + "=" * 58)
    cost = documented(args.collections, args.versions)
    say(f"(a) passes: {len(passes)}; documented cost {cost} requests a pass")
    max_wall = max((p.ended - p.started for p in passes), default=0.0)
    for n, p in enumerate(passes):
        logged = (
            f"logged {lines[n][0]} collections, {lines[n][1]} requests"
            if n < len(lines)
            else "not logged"
        )
        floor, wall = p.requests * args.latency_ms / 1000, p.ended - p.started
        say(
            f"    pass {n + 1}: {p.requests} requests in {wall:.2f} s ({wall / floor:.2f}x "
            f"their {floor:.2f} s of W&B latency); {logged}"
        )

    gaps = [b.started - a.started for a, b in pairwise(passes)]
    if gaps:
        say(
            f"    passes begin {min(gaps):.2f}-{max(gaps):.2f} s apart (every, start to "
            f"start): a change may wait up to every + one pass, {every + max_wall:.1f} s "
            f"= {(every + max_wall) / every:.2f}x every"
        )

    def lag(group: list[Change]) -> list[float]:
        return [arrivals[c.marker][0].at - c.at for c in group if c.marker in arrivals]

    dropped = [c for c in changes if not c.delivered]
    sent = [c for c in changes if c.delivered]
    caught = lag(dropped)
    found_after: list[float] = []
    say(f"(b) webhook dropped, change -> dispatch ({len(caught)}/{len(dropped)} arrived):")
    for c in dropped:
        if c.marker in arrivals:
            at = arrivals[c.marker][0].at
            ended = max((p.ended for p in passes if p.ended <= at), default=math.nan)
            found_after.append(ended - c.at)
            say(f"    {c.collection}: {at - c.at:6.2f} s = {(at - c.at) / every:.2f}x every "
                f"(found by the pass that ended {ended - c.at:.2f} s after the change; "
                f"dispatch {1000 * (at - ended):.0f} ms after it)")  # fmt: skip
    if caught:
        worst, found = max(caught), max(found_after)
        say(
            f"    mean {sum(caught) / len(caught):.2f} s, max {worst:.2f} s = {worst / every:.2f}x "
            f"every; found by the end of a pass within {found:.2f} s = {found / every:.2f}x "
            f"every ({'meets' if found <= every + max_wall else 'MISSES'} the bound: every "
            "plus one pass's reading, plus delivery)"
        )
    hooked = [x * 1000 for x in lag(sent)]
    say(f"(d) webhook sent (yardstick), change -> dispatch ({len(hooked)}/{len(sent)}): p50 "
        f"{percentile(hooked, 50):.1f} ms, max {percentile(hooked, 100):.1f} ms; webhooks "
        f"answered other than 202: {len(refused)}")  # fmt: skip
    if caught and hooked:
        ratio = (1000 * sum(caught) / len(caught)) / (sum(hooked) / len(hooked))
        say(f"    catch-up / webhook, means: {ratio:.0f}x")
    say(f"(c) dispatched exactly once: {len(changes) - len(lost) - len(doubled)}/{len(changes)}; "
        f"lost {len(lost)}, doubled {len(doubled)}, dispatches of no change {len(strangers)}, "
        f"malformed {len(malformed)}; a whole pass after the last dispatch: "
        f"{'yes' if checked else 'NO'}")  # fmt: skip
    for c in lost + doubled:
        say(f"    {c.collection} {c.marker}: {counts[c.marker]} dispatch(es)")
    text = log.read_text(errors="replace")
    say(log_line(text))
    say(f"machine at the end: {machine_load()}")
    say("=" * 79)
    bad = lost or doubled or strangers or malformed or refused or not (arrived and checked)
    return 1 if bad else 0


if __name__ == "__main__":
    run_main(main)
