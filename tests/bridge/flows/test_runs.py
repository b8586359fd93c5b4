"""From a W&B event to the workflow run's conclusion and the team's notification,
against a stateful fake GitHub and fake receivers."""

from __future__ import annotations

import json
import time

import pytest

from harness.wait import wait_until
from tests.bridge.e2e.conftest import GH_TOKEN, SECRET, TOKEN
from tests.bridge.flows.test_delivery import flat, send
from tests.fakes.github import FakeGitHub
from tests.fakes.receivers import Receiver

RUN_NAME = (
    "Deploy ${{ github.event.client_payload.model }} "
    "(${{ github.event.client_payload.bridge_event_id }})"
)
HOOK_SECRET = "notify-hook-secret-7788"


def runs_config(slack: Receiver, hook: Receiver, **runs):
    return {
        "runs": {"no_run_after": "4s", "min_interval": "0.3s", **runs},
        "notify": [
            {
                "name": "slack",
                "outcomes": ["run_failed", "run_succeeded", "no_run_started", "delivery_dead"],
                "slack": {"webhook_url": slack.url},
            },
            {
                "name": "hook",
                "outcomes": ["run_succeeded", "run_failed", "delivered"],
                "webhook": {"url": hook.url, "secret": {"env": "HOOK_SECRET"}},
            },
        ],
    }


def test_an_event_becomes_a_run_whose_conclusion_reaches_slack_and_a_signed_webhook(
    start_bridge, fake_github
):
    fake_github.add_workflow(
        "acme/churn-svc",
        types=["DEPLOY_MODEL"],
        run_name=RUN_NAME,
        queued_for=0.5,
        runs_for=1.0,
        conclusion="failure",
    )
    with Receiver("slack") as slack, Receiver("generic", secret=HOOK_SECRET) as hook:
        bridge = start_bridge(env={"HOOK_SECRET": HOOK_SECRET}, **runs_config(slack, hook))
        event_id = send(bridge, flat(1))
        (message,) = slack.wait_for(1, timeout=60)
        text = json.dumps(message.payload)
        assert "Workflow run failed" in text and "acme/model-registry/churn:v1" in text
        assert "/actions/runs/" in text  # the run's URL
        delivered, failed = hook.wait_for(2, timeout=30)
        assert delivered.payload["outcome"] == "delivered"
        assert failed.payload["outcome"] == "run_failed"
        assert failed.payload["conclusion"] == "failure" and failed.payload["event_id"] == event_id
        shown = bridge.cli("events", "show", event_id)
        doc = json.loads(shown)
        dispatch = next(d for d in doc["deliveries"] if d["kind"] == "repository_dispatch")
        (run,) = dispatch["runs"]
        assert run["conclusion"] == "failure" and run["url"].endswith(str(run["id"]))
        assert {d["target"] for d in doc["deliveries"]} >= {"notify:slack", "notify:hook"}
        listed = bridge.cli("events", "list", "--run", "failed")
        assert event_id in listed and "run=failure" in listed
        # the worker's counters: /metrics serves them from every process (test_metrics)
        metrics = bridge.worker.metrics.render()[0].decode()
        assert (
            'wandb_bridge_runs_total{conclusion="failure",repository="acme/churn-svc"} 1.0'
            in metrics
        )
        # following one run cost a handful of requests, most of them free 304s
        reads = fake_github.run_reads
        assert reads.total <= 25, reads


def test_a_dispatch_no_workflow_listens_to_is_recorded_as_no_run_started(start_bridge, fake_github):
    fake_github.add_workflow("acme/churn-svc", types=["SOMETHING_ELSE"], run_name=RUN_NAME)
    with Receiver("slack") as slack, Receiver("generic", secret=HOOK_SECRET) as hook:
        bridge = start_bridge(env={"HOOK_SECRET": HOOK_SECRET}, **runs_config(slack, hook))
        event_id = send(bridge, flat(2))
        (message,) = slack.wait_for(1, timeout=60)
        assert "No workflow run started" in json.dumps(message.payload)
        event = bridge.wait_for_state(event_id, "delivered")
        dispatch = next(d for d in event.deliveries if d.kind == "dispatch")
        assert dispatch.watch == "no_run" and dispatch.runs == ()
        log = bridge.log()
        assert "no run started" in log and "types:" in log


