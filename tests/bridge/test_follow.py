"""Following runs with a real store, a fake clock and a scripted GitHub client."""

from __future__ import annotations

import hashlib
import json

import pytest

from bridge.config.load import parse_config
from bridge.delivery.follow import RunFollower, matches, next_look
from bridge.delivery.senders import Sent
from bridge.delivery.worker import DeliveryWorker
from bridge.errors import PermanentDeliveryError
from bridge.ops.metrics import Metrics
from bridge.store.models import (
    WORKFLOW,
    NewDelivery,
    NewEvent,
    NewRun,
    Watch,
)
from tests.bridge.fakeclock import T0, Clock


class ScriptedGitHub:
    """list_runs/get_run answers from a list of runs the test edits; ETags honoured."""

    def __init__(self) -> None:
        self.runs: dict[int, dict] = {}
        self.calls: list[tuple[str, bool]] = []  # (what, answered 304)

    def _etag(self, data) -> str:
        return '"' + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest() + '"'

    def list_runs(self, repository, event, since, etag):
        objects = [r for r in self.runs.values() if r["event"] == event]
        tag = self._etag(objects)
        self.calls.append(("list", tag == etag))
        if tag == etag:
            return [], [], etag
        from bridge.delivery.github import run_of

        return [run_of(o) for o in objects], objects, tag

    def get_run(self, repository, run_id, etag):
        obj = self.runs[run_id]
        tag = self._etag(obj)
        self.calls.append(("get", tag == etag))
        if tag == etag:
            return None, etag
        from bridge.delivery.github import run_of

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


def run_obj(
    run_id,
    title,
    status="queued",
    conclusion=None,
    event="repository_dispatch",
    path=".github/workflows/deploy.yml",
    branch="main",
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
        "html_url": f"https://github.example/acme/svc/actions/runs/{run_id}",
        "created_at": "2023-11-14T22:13:25Z",
        "updated_at": "2023-11-14T22:13:25Z",
        "workflow_id": 7,
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
    worker.run_once()  # delivered: the search begins, "delivered" is announced
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
    worker.run_once()
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
    worker.run_once()
    d = store.get_event("evt_1").deliveries[0]
    assert d.watch == "done" and [r.run_id for r in d.runs] == [99]
    github.runs[99] = run_obj(
        99, "Deploy", status="completed", conclusion="success", event="workflow_dispatch"
    )
    clock.now += 30
    follower.step()
    (run,) = store.get_event("evt_1").deliveries[0].runs
    assert run.conclusion == "success" and run.state == "concluded"
    assert [o for o, _ in notifications(store)] == ["delivered", "run_succeeded"]


def test_a_run_not_concluded_in_time_is_given_up(store_factory):
    clock = Clock()
    named = NewRun(5, "deploy.yml", None, "queued", None, None, None)
    store, worker, follower, github = setup(store_factory, clock, OneShotSender(named))
    worker.run_once()
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
    worker.run_once()
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
    worker.run_once()
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
    w = Watch("d", "evt_1", "acme/svc", WORKFLOW, workflow, ref, T0, T0 + 300, None, 0)
    assert matches(w, obj) is expected


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
    while worker.run_once():
        pass
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
