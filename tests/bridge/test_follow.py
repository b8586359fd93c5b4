"""Following runs with a real store, a fake clock and a scripted GitHub client."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from bridge.config.load import parse_config
from bridge.delivery.follow import RunFollower, matches, next_look
from bridge.delivery.github import RunPage, has_next_page, parse_time, run_of
from bridge.delivery.senders import Sent
from bridge.delivery.worker import DeliveryWorker
from bridge.errors import PermanentDeliveryError
from bridge.metrics import Metrics
from bridge.store.models import NewDelivery, NewEvent, NewRun, Searched, Watch
from tests.bridge.fakeclock import T0, Clock


class ScriptedGitHub:
    """list_runs/get_run answers from runs the test edits, as GitHub gives them: filtered
    by event and creation time, newest first, 100 a page; ETags honoured."""

    def __init__(self) -> None:
        self.runs: dict[int, dict] = {}
        self.calls: list[tuple[str, bool]] = []  # (what, answered 304)

    def _etag(self, data) -> str:
        return '"' + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest() + '"'

    def list_runs(self, repository, event, since, etag, page=1):
        listed = [
            r
            for r in self.runs.values()
            if r["event"] == event and parse_time(r["created_at"]) >= int(since)
        ]
        listed.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        objects = listed[(page - 1) * 100 : page * 100]
        tag = self._etag(objects)
        self.calls.append(("list", tag == etag))
        if tag == etag:
            return RunPage([], [], etag, False, False)
        more = len(listed) > page * 100
        return RunPage([run_of(o) for o in objects], objects, tag, True, more)

    def get_run(self, repository, run_id, etag):
        obj = self.runs[run_id]
        tag = self._etag(obj)
        self.calls.append(("get", tag == etag))
        if tag == etag:
            return None, etag
        return run_of(obj), tag


class OneShotSender:
    dry_run = False

    def __init__(self, run: NewRun | None = None) -> None:
        self.run = run

    def send(self, claimed):
        return Sent(204 if self.run is None else 200, self.run)


def config(**over):
    raw = {
        "store": "sqlite:///unused.db",
        "sources": {"w": {"allow_unauthenticated": True}},
        "github": {"token": "ghp_x"},
        "runs": {"no_run_after": "5m", "give_up_after": "1h", "max_requests_per_hour": 100},
        "notify": [
            {
                "name": "hook",
                "outcomes": ["run_failed", "run_succeeded", "no_run_started", "delivered"],
                "webhook": {"url": "http://127.0.0.1:9/hook"},
            }
        ],
    }
    raw.update(over)
    return parse_config(raw, {})


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_obj(
    run_id,
    title,
    status="queued",
    conclusion=None,
    event="repository_dispatch",
    path=".github/workflows/deploy.yml",
    branch="main",
    created=T0 + 1,
    actor="wandb-bridge-bot",
):
    return {
        "id": run_id,
        "name": "Deploy",
        "display_title": title,
        "event": event,
        "status": status,
        "conclusion": conclusion,
        "path": path,
        "head_branch": branch,
        "html_url": f"https://github.com/acme/svc/actions/runs/{run_id}",
        "created_at": iso(created),
        "updated_at": iso(created),
        "workflow_id": 7,
        "actor": {"login": actor},
        "triggering_actor": {"login": actor},
    }


def setup(store_factory, clock, sender=None, **over):
    cfg = config(**over)
    store = store_factory()
    body = json.dumps(
        {
            "event_type": "ADD_ARTIFACT_ALIAS",
            "event_author": "alice",
            "artifact_version_string": "acme/reg/churn:production",
        }
    ).encode()
    store.accept(
        NewEvent("evt_1", "w", "/webhooks/w", clock.now, body, hashlib.sha256(body).hexdigest()),
        [NewDelivery("dlv_1", "deploy", "acme/svc", "DEPLOY", "{}")],
        600,
    )
    metrics = Metrics(store.stats, clock)
    worker = DeliveryWorker(
        cfg, store, sender or OneShotSender(), metrics, clock=clock, owner="w1", credential="cred"
    )
    github = ScriptedGitHub()
    follower = RunFollower(cfg, store, github, metrics, clock, "w1", "cred")
    return store, worker, follower, github


def notifications(store):
    (event,) = [store.get_event("evt_1")]
    return [
        (d.event_type, json.loads(d.client_payload)) for d in event.deliveries if d.kind == "notify"
    ]


def test_a_dispatch_run_is_found_by_its_event_id_and_followed_to_its_end(store_factory):
    clock = Clock()
    store, worker, follower, github = setup(store_factory, clock)
    worker.drain()  # delivered: the search begins, "delivered" is announced
    assert [n[0] for n in notifications(store)] == ["delivered"]
    github.runs[1] = run_obj(1, "Deploy something else (evt_0)")
    clock.now += 10
    follower.step()
    assert store.get_event("evt_1").deliveries[0].runs == ()
    github.runs[2] = run_obj(2, "Deploy acme/reg/churn:production (evt_1)")
    clock.now += 10
    follower.step()
    (run,) = store.get_event("evt_1").deliveries[0].runs
    assert run.run_id == 2 and run.state == "following" and run.status == "queued"
    clock.now += 60
    follower.step()  # unchanged: a 304
    assert github.calls[-1] == ("get", True)
    github.runs[2] = run_obj(2, "x (evt_1)", status="completed", conclusion="failure")
    clock.now += 60
    follower.step()
    d = store.get_event("evt_1").deliveries[0]
    (run,) = d.runs
    assert run.state == "concluded" and run.conclusion == "failure"
    outcomes = notifications(store)
    assert [o for o, _ in outcomes] == ["delivered", "run_failed"]
    message = outcomes[1][1]
    assert message["conclusion"] == "failure" and message["model"] == "acme/reg/churn:production"
    assert message["run_url"].endswith("/runs/2") and message["author"] == "alice"
    assert store.list_events(run="failed")[0].id == "evt_1"
    assert store.list_events(run="succeeded") == []


def test_a_dispatch_that_starts_no_run_is_recorded_and_announced(store_factory):
    clock = Clock()
    store, worker, follower, github = setup(store_factory, clock)
    worker.drain()
    for _ in range(40):  # keep looking until the window closes
        clock.now += 30
        follower.step()
    d = store.get_event("evt_1").deliveries[0]
    assert d.watch == "no_run" and d.runs == ()
    assert [o for o, _ in notifications(store)] == ["delivered", "no_run_started"]
    assert store.list_events(run="no_run")[0].id == "evt_1"
    # the search polled less often as it aged, and 304s were most of it
    assert len(github.calls) < 20 and all(hit for _, hit in github.calls[1:])


def test_a_workflow_dispatch_follows_the_run_github_named(store_factory):
    clock = Clock()
    named = NewRun(99, "deploy.yml", "https://github.example/r/99", "queued", None, None, None)
    store, worker, follower, github = setup(store_factory, clock, OneShotSender(named))
    worker.drain()
    d = store.get_event("evt_1").deliveries[0]
    assert d.watch == "done" and [r.run_id for r in d.runs] == [99]
    github.runs[99] = run_obj(
        99, "Deploy", status="completed", conclusion="success", event="workflow_dispatch"
    )
    clock.now += 30
    follower.step()
    (run,) = store.get_event("evt_1").deliveries[0].runs
    assert run.conclusion == "success" and run.state == "concluded"
    assert run.created_at is not None  # GitHub's run details have none; the first look does
    assert [o for o, _ in notifications(store)] == ["delivered", "run_succeeded"]


def test_a_run_not_concluded_in_time_is_given_up(store_factory):
    clock = Clock()
    named = NewRun(5, "deploy.yml", None, "queued", None, None, None)
    store, worker, follower, github = setup(store_factory, clock, OneShotSender(named))
    worker.drain()
    github.runs[5] = run_obj(5, "Deploy", status="in_progress", event="workflow_dispatch")
    clock.now += 3601 + 60
    follower.step()
    (run,) = store.get_event("evt_1").deliveries[0].runs
    assert run.state == "unknown"
    assert store.list_events(run="unknown")[0].id == "evt_1"


def test_the_hourly_budget_is_never_exceeded(store_factory):
    clock = Clock()
    _store, worker, follower, github = setup(
        store_factory, clock, runs={"max_requests_per_hour": 3, "no_run_after": "2h"}
    )
    worker.drain()
    for _ in range(30):
        clock.now += 60
        follower.step()
    assert len(github.calls) == 3  # the rest waited for the next hour
    clock.now += 3600
    follower.step()
    assert len(github.calls) == 4


def test_permission_errors_end_the_search_without_a_false_no_run(store_factory):
    clock = Clock()
    store, worker, follower, github = setup(store_factory, clock)

    def forbidden(*args):
        raise PermanentDeliveryError(
            "GitHub answered 403: Resource not accessible; the credential needs actions=read"
        )

    github.list_runs = forbidden
    worker.drain()
    clock.now += 30
    follower.step()
    d = store.get_event("evt_1").deliveries[0]
    assert d.watch == "unknown"
    assert [o for o, _ in notifications(store)] == ["delivered"]


DEPLOY = ".github/workflows/deploy.yml"


@pytest.mark.parametrize(
    ("workflow", "ref", "obj", "expected"),
    [
        ("deploy.yml", "main", {"path": DEPLOY, "head_branch": "main"}, True),
        ("deploy.yml", "main", {"path": DEPLOY, "head_branch": "dev"}, False),
        (
            "deploy.yml",
            "main",
            {"path": ".github/workflows/xdeploy.yml", "head_branch": "main"},
            False,
        ),
        ("7", "main", {"workflow_id": 7, "path": "x.yml", "head_branch": "main"}, True),
        # a full ref in the config: the run reports the short name
        ("deploy.yml", "refs/heads/main", {"path": DEPLOY, "head_branch": "main"}, True),
        ("deploy.yml", "refs/tags/v1.2", {"path": DEPLOY, "head_branch": "v1.2"}, True),
        ("deploy.yml", "refs/heads/main", {"path": DEPLOY, "head_branch": "mainline"}, False),
        ("deploy.yml", "refs/pull/3/merge", {"path": DEPLOY, "head_branch": "3/merge"}, False),
    ],
)
def test_a_workflow_run_matches_its_file_and_ref(workflow, ref, obj, expected):
    w = Watch("d", "evt_1", "acme/svc", "workflow", workflow, ref, T0, T0 + 300, None, 0)
    run = {"event": "workflow_dispatch", "created_at": iso(T0), **obj}
    assert matches(w, run) is expected


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({}, True),
        ({"created_at": iso(T0 - 2)}, True),  # GitHub's whole seconds, a clock a bit off
        ({"created_at": iso(T0 - 3)}, False),  # created before the dispatch was sent
        ({"created_at": iso(T0 - 30)}, False),
        ({"event": "push"}, False),
        ({"event": "repository_dispatch"}, False),
        ({"created_at": None}, False),
    ],
)
def test_a_run_from_before_the_dispatch_or_another_event_never_matches(over, expected):
    w = Watch("d", "evt_1", "acme/svc", "workflow", "deploy.yml", "main", T0, T0 + 300, None, 0)
    run = {"event": "workflow_dispatch", "created_at": iso(T0), "path": DEPLOY}
    assert matches(w, {**run, "head_branch": "main", **over}) is expected


def test_looks_grow_rarer_as_a_run_ages():
    assert next_look(0) == 10 and next_look(600) == 60 and next_look(86_400) == 300


def test_one_listing_serves_every_dispatch_to_a_repository(store_factory):
    clock = Clock()
    store, worker, follower, github = setup(store_factory, clock)
    for i in range(2, 7):
        body = f'{{"n": {i}}}'.encode()
        store.accept(
            NewEvent(
                f"evt_{i}", "w", "/webhooks/w", clock.now, body, hashlib.sha256(body).hexdigest()
            ),
            [NewDelivery(f"dlv_{i}", "deploy", "acme/svc", "DEPLOY", "{}")],
            600,
        )
    worker.drain()
    github.runs[3] = run_obj(3, "Deploy (evt_3)")
    github.runs[5] = run_obj(5, "Deploy (evt_5)")
    clock.now += 10
    follower.step()
    assert [c for c in github.calls if c[0] == "list"] == [("list", False)]
    found = {
        e: [r.run_id for r in store.get_event(e).deliveries[0].runs]
        for e in ("evt_3", "evt_5", "evt_4")
    }
    assert found == {"evt_3": [3], "evt_5": [5], "evt_4": []}


def accept(store, clock, n, first=2, kind="dispatch"):
    """Events evt_00002.. (from ``first``), each one delivery to acme/svc (ids of one length, as the
    bridge's are: none is a part of another)."""
    for i in range(first, first + n):
        body = f'{{"n": {i}}}'.encode()
        workflow = {"workflow": "deploy.yml", "ref": "main"} if kind == "workflow" else {}
        store.accept(
            NewEvent(
                f"evt_{i:05d}",
                "w",
                "/webhooks/w",
                clock.now,
                body,
                hashlib.sha256(body).hexdigest(),
            ),
            [NewDelivery(f"dlv_{i:05d}", "deploy", "acme/svc", "DEPLOY", "{}", kind, **workflow)],
            600,
        )


def eid(i):
    return "evt_1" if i == 1 else f"evt_{i:05d}"


def outcomes_of(store, event_id):
    event = store.get_event(event_id)
    return [d.event_type for d in event.deliveries if d.kind == "notify"]


def run_ids(store, event_id):
    return [r.run_id for d in store.get_event(event_id).deliveries for r in d.runs]


def test_a_busy_repository_is_searched_page_by_page_and_gives_no_false_no_run(store_factory):
    clock = Clock()
    runs = {"no_run_after": "60s", "max_requests_per_hour": 10_000}
    store, worker, follower, github = setup(store_factory, clock, runs=runs)
    accept(store, clock, 249)  # 250 dispatches to one repository, 3 pages of runs
    worker.drain()
    for i in range(1, 251):
        github.runs[i] = run_obj(i, f"Deploy ({eid(i)})", created=T0 + i % 2)
    for _ in range(12):
        clock.now += 10
        while follower.step():
            pass
    found = {eid(i): run_ids(store, eid(i)) for i in range(1, 251)}
    assert found == {eid(i): [i] for i in range(1, 251)}
    assert not [e for e in found if "no_run_started" in outcomes_of(store, e)]
    assert all(store.get_event(e).deliveries[0].watch == "done" for e in found)


def test_a_search_cut_short_by_the_budget_never_ends_in_no_run(store_factory):
    clock = Clock()
    store, worker, follower, github = setup(
        store_factory, clock, runs={"no_run_after": "30s", "max_requests_per_hour": 1}
    )
    worker.drain()
    clock.now += 5  # newer runs fill the first page; evt_1's is on page 2
    for i in range(100, 201):
        github.runs[i] = run_obj(i, f"Someone else's (evt_x{i})", created=clock.now)
    github.runs[1] = run_obj(1, "Deploy (evt_1)", created=T0 + 1)
    for _ in range(10):
        clock.now += 10
        follower.step()
    assert [c[0] for c in github.calls] == ["list"]  # the hour's budget: page 1 only
    d = store.get_event("evt_1").deliveries[0]
    assert d.watch == "searching" and d.runs == ()  # past no_run_after, still searching
    assert "no_run_started" not in outcomes_of(store, "evt_1")
    clock.now = T0 + 6 * 3600 + 1  # runs.give_up_after: it ends unknown, not "no run"
    follower.step()
    assert store.get_event("evt_1").deliveries[0].watch == "unknown"
    assert "no_run_started" not in outcomes_of(store, "evt_1")


def test_without_run_details_a_run_from_before_the_dispatch_is_never_attributed(store_factory):
    clock = Clock()
    store, worker, follower, github = setup(store_factory, clock, runs={"no_run_after": "60s"})
    store.accept(  # a workflow dispatch on a server without run details
        NewEvent("evt_w", "w", "/webhooks/w", clock.now, b"{}", hashlib.sha256(b"{}").hexdigest()),
        [NewDelivery("dlv_w", "deploy", "acme/svc", "X", "{}", "workflow", "deploy.yml", "main")],
        600,
    )
    manual = run_obj(9, "Deploy", event="workflow_dispatch", created=T0 - 30, actor="dev")
    github.runs[9] = manual  # a developer's manual run, 30 s before the dispatch
    worker.drain()
    for _ in range(10):
        clock.now += 10
        follower.step()
    assert run_ids(store, "evt_w") == []
    assert "no_run_started" in outcomes_of(store, "evt_w")


def test_without_run_details_two_dispatches_get_two_runs_in_order(store_factory):
    clock = Clock()
    store, worker, follower, github = setup(store_factory, clock, runs={"no_run_after": "60s"})
    accept(store, clock, 1, first=2, kind="workflow")
    worker.drain()
    clock.now += 5
    accept(store, clock, 1, first=3, kind="workflow")
    worker.drain()
    github.runs[20] = run_obj(20, "Deploy", event="workflow_dispatch", created=T0)
    github.runs[21] = run_obj(21, "Deploy", event="workflow_dispatch", created=T0 + 5)
    for _ in range(3):
        clock.now += 10
        follower.step()
    assert (run_ids(store, "evt_00002"), run_ids(store, "evt_00003")) == ([20], [21])


def test_without_run_details_a_later_dispatch_never_takes_an_earlier_ones_run(store_factory):
    clock = Clock()
    store, worker, follower, github = setup(store_factory, clock, runs={"no_run_after": "60s"})
    accept(store, clock, 1, first=2, kind="workflow")
    worker.drain()
    github.runs[20] = run_obj(20, "Deploy", event="workflow_dispatch", created=T0)
    clock.now += 10
    follower.step()  # evt_2 has its run
    clock.now += 1
    accept(store, clock, 1, first=3, kind="workflow")  # 11 s later; its run is not there yet
    worker.drain()
    clock.now += 10
    follower.step()
    assert (run_ids(store, "evt_00002"), run_ids(store, "evt_00003")) == ([20], [])
    github.runs[21] = run_obj(21, "Deploy", event="workflow_dispatch", created=T0 + 11)
    clock.now += 10
    follower.step()
    assert run_ids(store, "evt_00003") == [21]


def test_without_run_details_a_run_by_another_actor_is_never_attributed(store_factory):
    clock = Clock()
    store, worker, follower, github = setup(store_factory, clock, runs={"no_run_after": "60s"})
    worker.drain()  # evt_1, a repository dispatch: its run shows the bridge's actor
    github.runs[1] = run_obj(1, "Deploy (evt_1)", created=T0)
    clock.now += 10
    follower.step()
    assert run_ids(store, "evt_1") == [1]
    accept(store, clock, 1, first=2, kind="workflow")
    worker.drain()
    # a developer starts the same workflow on the same ref in the same second
    github.runs[30] = run_obj(30, "Deploy", event="workflow_dispatch", created=T0 + 10, actor="dev")
    clock.now += 10
    follower.step()
    assert run_ids(store, "evt_00002") == []
    github.runs[31] = run_obj(31, "Deploy", event="workflow_dispatch", created=T0 + 11)
    clock.now += 10
    follower.step()
    assert run_ids(store, "evt_00002") == [31]


def test_a_304_never_stands_for_pages_that_were_not_read(store_factory):
    clock = Clock()
    runs = {"no_run_after": "30s", "max_requests_per_hour": 2}
    store, worker, follower, github = setup(store_factory, clock, runs=runs)
    worker.drain()
    clock.now += 5  # 200 newer runs: evt_1's is on page 3
    for i in range(100, 300):
        github.runs[i] = run_obj(i, f"Someone else's (evt_x{i})", created=clock.now)
    github.runs[1] = run_obj(1, "Deploy (evt_1)", created=T0 + 1)
    clock.now += 10
    follower.step()  # pages 1 and 2: the budget of the hour
    clock.now += 3600
    follower.step()  # nothing changed, but page 3 was never read: no 304 asked for
    assert github.calls == [("list", False)] * 4
    assert store.get_event("evt_1").deliveries[0].watch == "searching"
    assert "no_run_started" not in outcomes_of(store, "evt_1")


def has_next(link, total, listed=100, page=1):
    return has_next_page(link, {"total_count": total}, page, listed)


def test_a_next_page_is_known_by_githubs_link_header_else_by_the_count():
    nxt = '<https://api.github.com/repositories/1/actions/runs?page=2>; rel="next", <x>; rel="last"'
    assert has_next(nxt, 150) and not has_next('<x>; rel="prev", <y>; rel="first"', 150)
    assert has_next(None, 150) and not has_next(None, 100) and not has_next(None, 150, 50)
    assert not has_next(None, 250, page=3) and not has_next(None, "many")


def test_a_run_belongs_to_one_dispatch_only_in_the_store(store_factory):
    clock = Clock()
    store, worker, _follower, _github = setup(store_factory, clock)
    accept(store, clock, 1)
    worker.drain()
    watches = store.runs.claim_watches("w1", 10, 30, clock.now + 100)
    run = NewRun(5, "Deploy", None, "queued", None, T0, T0)
    for w in watches:
        assert store.runs.finish_watches([Searched(w, clock.now, found=[run])], "w1", clock.now)[0]
    attributed = [run_ids(store, e) for e in ("evt_1", "evt_00002")]
    assert sorted(attributed) == [[], [5]]
    assert store.runs.attributed([5, 6]) == {5: watches[0].delivery_id}


def test_a_5000_event_burst_to_one_repository_yields_no_false_outcome(tmp_path):
    """Every dispatch's run found and followed to its end: no "no run started", no run
    attributed to another dispatch, nothing left unknown (with the budget a GitHub App has)."""
    from bridge.store import open_store

    def factory():
        store = open_store(f"sqlite:///{tmp_path}/bridge.db")
        store.migrate()
        return store

    clock = Clock()
    runs = {"max_requests_per_hour": 15_000}
    store, worker, follower, github = setup(factory, clock, runs=runs)
    accept(store, clock, 4999)
    worker.drain()
    for i in range(1, 5001):  # GitHub starts them over the next minute
        title = f"Deploy ({eid(i)})"
        github.runs[i] = run_obj(i, title, "completed", "success", created=T0 + i // 100)
    while (due := store.runs.next_due()) is not None:
        clock.now = max(clock.now, due)
        while follower.step():
            pass
    watches = Counter(store.get_event(eid(i)).deliveries[0].watch for i in range(1, 5001))
    assert watches == {"done": 5000}
    assert [i for i in range(1, 5001) if run_ids(store, eid(i)) != [i]] == []
    assert clock.now - T0 < 400  # settled within no_run_after (5 min) and a look
    lists = [c for c in github.calls if c[0] == "list"]
    assert len(lists) < 400  # one read of the listing serves 1000 searches


def test_a_store_with_a_run_attributed_twice_keeps_it_for_its_first_dispatch(store_url):
    from bridge.store import open_store

    store = open_store(store_url)
    try:
        latest = store.migrations
        store.migrations = latest[:6]  # before a run belonged to one dispatch only
        store.migrate()
        with store._transaction() as tx:
            for delivery_id in ("dlv_b", "dlv_a"):
                tx.run(
                    "INSERT INTO runs (delivery_id, run_id, event_id, repository, seen_at, "
                    "state, due_at) VALUES (?, 5, 'evt_1', 'acme/svc', 0, 'following', 0)",
                    (delivery_id,),
                )
        store.migrations = latest
        store.migrate()
        assert store.runs.attributed([5]) == {5: "dlv_a"}
    finally:
        store.close()


def test_a_run_another_replica_attributed_first_leaves_the_search_open(store_factory):
    clock = Clock()
    store, worker, _follower, _github = setup(store_factory, clock)
    accept(store, clock, 1, kind="workflow")
    worker.drain()
    first, second = store.runs.claim_watches("w1", 10, 30, clock.now + 100)
    run = NewRun(5, "Deploy", None, "queued", None, T0, T0)
    for w in (first, second):
        store.runs.finish_watches([Searched(w, clock.now, "done", [run])], "w1", clock.now)
    assert store.runs.attributed([5]) == {5: first.delivery_id}
    watches = {d.id: d.watch for e in ("evt_1", "evt_00002") for d in store.get_event(e).deliveries}
    assert (watches[first.delivery_id], watches[second.delivery_id]) == ("done", "searching")


def test_without_run_details_dispatches_a_second_apart_get_two_runs_in_order(store_factory):
    clock = Clock()
    store, worker, follower, github = setup(store_factory, clock, runs={"no_run_after": "60s"})
    accept(store, clock, 1, first=2, kind="workflow")
    worker.drain()
    clock.now += 1
    accept(store, clock, 1, first=3, kind="workflow")
    worker.drain()
    github.runs[20] = run_obj(20, "Deploy", event="workflow_dispatch", created=T0)
    github.runs[21] = run_obj(21, "Deploy", event="workflow_dispatch", created=T0 + 1)
    clock.now += 10
    follower.step()  # one listing: the earlier dispatch takes the earlier run
    assert (run_ids(store, "evt_00002"), run_ids(store, "evt_00003")) == ([20], [21])