def test_a_dead_delivery_is_announced_with_githubs_error(start_bridge, fake_github):
    fake_github.fail_next(422, body={"message": "No more than 10 properties are allowed"})
    with Receiver("slack") as slack, Receiver("generic") as hook:
        bridge = start_bridge(env={"HOOK_SECRET": HOOK_SECRET}, **runs_config(slack, hook))
        send(bridge, flat(3))
        (message,) = slack.wait_for(1, timeout=30)
        text = json.dumps(message.payload)
        assert "Delivery to GitHub failed" in text and "No more than 10 properties" in text
        assert GH_TOKEN not in text


def test_a_workflow_target_sends_a_workflow_dispatch_and_follows_the_named_run(
    start_bridge, fake_github
):
    fake_github.add_workflow(
        "acme/churn-svc",
        ".github/workflows/evaluate.yml",
        on=("workflow_dispatch",),
        inputs={"model": {"required": True}},
        runs_for=0.5,
        conclusion="success",
    )
    route = {
        "name": "evaluate",
        "when": {"event_type": "LINK_ARTIFACT"},
        "workflow": {
            "repository": "acme/churn-svc",
            "file": "evaluate.yml",
            "ref": "main",
            "inputs": {"model": "${artifact_version_string}"},
        },
    }
    with Receiver("slack") as slack, Receiver("generic", secret=HOOK_SECRET) as hook:
        bridge = start_bridge(
            env={"HOOK_SECRET": HOOK_SECRET}, routes=[route], **runs_config(slack, hook)
        )
        body = json.dumps(
            {"event_type": "LINK_ARTIFACT", "artifact_version_string": "acme/reg/churn:v9"}
        ).encode()
        resp = bridge.post("/webhooks/wandb", body, secret=SECRET, token=TOKEN)
        assert resp.status_code == 202, resp.text
        (d,) = resp.json["deliveries"]
        assert d["target"] == "github:acme/churn-svc/evaluate.yml@main"
        (sent,) = wait_until(lambda: fake_github.workflow_dispatches, what="workflow dispatch")
        assert sent.inputs == {"model": "acme/reg/churn:v9"} and sent.ref == "main"
        assert sent.return_run_details is True
        messages = slack.wait_for(1, timeout=30)
        assert "Workflow run succeeded" in json.dumps(messages[0].payload)


def test_a_server_without_run_details_is_asked_again_without_them(start_bridge, tmp_path):
    with FakeGitHub(tokens=[GH_TOKEN], run_details=False) as gh:
        gh.add_workflow(
            "acme/churn-svc",
            ".github/workflows/evaluate.yml",
            on=("workflow_dispatch",),
            runs_for=0.5,
        )
        route = {
            "name": "evaluate",
            "when": {"event_type": "LINK_ARTIFACT"},
            "workflow": {"repository": "acme/churn-svc", "file": "evaluate.yml", "ref": "main"},
        }
        bridge = start_bridge(
            github={"api_url": gh.url},
            routes=[route],
            runs={"min_interval": "0.3s", "no_run_after": "5s"},
        )
        body = json.dumps({"event_type": "LINK_ARTIFACT", "artifact_version_string": "a/b/c:v1"})
        event_id = send(bridge, body.encode())
        event = bridge.wait_for_state(event_id, "delivered")
        (attempt,) = event.deliveries[0].history
        assert attempt.status == 204
        _first, second = (
            gh.workflow_dispatches
            if len(gh.workflow_dispatches) == 2
            else (None, gh.workflow_dispatches[0])
        )
        assert second.return_run_details is False
        # the run is found as the one of that workflow on that ref, and followed to its end
        wait_until(
            lambda: [r for r in _runs(bridge, event_id) if r.state == "concluded"],
            what="the run to be found and concluded",
        )


