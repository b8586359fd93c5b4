"""The operator console with 100,000 events stored: server time of its pages.

    python -m bench.console [--events 100000] [--requests 200] [--backend sqlite postgresql]

The quality bar: with 100,000 events stored, the events page and an event's page answer
in p95 <= 100 ms of server time.

For each backend (SQLite in a temporary directory; PostgreSQL when ``harness/pg.py`` finds
a server, else that half is skipped) the benchmark seeds a migrated store in one
transaction of bulk inserts (not 100,000 accepts): events over 30 days from a W&B
registry (bodies and model versions of 40 collections, a rare one among them), each
with a dispatch or a workflow dispatch to one of 8 repositories (one rare) by one of 4
routes, 40 % with a notification too; the newest queued or in flight, 3 % dead after
three attempts, the rest delivered with an attempt each; the delivered ones' runs
concluded (mostly success), still followed (the newest), never started (no run) or
given up (unknown). PostgreSQL is ANALYZEd after the seeding, as autovacuum would; SQLite
is not (the bridge never runs ANALYZE on it).

Then, for each case, ``--requests`` calls of the store (``store.console.events``, with
``dead_count`` as the page asks it, and ``store.get_event``) and as many requests of
the page through the Flask app in-process (``bridge.app.create_app`` and its test
client, signed in through the real sign-in form): the time from the request to the
whole response, p50 and p95. No network is involved: this is the server's time.
Cases: the first page without a filter, each filter (each state, each run outcome, a
repository, a rare repository, a route, a model search, a rare one, one that matches
nothing, an event id prefix), older pages (``before`` a random event's id) and an
event's page (a random event each time). Figures are printed, never asserted; the exit
status is 1 when a request got an unexpected answer.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import arg_parser, machine_load, percentile, run_main, say
from bridge.ids import new_id
from bridge.store import SqlStore, open_store
from bridge.store.models import EventFilter, Page
from harness import pg

BAR_MS = 100.0
ADMIN_TOKEN = "bench-only-admin-token"
REPOSITORIES = [f"acme/svc-{n}" for n in range(7)]
RARE_REPOSITORY = "acme/rare-svc"  # 0.1 % of the events
ROUTES = ["deploy-production", "deploy-staging", "evaluate", "retrain"]
COLLECTIONS = [f"{k}-model-{n}" for k in ("churn", "fraud", "ranking", "vision") for n in range(10)]
RARE_COLLECTION = "seldom-model"  # 0.1 % of the events
DAYS = 30


@dataclass
class Timing:
    """One case: the store call's and the page's times, in ms."""

    name: str
    store: list[float] = field(default_factory=list)
    page: list[float] = field(default_factory=list)
    rows: int = 0  # events on the case's (first) page


@dataclass
class Result:
    backend: str
    skipped: str | None = None
    seeded: dict[str, int] = field(default_factory=dict)
    seed_seconds: float = 0.0
    timings: list[Timing] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# -- seeding ----------------------------------------------------------------------------------


def _body(model: str, n: int, alias: str) -> bytes:
    entity, project, rest = model.split("/", 2)
    collection = rest.split(":")[0]
    return json.dumps(
        {
            "event_type": "ADD_ARTIFACT_ALIAS",
            "event_author": "ml-bot",
            "entity_name": entity,
            "project_name": project,
            "artifact_collection_name": collection,
            "artifact_version": f"wandb-artifact://_id/QXJ0aWZhY3Q6{n}",
            "artifact_version_string": model,
            "alias": alias,
            "bridge_route": "deploy-production",
        }
    ).encode()


def seed(store: SqlStore, events: int, now: float, rng: random.Random) -> dict[str, int]:
    """Insert ``events`` events of realistic shape, in one transaction; the row counts."""
    rows: dict[str, list[tuple[Any, ...]]] = {
        "events": [],
        "deliveries": [],
        "attempts": [],
        "watches": [],
        "runs": [],
    }
    start = now - DAYS * 86400
    run_id = 10_000_000
    for i in range(events):
        at = start + (i + 1) * DAYS * 86400 / events
        newest = events - i  # 1 for the newest
        eid = new_id("evt", at)
        collection = RARE_COLLECTION if rng.random() < 0.001 else rng.choice(COLLECTIONS)
        model = f"acme/wandb-registry-model/{collection}:v{i % 500}"
        body = _body(model, i, "production")
        rows["events"].append(
            (eid, "wandb", "/webhooks/wandb", at, f"{i:064x}", body, "webhook", model)
        )
        repo = RARE_REPOSITORY if rng.random() < 0.001 else rng.choice(REPOSITORIES)
        route = rng.choice(ROUTES)
        workflow = rng.random() < 0.2
        kind, wf, ref = ("workflow", "deploy.yml", "main") if workflow else ("dispatch", None, None)
        payload = json.dumps({"model": model, "bridge_event_id": eid})
        if newest <= 50:
            state = "queued"
        elif newest <= 70:
            state = "in_flight"
        else:
            state = "dead" if rng.random() < 0.03 else "delivered"
        did = new_id("dlv", at)
        done = at + 1.5 if state in ("delivered", "dead") else None
        tries = 3 if state == "dead" else (1 if done else 0)
        error = "422 Unprocessable Entity: No ref found for: main" if state == "dead" else None
        rows["deliveries"].append(
            (did, eid, route, repo, "DEPLOY_MODEL", payload, state, done or at, tries, tries,
             at, at, done or at, done, 422 if state == "dead" else (204 if done else None),
             error, kind, wf, ref, None)
        )  # fmt: skip
        for n in range(1, tries + 1):
            last = n == tries
            ok = state == "delivered"
            if ok:
                status, outcome, answer = 204, "delivered", "delivered"
            elif last:
                status, outcome, answer = 422, "dead", "422 No ref found for: main"
            else:
                status, outcome, answer = 502, "retry", "502 Bad Gateway"
            rows["attempts"].append(
                (did, n, at + n * 0.5, at + n * 0.5 + 0.2, status, outcome, answer,
                 None if ok or last else 0.5 * n, "host:1:abc")
            )  # fmt: skip
        if state == "delivered":
            fate = rng.random()
            watch = "no_run" if fate < 0.05 else "done"
            rows["watches"].append(
                (did, eid, repo, kind, wf, ref, done, (done or at) + 600, watch, None,
                 (done or at) + 600, None, 3)
            )  # fmt: skip
            if watch == "done":
                run_id += 1
                if newest <= 150:
                    run_state, conclusion = "following", None
                elif fate < 0.06:
                    run_state, conclusion = "unknown", None
                else:
                    run_state = "concluded"
                    conclusion = "success" if fate < 0.85 else rng.choice(["failure", "cancelled"])
                finished = None if run_state == "following" else (done or at) + 300
                rows["runs"].append(
                    (run_id, "Deploy", f"https://github.com/{repo}/actions/runs/{run_id}",
                     "completed" if conclusion else "in_progress", conclusion, done, finished,
                     did, eid, repo, done, run_state, None, 4, finished or (done or at) + 60,
                     finished, "wandb-bridge[bot]")
                )  # fmt: skip
        if rng.random() < 0.4:
            nstate = "dead" if rng.random() < 0.01 else "delivered"
            rows["deliveries"].append(
                (new_id("dlv", at), eid, route, repo, "succeeded", "{}", nstate, at + 400, 1, 1,
                 at, at, at + 400, at + 400, 200, None if nstate == "delivered" else "timed out",
                 "notify", None, None, "slack-ops")
            )  # fmt: skip
    statements = {
        "events": "INSERT INTO events (id, source, endpoint, received_at, body_sha256, body, "
        "origin, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        "deliveries": "INSERT INTO deliveries (id, event_id, route, repository, event_type, "
        "client_payload, state, due_at, attempts, round_attempts, round_started_at, "
        "created_at, updated_at, finished_at, last_status, last_error, kind, workflow, ref, "
        "notifier) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "attempts": "INSERT INTO attempts (delivery_id, attempt, started_at, finished_at, "
        "status, outcome, response, wait, worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "watches": "INSERT INTO watches (delivery_id, event_id, repository, kind, workflow, "
        "ref, dispatched_at, search_until, state, etag, due_at, lease_owner, checks) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "runs": "INSERT INTO runs (run_id, workflow, html_url, status, conclusion, created_at, "
        "updated_at, delivery_id, event_id, repository, seen_at, state, etag, checks, due_at, "
        "finished_at, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    }
    mark = store._placeholder
    with store._transaction() as tx:
        for table, sql in statements.items():
            tx.cur.executemany(sql.replace("?", mark), rows[table])  # type: ignore[attr-defined]
    return {table: len(found) for table, found in rows.items()}


# -- measuring ------------------------------------------------------------------------------


def _ms(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    got = call()
    return (time.perf_counter() - started) * 1000, got


class Console:
    """The Flask app in-process, signed in through the sign-in form."""

    def __init__(self, store: SqlStore, store_url: str, now: Callable[[], float]) -> None:
        from bridge.app import create_app
        from bridge.config.load import parse_config

        config = parse_config(
            {
                "store": store_url,
                "sources": {"wandb": {"allow_unauthenticated": True}},
                "github": {"dry_run": True},
                "admin": {"tokens": [{"env": "BENCH_ADMIN_TOKEN"}]},
                "logging": {"level": "WARNING"},
            },
            {"BENCH_ADMIN_TOKEN": ADMIN_TOKEN},
        )
        self.client = create_app(config, store=store, clock=now, migrate=False).test_client()
        page = self.client.get("/console/")
        found = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True))
        if page.status_code != 200 or found is None:
            raise RuntimeError(f"the sign-in page answered {page.status_code} without a form")
        signed = self.client.post(
            "/console/sign-in",
            data={"token": ADMIN_TOKEN, "csrf": found.group(1)},
            headers={"Origin": "http://localhost"},
        )
        if signed.status_code != 303:
            raise RuntimeError(f"signing in answered {signed.status_code}")

    def get(self, path: str) -> tuple[int, str]:
        r = self.client.get(path)
        return r.status_code, r.get_data(as_text=True)


def _query(f: EventFilter, before: str | None = None) -> str:
    values = {k: v for k, v in vars(f).items() if v}
    if before:
        values["before"] = before
    return "/console/" + (f"?{urlencode(values)}" if values else "")


def list_cases() -> list[tuple[str, EventFilter]]:
    return [
        ("events, no filter", EventFilter()),
        ("state=dead", EventFilter(state="dead")),
        ("state=queued", EventFilter(state="queued")),
        ("state=in_flight", EventFilter(state="in_flight")),
        ("state=delivered", EventFilter(state="delivered")),
        ("run=succeeded", EventFilter(run="succeeded")),
        ("run=failed", EventFilter(run="failed")),
        ("run=running", EventFilter(run="running")),
        ("run=no_run", EventFilter(run="no_run")),
        ("run=unknown", EventFilter(run="unknown")),
        ("repository", EventFilter(repository=REPOSITORIES[3])),
        ("repository, rare", EventFilter(repository=RARE_REPOSITORY)),
        ("route", EventFilter(route=ROUTES[2])),
        ("route + state=dead", EventFilter(route=ROUTES[2], state="dead")),
        ("q=model (12 %)", EventFilter(q="FRAUD-model")),
        ("q=model, rare", EventFilter(q="seldom")),
        ("q=matches nothing", EventFilter(q="no-such-model")),
        ("q=event id prefix", EventFilter(q="evt_")),
    ]


def measure(
    store: SqlStore, console: Console | None, requests: int, rng: random.Random, result: Result
) -> None:
    def list_page(f: EventFilter, before: str | None) -> Page:
        """What the events page asks of the store: a page, and the dead to replay."""
        page = store.console.events(f, before)
        store.console.dead_count(f)
        return page

    def check_page(timing: Timing, status: int, html: str, want: str) -> None:
        if status != 200 or want not in html:
            result.errors.append(f"{timing.name}: answered {status} without {want!r}")

    for name, filters in list_cases():
        timing = Timing(name)
        for _ in range(requests):
            ms, page = _ms(lambda f=filters: list_page(f, None))
            timing.store.append(ms)
            timing.rows = len(page.events)
        if console is not None:
            path = _query(filters)
            for _ in range(requests):
                ms, (status, html) = _ms(lambda p=path: console.get(p))
                timing.page.append(ms)
            check_page(timing, status, html, "<h1>Events</h1>")
            if html.count('class="event"') != timing.rows:
                result.errors.append(f"{name}: the page shows another count than the store")
        result.timings.append(timing)

    with store._transaction(write=False) as tx:
        ids = [r[0] for r in tx.run("SELECT id FROM events").fetchall()]
    older = Timing("older pages (before=)")
    befores = [rng.choice(ids) for _ in range(requests)]
    for before in befores:
        ms, page = _ms(lambda b=before: list_page(EventFilter(), b))
        older.store.append(ms)
    older.rows = len(page.events)
    if console is not None:
        for before in befores:
            ms, (status, html) = _ms(lambda b=before: console.get(_query(EventFilter(), b)))
            older.page.append(ms)
            check_page(older, status, html, "<h1>Events</h1>")
    result.timings.append(older)

    one = Timing("an event's page")
    picks = [rng.choice(ids) for _ in range(requests)]
    for eid in picks:
        ms, _ = _ms(lambda e=eid: store.get_event(e))
        one.store.append(ms)
    one.rows = 1
    if console is not None:
        for eid in picks:
            ms, (status, html) = _ms(lambda e=eid: console.get(f"/console/events/{e}"))
            one.page.append(ms)
            check_page(one, status, html, eid)
    result.timings.append(one)


# -- a backend, the report --------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace) -> Result:
    result = Result(backend)
    rng = random.Random(args.seed)
    now = time.time()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wandb-bridge-console-")))
        store_url, reason = pg.store_url(backend, tmp, stack)
        if store_url is None:
            result.skipped = reason
            return result
        store = open_store(store_url)
        stack.callback(store.close)
        store.migrate()
        started = time.perf_counter()
        result.seeded = seed(store, args.events, now, rng)
        if backend == "postgresql":
            with store._transaction() as tx:
                tx.run("ANALYZE")
        result.seed_seconds = time.perf_counter() - started
        console = None
        try:
            console = Console(store, store_url, lambda: now)
        except Exception as exc:  # the console's pages are not there (yet): the store alone
            result.errors.append(f"the console's pages could not be used: {exc}")
        measure(store, console, args.requests, rng, result)
    return result


def report(result: Result) -> None:
    say(f"\n== {result.backend} ==")
    if result.skipped:
        say(f"skipped: {result.skipped}")
        return
    counts = ", ".join(f"{n:,} {table}" for table, n in result.seeded.items())
    say(f"seeded in {result.seed_seconds:.1f} s: {counts}")
    say(f"{'case':<26} {'rows':>4}  {'store p50':>9} {'p95':>7}  {'page p50':>9} {'p95':>7}")
    for t in result.timings:
        page = f"{'-':>9} {'-':>7}"
        if t.page:
            page = f"{percentile(t.page, 50):9.1f} {percentile(t.page, 95):7.1f}"
        say(
            f"{t.name:<26} {t.rows:>4}  {percentile(t.store, 50):9.1f} "
            f"{percentile(t.store, 95):7.1f}  {page}"
        )
    pages = [t for t in result.timings if t.page]
    if pages:
        worst = max(pages, key=lambda t: percentile(t.page, 95))
        p95 = percentile(worst.page, 95)
        verdict = "meets" if p95 <= BAR_MS else "MISSES"
        say(
            f"bar: page p95 <= {BAR_MS:.0f} ms with {result.seeded.get('events', 0):,} events: "
            f"{verdict} (worst: {worst.name}, {p95:.1f} ms)"
        )
    for error in result.errors:
        say(f"error: {error}")


def main() -> int:
    parser = arg_parser("console", __doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="per case (default 200)")
    parser.add_argument("--seed", type=int, default=18, help="of the random data")
    parser.add_argument(
        "--backend", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    say(f"start: {machine_load()}")
    results = []
    for backend in args.backend:
        results.append(run_backend(backend, args))
        report(results[-1])
    say(f"\nend: {machine_load()}")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    run_main(main)