def _runs(bridge, event_id):
    return [r for d in bridge.event(event_id).deliveries for r in d.runs]


@pytest.mark.parametrize(
    "store_kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_events_prune_removes_only_finished_events(start_bridge, fake_github, store_kind, request):
    over = {"store": request.getfixturevalue("postgres_url")} if store_kind != "sqlite" else {}
    bridge = start_bridge(runs={"follow": False}, retention={"events": "1s"}, **over)
    done = send(bridge, flat(5))
    fake_github.wait_for_event_ids([done])
    wait_for_state_any(bridge, done, "delivered")
    fake_github.set_down(True)
    queued = send(bridge, flat(6))
    time.sleep(1.5)
    assert "would prune 1 " in bridge.cli("events", "prune", "--dry-run")
    assert bridge.cli("events", "show", done)  # a dry run deletes nothing
    assert "pruned 1 " in bridge.cli("events", "prune")
    assert bridge.cli("events", "show", done, check=False) == ""  # gone, with all it held
    assert json.loads(bridge.cli("events", "show", queued))["deliveries"][0]["state"] in (
        "queued",
        "in_flight",
    )


def wait_for_state_any(bridge, event_id, state):
    """On any store: through the CLI, as an operator would look."""

    def reached() -> bool:
        deliveries = json.loads(bridge.cli("events", "show", event_id))["deliveries"]
        return all(d["state"] == state for d in deliveries)

    wait_until(reached, what=f"{event_id} {state}")


def test_without_actions_read_the_search_ends_unknown_and_says_which_permission(start_bridge):
    with FakeGitHub(tokens=[GH_TOKEN], actions_read=False) as gh:
        gh.add_workflow("acme/churn-svc", types=["DEPLOY_MODEL"], run_name=RUN_NAME)
        bridge = start_bridge(github={"api_url": gh.url}, runs={"min_interval": "0.3s"})
        event_id = send(bridge, flat(8))
        wait_until(lambda: "actions=read" in bridge.log(), what="the warning")
        event = bridge.wait_for_state(event_id, "delivered")
        assert wait_until(lambda: _watch(bridge, event_id) == "unknown", what="unknown")
        assert event.deliveries[0].state == "delivered"  # the dispatch itself went through


def _watch(bridge, event_id):
    return bridge.event(event_id).deliveries[0].watch


def _searches(bridge, event_ids):
    """Each event's dispatch: (its search's state, [(run id, run state, conclusion)])."""
    found = {}
    for event_id in event_ids:
        (d,) = [d for d in bridge.event(event_id).deliveries if d.kind != "notify"]
        found[event_id] = (d.watch, [(r.run_id, r.state, r.conclusion) for r in d.runs])
    return found


def test_a_burst_to_one_repository_has_every_run_followed_and_no_false_no_run(
    start_bridge, fake_github
):
    fake_github.add_workflow(
        "acme/churn-svc", types=["DEPLOY_MODEL"], run_name=RUN_NAME, queued_for=0.1, runs_for=0.2
    )
    # The runs list answers only once every dispatch was made: then 150 runs are listed,
    # more than one page.
    fake_github.set_down(True, to="runs")
    runs = {"no_run_after": "2s", "min_interval": "0.3s", "max_requests_per_hour": 100_000}
    bridge = start_bridge(runs=runs)
    ids = [send(bridge, flat(1000 + i)) for i in range(150)]
    fake_github.wait_for_event_ids(ids, timeout=60)
    fake_github.set_down(False, to="runs")

    def settled():
        found = _searches(bridge, ids)
        done = all(
            w != "searching" and all(r[1] != "following" for r in rs) for w, rs in found.values()
        )
        return found if done else None

    found = wait_until(settled, timeout=120, what="every search and run to settle")
    assert [e for e, (w, _) in found.items() if w != "done"] == []  # none is "no_run"
    by_run = {fake.id: fake.display_title for fake in fake_github.runs}
    for event_id, (_, rs) in found.items():
        ((run_id, state, conclusion),) = rs
        assert event_id in by_run[run_id] and (state, conclusion) == ("concluded", "success")
    assert "no run started" not in bridge.log()


GHES_ROUTE = {
    "name": "evaluate",
    "when": {"event_type": "LINK_ARTIFACT"},
    "workflow": {"repository": "acme/churn-svc", "file": "evaluate.yml", "ref": "main"},
}
DEPLOY_ROUTE = {
    "name": "deploy",
    "when": {"event_type": "ADD_ARTIFACT_ALIAS"},
    "dispatch": {
        "repository": "acme/churn-svc",
        "event_type": "DEPLOY_MODEL",
        "client_payload": {"model": "${artifact_version_string}"},
    },
}
EVALUATE = ".github/workflows/evaluate.yml"


def _link(n: int) -> bytes:
    body = {"event_type": "LINK_ARTIFACT", "artifact_version_string": f"a/b/c:v{n}"}
    return json.dumps(body).encode()


def _ghes(start_bridge, gh):
    """A bridge on a server without run details (``gh``), with both kinds of route."""
    gh.add_workflow("acme/churn-svc", EVALUATE, on=("workflow_dispatch",), runs_for=0.3)
    gh.add_workflow("acme/churn-svc", types=["DEPLOY_MODEL"], run_name=RUN_NAME, runs_for=0.3)
    return start_bridge(
        github={"api_url": gh.url},
        routes=[GHES_ROUTE, DEPLOY_ROUTE],
        runs={"min_interval": "0.3s", "no_run_after": "3s"},
    )


def _settled_runs(bridge, event_id):
    def settled():
        ((watch, rs),) = _searches(bridge, [event_id]).values()
        return (watch, [r[0] for r in rs]) if watch not in (None, "searching") else None

    return wait_until(settled, what=f"the search for {event_id}'s run to end")


def test_without_run_details_a_manual_run_from_before_the_dispatch_is_not_attributed(start_bridge):
    with FakeGitHub(tokens=[GH_TOKEN], run_details=False) as gh:
        bridge = _ghes(start_bridge, gh)
        manual = gh.add_run("acme/churn-svc", EVALUATE, created_at=time.time() - 30)
        event_id = send(bridge, _link(1))
        watch, runs = _settled_runs(bridge, event_id)
        (own,) = [r.id for r in gh.runs if r.actor != "a-developer"]
        assert (watch, runs) == ("done", [own]) and manual.id not in runs


def test_without_run_details_two_dispatches_5s_apart_get_two_runs_in_order(start_bridge):
    with FakeGitHub(tokens=[GH_TOKEN], run_details=False) as gh:
        bridge = _ghes(start_bridge, gh)
        first = send(bridge, _link(1))
        gh.wait_for_runs(1)
        time.sleep(5)
        second = send(bridge, _link(2))
        started = [r.id for r in gh.wait_for_runs(2)]
        assert [_settled_runs(bridge, e) for e in (first, second)] == [
            ("done", [started[0]]),
            ("done", [started[1]]),
        ]


def test_without_run_details_a_run_by_another_actor_is_not_attributed(start_bridge):
    # GitHub's clock 1.5 s ahead: its run of the dispatch shows a later time than the
    # developer's run made just before the dispatch, which comes first by time alone
    with FakeGitHub(tokens=[GH_TOKEN], run_details=False, clock=lambda: time.time() + 1.5) as gh:
        bridge = _ghes(start_bridge, gh)
        # a repository dispatch's run, found by its event id, shows who the bridge is
        deployed = send(bridge, flat(1))
        assert _settled_runs(bridge, deployed)[0] == "done"
        manual = gh.add_run("acme/churn-svc", EVALUATE, created_at=time.time())
        event_id = send(bridge, _link(1))
        watch, runs = _settled_runs(bridge, event_id)
        own = [r.id for r in gh.runs if r.event == "workflow_dispatch" and r.id != manual.id]
        assert (watch, runs) == ("done", own)
