"""The fake GitHub's workflows and runs: dispatches start runs, runs move by the clock,
workflow dispatches are checked as GitHub checks them, and run reads answer conditionally."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
import requests
from urllib3.util import SKIP_HEADER

from tests.fakes import FakeGitHub, Workflow
from tests.fakes.helpers import HEADERS, OTHER, REPO, TOKEN, FakeClock, message
from tests.fakes.keys import new_key_pair

RUN_NAME = (
    "Deploy ${{ github.event.client_payload.artifact_version_string }}"
    " (${{ github.event.client_payload.bridge_event_id }})"
)


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeGitHub]:
    with FakeGitHub(repositories=[REPO, OTHER], clock=clock) as gh:
        yield gh


def dispatch(
    fake: FakeGitHub,
    event_type: str = "DEPLOY_MODEL",
    payload: Mapping[str, Any] | None = None,
    repo: str = REPO,
    *,
    headers: Mapping[str, str | None] | None = None,
) -> requests.Response:
    body = {"event_type": event_type, "client_payload": dict(payload or {})}
    return requests.post(
        f"{fake.url}/repos/{repo}/dispatches",
        json=body,
        headers={**HEADERS, **(headers or {})},
        timeout=5,
    )


def workflow_dispatch(
    fake: FakeGitHub,
    workflow: str | int = "deploy.yml",
    body: Any = None,
    repo: str = REPO,
    *,
    headers: Mapping[str, str | None] | None = None,
) -> requests.Response:
    return requests.post(
        f"{fake.url}/repos/{repo}/actions/workflows/{workflow}/dispatches",
        json={"ref": "main"} if body is None else body,
        headers={**HEADERS, **(headers or {})},
        timeout=5,
    )


def get(
    fake: FakeGitHub,
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str | None] | None = None,
) -> requests.Response:
    return requests.get(
        f"{fake.url}/repos/{REPO}/actions/{path}",
        params=params,
        headers={**HEADERS, **(headers or {})},
        timeout=5,
    )


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def listed(response: requests.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()["workflow_runs"]]


def dispatchable(fake: FakeGitHub, **kwargs: Any) -> Workflow:
    """A workflow on workflow_dispatch only."""
    return fake.add_workflow(REPO, on="workflow_dispatch", **kwargs)


# -- runs started by repository dispatches ---------------------------------------------------


def test_a_repository_dispatch_starts_a_run_of_a_listening_workflow(
    fake: FakeGitHub, clock: FakeClock
) -> None:
    workflow = fake.add_workflow(REPO, types=["DEPLOY_MODEL"], run_name=RUN_NAME)
    payload = {"artifact_version_string": "acme/reg/model:v3", "bridge_event_id": "ev-1"}

    assert dispatch(fake, payload=payload).status_code == 204

    [run] = fake.wait_for_runs(1)
    assert isinstance(workflow.id, int)
    assert (run.workflow_id, run.path, run.name) == (
        workflow.id,
        ".github/workflows/deploy.yml",
        "Deploy",
    )
    assert run.display_title == "Deploy acme/reg/model:v3 (ev-1)"
    assert (run.event, run.head_branch, run.run_number) == ("repository_dispatch", "main", 1)
    assert (run.status, run.conclusion, run.created_at) == ("queued", None, clock.now)
    assert run.client_payload == payload
    assert run.inputs is None
    assert fake.dispatches[0].run_ids == (run.id,)
    assert run.html_url == f"{fake.url}/{REPO}/actions/runs/{run.id}"


def test_only_workflows_listening_to_the_event_type_start(fake: FakeGitHub) -> None:
    every = fake.add_workflow(REPO, ".github/workflows/every.yml", name="Every")
    typed = fake.add_workflow(REPO, ".github/workflows/typed.yml", types=["DEPLOY_MODEL"])
    fake.add_workflow(REPO, ".github/workflows/manual.yml", on="workflow_dispatch")
    fake.add_workflow(OTHER, ".github/workflows/elsewhere.yml")

    dispatch(fake, "DEPLOY_MODEL")
    dispatch(fake, "SOMETHING_ELSE")

    assert [(r.workflow_id, r.display_title) for r in fake.runs] == [
        (every.id, "Every"),  # no run-name: the workflow's name
        (typed.id, "Deploy"),
        (every.id, "Every"),
    ]
    assert [r.run_number for r in fake.runs] == [1, 1, 2]
    assert [len(d.run_ids) for d in fake.dispatches] == [2, 1]
    assert fake.add_workflow(REPO, ".github/workflows/late.yml").id not in {
        r.workflow_id for r in fake.runs
    }


def test_a_dispatch_nobody_listens_to_starts_nothing(fake: FakeGitHub) -> None:
    assert dispatch(fake).status_code == 204
    assert fake.runs == []
    assert fake.dispatches[0].run_ids == ()


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${{ github.event.action }}", "DEPLOY_MODEL"),
        ("${{github.event.client_payload.n}}/${{ github.event.client_payload.flag }}", "3/true"),
        ("${{ github.event.client_payload.missing }}!", "!"),
        ("${{ github.event.client_payload.nested.k }}", "v"),
        ("${{ github.event.client_payload.nested }}", '{"k": "v"}'),
        ("${{ github.event_name }} on ${{ github.ref_name }}", "repository_dispatch on main"),
        ("${{ format('{0}', github.event.action) }}", ""),
        ("plain", "plain"),
    ],
)
def test_run_name_renders_the_dispatch(fake: FakeGitHub, template: str, expected: str) -> None:
    fake.add_workflow(REPO, run_name=template)

    dispatch(fake, payload={"n": 3, "flag": True, "nested": {"k": "v"}})

    assert fake.runs[0].display_title == expected


# -- a run's life by the clock ---------------------------------------------------------------


def test_a_run_moves_by_the_clock(fake: FakeGitHub, clock: FakeClock) -> None:
    fake.add_workflow(REPO, queued_for=2, runs_for=5, conclusion="failure")
    dispatch(fake)
    run_id = fake.runs[0].id
    created = clock.now

    def seen() -> tuple[str, Any, str, str, str]:
        run = get(fake, f"runs/{run_id}").json()
        status = (run["status"], run["conclusion"], run["created_at"], run["updated_at"])
        return (*status, run["run_started_at"])

    queued = seen()
    clock.advance(1.9)
    still_queued = seen()
    clock.advance(0.1)
    started = seen()
    clock.advance(5)
    completed = seen()
    clock.advance(3600)

    assert queued == ("queued", None, iso(created), iso(created), iso(created))
    assert still_queued == queued
    assert started == ("in_progress", None, iso(created), iso(created + 2), iso(created))
    assert completed == ("completed", "failure", iso(created), iso(created + 7), iso(created))
    assert seen() == completed
    assert fake.run(run_id).updated_at == created + 7


def test_the_real_clock_moves_runs_too() -> None:
    with FakeGitHub() as fake:
        fake.add_workflow(REPO, queued_for=0.05, runs_for=0.05)
        dispatch(fake)
        deadline = time.monotonic() + 5
        while fake.runs[0].status != "completed" and time.monotonic() < deadline:
            time.sleep(0.01)

        [run] = fake.runs
        assert (run.status, run.conclusion) == ("completed", "success")
        assert run.updated_at == pytest.approx(run.created_at + 0.1)


def test_steps_script_successive_runs_the_last_repeating(
    fake: FakeGitHub, clock: FakeClock
) -> None:
    fake.add_workflow(REPO, steps=[(0, 1, "failure"), (1, 1, "success")])

    for _ in range(3):
        dispatch(fake)
    clock.advance(1)
    mid = [(r.status, r.conclusion) for r in fake.runs]
    clock.advance(1)

    assert mid == [("completed", "failure"), ("in_progress", None), ("in_progress", None)]
    assert [r.conclusion for r in fake.runs] == ["failure", "success", "success"]


def test_a_run_without_an_end_waits_for_finish_run(fake: FakeGitHub, clock: FakeClock) -> None:
    fake.add_workflow(REPO, queued_for=0, runs_for=None)
    dispatch(fake)
    run_id = fake.runs[0].id
    clock.advance(86_400)
    assert fake.run(run_id).status == "in_progress"

    clock.advance(1)
    finished = fake.finish_run(run_id, "success")
    clock.advance(10)

    assert (finished.status, finished.conclusion) == ("completed", "success")
    assert fake.run(run_id).updated_at == finished.updated_at == clock.now - 10
    with pytest.raises(ValueError, match="already completed"):
        fake.finish_run(run_id)
    with pytest.raises(KeyError):
        fake.run(1)


def test_finish_run_cancels_a_queued_run(fake: FakeGitHub, clock: FakeClock) -> None:
    fake.add_workflow(REPO, queued_for=10, runs_for=10)
    dispatch(fake)
    run_id = fake.runs[0].id

    clock.advance(3)
    fake.finish_run(run_id)
    clock.advance(30)

    run = fake.run(run_id)
    assert (run.status, run.conclusion, run.updated_at) == (
        "completed",
        "cancelled",
        clock.now - 30,
    )


def test_wait_for_runs_says_how_many_it_saw(fake: FakeGitHub) -> None:
    with pytest.raises(AssertionError, match=r"expected 1 run.*got 0"):
        fake.wait_for_runs(1, timeout=0.01)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"on": "push"}, "on:"),
        ({"on": ()}, "on:"),
        ({"on": "workflow_dispatch", "types": ["A"]}, "types:"),
        ({"inputs": {"a": {}}}, "inputs:"),
        ({"conclusion": "great"}, "conclusion"),
        ({"runs_for": -1}, "runs_for"),
        ({"steps": []}, "steps"),
        ({"refs": ()}, "refs"),
        ({"path": "deploy.yml"}, "path"),
        (
            {"on": "workflow_dispatch", "inputs": {"env": {"type": "choice"}}},
            "a choice needs options",
        ),
    ],
)
def test_add_workflow_refuses_what_github_would_not_run(
    fake: FakeGitHub, kwargs: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        fake.add_workflow(REPO, **kwargs)


def test_add_workflow_refuses_an_unknown_repository_or_a_second_file_of_a_path(
    fake: FakeGitHub,
) -> None:
    fake.add_workflow(REPO)
    with pytest.raises(ValueError, match="already has"):
        fake.add_workflow(REPO.upper())
    with pytest.raises(ValueError, match="not one of"):
        fake.add_workflow("acme/missing")


# -- workflow dispatch -----------------------------------------------------------------------


def test_a_workflow_dispatch_starts_a_run_and_answers_204(fake: FakeGitHub) -> None:
    workflow = dispatchable(fake, inputs={"model": {"required": True}}, refs=["main", "dev"])

    response = workflow_dispatch(fake, body={"ref": "dev", "inputs": {"model": "m"}})

    assert (response.status_code, response.content) == (204, b"")
    [run] = fake.runs
    assert (run.event, run.head_branch, run.workflow_id) == (
        "workflow_dispatch",
        "dev",
        workflow.id,
    )
    assert (run.display_title, run.inputs, run.client_payload) == ("Deploy", {"model": "m"}, None)
    [seen] = fake.workflow_dispatches
    assert (seen.repo, seen.workflow_id, seen.ref, seen.inputs) == (
        REPO,
        workflow.id,
        "dev",
        {"model": "m"},
    )
    assert (seen.run_id, seen.return_run_details, seen.token) == (run.id, False, TOKEN)
    assert json.loads(seen.body) == {"ref": "dev", "inputs": {"model": "m"}}
    assert seen.headers["user-agent"] == HEADERS["User-Agent"]
    assert fake.dispatches == []


def test_return_run_details_answers_200_with_the_run(fake: FakeGitHub) -> None:
    workflow = dispatchable(fake)

    response = workflow_dispatch(fake, workflow.id, {"ref": "main", "return_run_details": True})

    assert response.status_code == 200
    details = response.json()
    run_id = details["workflow_run_id"]
    assert details == {
        "workflow_run_id": run_id,
        "run_url": f"{fake.url}/repos/{REPO}/actions/runs/{run_id}",
        "html_url": f"{fake.url}/{REPO}/actions/runs/{run_id}",
    }
    assert run_id > 2**32  # as GitHub's run ids are
    assert requests.get(details["run_url"], headers=HEADERS, timeout=5).json()["id"] == run_id
    assert fake.workflow_dispatches[0].return_run_details is True


def test_return_run_details_false_answers_204(fake: FakeGitHub) -> None:
    dispatchable(fake)

    assert workflow_dispatch(
        fake, body={"ref": "main", "return_run_details": False}
    ).status_code == (204)


def test_run_name_renders_the_inputs_with_their_defaults(fake: FakeGitHub) -> None:
    dispatchable(
        fake,
        inputs={
            "model": {"required": True},
            "env": {"type": "choice", "options": ["staging", "prod"], "default": "prod"},
            "dry": {"type": "boolean", "default": False},
        },
        run_name="${{ inputs.model }} to ${{ github.event.inputs.env }} dry=${{ inputs.dry }}"
        " on ${{ github.ref_name }}",
    )

    workflow_dispatch(fake, body={"ref": "refs/heads/main", "inputs": {"model": "m:v1"}})

    [run] = fake.runs
    assert run.display_title == "m:v1 to prod dry=false on main"
    assert run.inputs == {"model": "m:v1", "env": "prod", "dry": False}
    assert fake.workflow_dispatches[0].inputs == {"model": "m:v1"}


def test_a_workflow_on_both_triggers_counts_its_runs_together(fake: FakeGitHub) -> None:
    fake.add_workflow(REPO, on=("repository_dispatch", "workflow_dispatch"))

    dispatch(fake)
    workflow_dispatch(fake)

    assert [(r.event, r.run_number) for r in fake.runs] == [
        ("repository_dispatch", 1),
        ("workflow_dispatch", 2),
    ]


def test_a_tag_ref_is_a_head_branch_too(fake: FakeGitHub) -> None:
    dispatchable(fake, refs=["main", "v1.0"])

    assert workflow_dispatch(fake, body={"ref": "refs/tags/v1.0"}).status_code == 204
    assert fake.runs[0].head_branch == "v1.0"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, '"ref" wasn\'t supplied.'),
        ({"ref": 1}, "is not a string."),
        ({"ref": "dev"}, "No ref found for: dev"),
        ({"ref": "main", "inputs": ["a"]}, "is not an object."),
        ({"ref": "main", "inputs": {"model": "m", "x": "1"}}, 'Unexpected inputs provided: ["x"]'),
        ({"ref": "main"}, "Required input 'model' not provided"),
        ({"ref": "main", "inputs": {"model": {"a": 1}}}, "is not a string, number or boolean."),
        ({"ref": "main", "inputs": {"model": None}}, "is not a string, number or boolean."),
        (
            {"ref": "main", "inputs": {"model": "m", "env": "qa"}},
            "Provided value 'qa' for input 'env' not in the list of allowed values",
        ),
        ({"ref": "main", "inputs": {"model": "m", "dry": "yes"}}, "is not a boolean"),
        ({"ref": "main", "inputs": {"model": "m", "n": "many"}}, "is not a number"),
        ({"ref": "main", "return_run_details": "yes"}, "is not a boolean."),
        ({"ref": "main", "client_payload": {}}, '"client_payload" is not a permitted key.'),
        (["main"], "is not an object."),
    ],
)
def test_an_invalid_workflow_dispatch_is_422(fake: FakeGitHub, body: Any, expected: str) -> None:
    inputs = {
        "model": {"required": True},
        "env": {"type": "choice", "options": ["staging", "prod"]},
        "dry": {"type": "boolean"},
        "n": {"type": "number"},
    }
    dispatchable(fake, inputs=inputs)

    response = workflow_dispatch(fake, body=body)

    assert response.status_code == 422
    assert expected in message(response)
    assert fake.runs == [] and fake.workflow_dispatches == []


def test_typed_inputs_take_their_values_as_json_or_as_text(fake: FakeGitHub) -> None:
    inputs = {"dry": {"type": "boolean"}, "n": {"type": "number"}, "s": {}}
    dispatchable(fake, inputs=inputs)

    for values in ({"dry": True, "n": 2.5, "s": 1}, {"dry": "false", "n": "3", "s": False}):
        assert workflow_dispatch(fake, body={"ref": "main", "inputs": values}).status_code == 204


def test_the_input_limits(fake: FakeGitHub) -> None:
    dispatchable(fake, inputs={f"k{i}": {} for i in range(25)})
    twenty_five = {f"k{i}": "v" for i in range(25)}
    twenty_six = twenty_five | {"k25": "v"}
    # The fake measures the inputs as JSON text: '{"k0": "' and '"}' are 10 characters,
    # so this is exactly 65,535 characters (and twice as many bytes).
    largest = {"k0": "é" * (65_535 - 10)}

    assert workflow_dispatch(fake, body={"ref": "main", "inputs": twenty_five}).status_code == 204
    assert workflow_dispatch(fake, body={"ref": "main", "inputs": largest}).status_code == 204
    too_many = workflow_dispatch(fake, body={"ref": "main", "inputs": twenty_six})
    too_large = workflow_dispatch(fake, body={"ref": "main", "inputs": {"k0": "x" * 65_526}})
    assert (too_many.status_code, message(too_many)) == (
        422,
        "No more than 25 properties are allowed; 26 were supplied.",
    )
    assert (too_large.status_code, message(too_large)) == (422, "inputs are too large.")


def test_an_unknown_workflow_is_404_and_one_without_the_trigger_422(fake: FakeGitHub) -> None:
    repository_only = fake.add_workflow(REPO)

    unknown = workflow_dispatch(fake, "missing.yml")
    by_number = workflow_dispatch(fake, repository_only.id + 1000)
    other_repo = workflow_dispatch(fake, repository_only.id, repo=OTHER)
    no_trigger = workflow_dispatch(fake, repository_only.id)

    for response in (unknown, by_number, other_repo):
        assert (response.status_code, message(response)) == (404, "Not Found")
    assert (no_trigger.status_code, message(no_trigger)) == (
        422,
        "Workflow does not have 'workflow_dispatch' trigger",
    )


@pytest.mark.parametrize(
    ("headers", "status", "expected"),
    [
        ({"Authorization": None}, 401, "Requires authentication"),
        ({"Authorization": "Bearer nope"}, 401, "Bad credentials"),
        ({"User-Agent": SKIP_HEADER}, 403, "Request forbidden by administrative rules."),
        ({"Accept": "application/json"}, 400, "The Accept header"),
        ({"X-GitHub-Api-Version": None}, 400, "The X-GitHub-Api-Version header"),
        ({"Content-Type": "text/plain"}, 400, "The Content-Type header"),
    ],
)
def test_a_workflow_dispatch_checks_headers_as_a_dispatch_does(
    fake: FakeGitHub, headers: dict[str, str | None], status: int, expected: str
) -> None:
    dispatchable(fake)

    response = workflow_dispatch(fake, headers=headers)

    assert response.status_code == status
    assert message(response).startswith(expected)


def test_a_workflow_dispatch_to_a_hidden_repository_is_404(fake: FakeGitHub) -> None:
    assert workflow_dispatch(fake, repo="acme/missing").status_code == 404


def test_github_enterprise_server_refuses_return_run_details() -> None:
    with FakeGitHub(run_details=False) as fake:
        dispatchable(fake)

        refused = workflow_dispatch(fake, body={"ref": "main", "return_run_details": True})
        also_false = workflow_dispatch(fake, body={"ref": "main", "return_run_details": False})
        plain = workflow_dispatch(fake, body={"ref": "main"})

        assert (refused.status_code, also_false.status_code, plain.status_code) == (422, 422, 204)
        assert message(refused) == (
            'Invalid request.\n\n"return_run_details" is not a permitted key.'
        )
        assert len(fake.runs) == 1


def test_injected_failures_strike_workflow_dispatches_too(fake: FakeGitHub) -> None:
    dispatchable(fake)
    fake.fail_next(502)
    fake.fail_next(500, to="runs")

    assert workflow_dispatch(fake).status_code == 502
    assert workflow_dispatch(fake).status_code == 204
    assert get(fake, "runs").status_code == 500
    assert dispatch(fake).status_code == 204


# -- permissions -----------------------------------------------------------------------------


def test_without_actions_write_a_workflow_dispatch_is_403() -> None:
    with FakeGitHub(actions_write=False) as fake:
        dispatchable(fake)

        response = workflow_dispatch(fake)

        assert response.status_code == 403
        assert message(response) == "Resource not accessible by integration"
        assert response.headers["X-Accepted-GitHub-Permissions"] == "actions=write"
        assert get(fake, "runs").status_code == 200  # reading needs only actions=read
        assert dispatch(fake).status_code == 204  # contents=write


def test_without_actions_read_run_reads_are_403() -> None:
    with FakeGitHub(actions_read=False) as fake:
        fake.add_workflow(REPO)
        dispatch(fake)

        for path in ("runs", f"runs/{fake.runs[0].id}", "workflows/deploy.yml/runs"):
            response = get(fake, path)
            assert response.status_code == 403, path
            assert message(response) == "Resource not accessible by integration"
            assert response.headers["X-Accepted-GitHub-Permissions"] == "actions=read"
        assert fake.run_reads.failed == 3


def test_without_contents_write_a_repository_dispatch_is_403() -> None:
    with FakeGitHub(contents_write=False) as fake:
        response = dispatch(fake)

        assert response.status_code == 403
        assert response.headers["X-Accepted-GitHub-Permissions"] == "contents=write"
        assert fake.dispatches == []


def test_permissions_per_token() -> None:
    with FakeGitHub(tokens=["reader", "writer"], actions_write=False) as fake:
        dispatchable(fake)
        fake.set_permissions("writer", actions_write=True)
        fake.set_permissions("reader", actions_read=False)
        fake.set_permissions("reader", contents_write=False)  # adds to what was set

        as_reader = {"Authorization": "Bearer reader"}
        as_writer = {"Authorization": "Bearer writer"}
        assert workflow_dispatch(fake, headers=as_writer).status_code == 204
        assert workflow_dispatch(fake, headers=as_reader).status_code == 403
        assert get(fake, "runs", headers=as_writer).status_code == 200
        assert get(fake, "runs", headers=as_reader).status_code == 403
        assert dispatch(fake, headers=as_reader).status_code == 403
        assert dispatch(fake, headers=as_writer).status_code == 204


def test_a_minted_token_reports_the_permissions_the_fake_grants() -> None:
    key = new_key_pair()
    with FakeGitHub(
        app_id=1,
        app_public_key_pem=key.public_pem,
        installations={REPO: 7},
        actions_write=False,
    ) as fake:
        now = int(time.time())
        token = jwt.encode(
            {"iat": now - 60, "exp": now + 300, "iss": "1"}, key.private_pem, "RS256"
        )
        response = requests.post(
            f"{fake.url}/app/installations/7/access_tokens",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )

        assert response.json()["permissions"] == {
            "contents": "write",
            "actions": "read",
            "metadata": "read",
        }


# -- listing and reading runs ----------------------------------------------------------------


def test_runs_are_listed_newest_first(fake: FakeGitHub, clock: FakeClock) -> None:
    fake.add_workflow(REPO, run_name="${{ github.event.client_payload.n }}")
    for n in range(3):
        dispatch(fake, payload={"n": n})
        clock.advance(1)
    dispatch(fake, repo=OTHER)

    response = get(fake, "runs")

    body = response.json()
    assert body["total_count"] == 3
    assert [r["display_title"] for r in body["workflow_runs"]] == ["2", "1", "0"]
    first = body["workflow_runs"][0]
    assert set(first) >= {
        "id",
        "name",
        "display_title",
        "event",
        "status",
        "conclusion",
        "html_url",
        "run_number",
        "run_attempt",
        "workflow_id",
        "path",
        "head_branch",
        "created_at",
        "updated_at",
        "run_started_at",
    }
    assert (first["run_attempt"], first["run_number"]) == (1, 3)
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Link" not in response.headers


def test_a_run_someone_else_starts_is_listed_with_its_actor(
    fake: FakeGitHub, clock: FakeClock
) -> None:
    fake.add_workflow(REPO, on=("repository_dispatch", "workflow_dispatch"))
    dispatch(fake)
    manual = fake.add_run(REPO, ref="main", actor="a-developer", created_at=clock() - 30)
    pushed = fake.add_run(REPO, event="repository_dispatch", actor="other-app[bot]")

    runs = {r["id"]: r for r in get(fake, "runs").json()["workflow_runs"]}

    ours = next(r for r in fake.runs if r.id not in (manual.id, pushed.id))
    assert [r["triggering_actor"]["login"] for r in runs.values()] == [
        "other-app[bot]",
        "wandb-bridge-bot",
        "a-developer",
    ]
    assert runs[ours.id]["actor"] == {"login": "wandb-bridge-bot", "type": "User"}
    assert runs[pushed.id]["actor"]["type"] == "Bot"
    assert runs[manual.id]["event"] == "workflow_dispatch"
    assert runs[manual.id]["created_at"] == iso(clock() - 30)
    assert listed(get(fake, "runs", {"created": f">={iso(clock() - 1)}"})) == [pushed.id, ours.id]


def test_runs_are_paged_a_hundred_at_most_with_githubs_link_header(fake: FakeGitHub) -> None:
    fake.add_workflow(REPO)
    for _ in range(150):
        dispatch(fake)

    first = get(fake, "runs", {"per_page": 100})
    second = get(fake, "runs", {"per_page": 100, "page": 2})

    assert first.json()["total_count"] == second.json()["total_count"] == 150
    assert len(listed(first)) == 100 and len(listed(second)) == 50
    assert set(listed(first)) | set(listed(second)) == {r.id for r in fake.runs}
    rels = {link["rel"] for link in requests.utils.parse_header_links(first.headers["Link"])}
    assert rels == {"next", "last"}
    rels = {link["rel"] for link in requests.utils.parse_header_links(second.headers["Link"])}
    assert rels == {"prev", "first"}


def test_runs_in_the_same_second_are_newest_first_by_id(fake: FakeGitHub) -> None:
    fake.add_workflow(REPO)
    dispatch(fake)
    dispatch(fake)

    assert listed(get(fake, "runs")) == sorted((r.id for r in fake.runs), reverse=True)


def test_the_list_filters(fake: FakeGitHub, clock: FakeClock) -> None:
    fake.add_workflow(REPO, on=("repository_dispatch", "workflow_dispatch"), refs=["main", "dev"])
    fake.add_workflow(REPO, ".github/workflows/slow.yml", queued_for=100, runs_for=100)
    dispatch(fake)  # two runs: deploy and slow
    clock.advance(10)
    start = clock.now
    workflow_dispatch(fake, body={"ref": "dev"})
    clock.advance(1)
    [old_deploy, old_slow, new_dev] = [r.id for r in fake.runs]

    def ids(**params: Any) -> list[int]:
        return listed(get(fake, "runs", params))

    assert ids(event="repository_dispatch") == [old_slow, old_deploy]
    assert ids(event="workflow_dispatch") == [new_dev]
    assert ids(branch="dev") == [new_dev]
    assert ids(branch="main") == [old_slow, old_deploy]
    assert ids(status="completed") == [new_dev, old_deploy]
    assert ids(status="success") == [new_dev, old_deploy]  # a conclusion may be asked as status
    assert ids(status="queued") == [old_slow]
    assert ids(status="in_progress") == []
    assert ids(status="failure") == []
    assert ids(created=f">={iso(start)}") == [new_dev]
    assert ids(created=f">={iso(start - 1)}") == [new_dev]
    assert ids(created=f">{iso(start)}") == []
    assert ids(created=f"<{iso(start)}") == [old_slow, old_deploy]
    assert ids(created=f"<={iso(start)}") == [new_dev, old_slow, old_deploy]
    assert ids(created=f"{iso(start - 10)}..{iso(start - 1)}") == [old_slow, old_deploy]
    assert ids(created=f"{iso(start)}..*") == [new_dev]
    assert ids(created=iso(start)) == [new_dev]
    day = iso(start)[:10]
    assert set(ids(created=day)) == {r.id for r in fake.runs if iso(r.created_at)[:10] == day}
    offset = datetime.fromtimestamp(start, UTC).astimezone().isoformat()
    assert ids(created=f">={offset}") == [new_dev]
    assert ids(event="repository_dispatch", status="queued", created=f"<{iso(start)}") == [old_slow]
    assert ids(event="workflow_dispatch", status="queued") == []
    assert ids(workflow_id="ignored", exclude_pull_requests="true") == [
        new_dev,
        old_slow,
        old_deploy,
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "done"}, "status must be one of"),
        ({"created": "yesterday"}, "created: cannot read"),
        ({"created": ">=2026-13-01"}, "created: cannot read"),
        ({"per_page": "many"}, "per_page must be an integer"),
    ],
)
def test_a_filter_the_fake_cannot_read_is_422(
    fake: FakeGitHub, params: dict[str, str], expected: str
) -> None:
    response = get(fake, "runs", params)

    assert response.status_code == 422
    assert expected in message(response)


def test_the_list_pages(fake: FakeGitHub) -> None:
    fake.add_workflow(REPO)
    for _ in range(105):
        dispatch(fake)
    newest_first = [r.id for r in reversed(fake.runs)]

    default = get(fake, "runs")
    most = get(fake, "runs", {"per_page": 500})
    second = get(fake, "runs", {"per_page": 100, "page": 2})
    beyond = get(fake, "runs", {"page": 9})

    assert default.json()["total_count"] == 105
    assert listed(default) == newest_first[:30]
    assert listed(most) == newest_first[:100]
    assert listed(second) == newest_first[100:]
    assert listed(beyond) == [] and beyond.json()["total_count"] == 105
    links = requests.utils.parse_header_links(most.headers["Link"])
    assert {link["rel"]: link["url"] for link in links} == {
        "next": f"{fake.url}/repos/{REPO}/actions/runs?per_page=500&page=2",
        "last": f"{fake.url}/repos/{REPO}/actions/runs?per_page=500&page=2",
    }
    rels = {link["rel"] for link in requests.utils.parse_header_links(second.headers["Link"])}
    assert rels == {"prev", "first"}


def test_a_workflows_runs(fake: FakeGitHub) -> None:
    deploy = fake.add_workflow(REPO)
    fake.add_workflow(REPO, ".github/workflows/notify.yml")
    dispatch(fake)
    [deploy_run] = [r.id for r in fake.runs if r.workflow_id == deploy.id]

    by_file = get(fake, "workflows/deploy.yml/runs")
    by_id = get(fake, f"workflows/{deploy.id}/runs")
    unknown = get(fake, "workflows/missing.yml/runs")

    assert listed(by_file) == listed(by_id) == [deploy_run]
    assert by_file.json()["total_count"] == 1
    assert (unknown.status_code, message(unknown)) == (404, "Not Found")


def test_one_run_and_its_404s(fake: FakeGitHub) -> None:
    fake.add_workflow(REPO)
    dispatch(fake)
    run = fake.runs[0]

    found = get(fake, f"runs/{run.id}")
    unknown = get(fake, f"runs/{run.id + 1}")
    elsewhere = requests.get(
        f"{fake.url}/repos/{OTHER}/actions/runs/{run.id}", headers=HEADERS, timeout=5
    )
    not_a_number = get(fake, "runs/latest")

    assert found.status_code == 200
    assert found.json()["id"] == run.id
    assert found.json()["display_title"] == run.display_title
    for response in (unknown, elsewhere, not_a_number):
        assert (response.status_code, message(response)) == (404, "Not Found")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Authorization": None}, 401),
        ({"User-Agent": SKIP_HEADER}, 403),
        ({"Accept": None}, 400),
        ({"X-GitHub-Api-Version": "2099-01-01"}, 400),
    ],
)
def test_run_reads_check_credentials_and_headers(
    fake: FakeGitHub, headers: dict[str, str | None], status: int
) -> None:
    assert get(fake, "runs", headers=headers).status_code == status


def test_a_run_read_needs_no_content_type_and_a_hidden_repository_is_404(
    fake: FakeGitHub,
) -> None:
    hidden = requests.get(f"{fake.url}/repos/acme/missing/actions/runs", headers=HEADERS, timeout=5)

    assert get(fake, "runs").status_code == 200
    assert hidden.status_code == 404


# -- conditional requests --------------------------------------------------------------------


def test_if_none_match_answers_304_free_of_the_rate_limit(fake: FakeGitHub) -> None:
    fake.add_workflow(REPO)
    dispatch(fake)
    run_id = fake.runs[0].id

    first = get(fake, f"runs/{run_id}")
    etag = first.headers["ETag"]
    again = get(fake, f"runs/{run_id}", headers={"If-None-Match": etag})
    strong = get(fake, f"runs/{run_id}", headers={"If-None-Match": etag.removeprefix("W/")})
    among = get(fake, f"runs/{run_id}", headers={"If-None-Match": f'"other", {etag}'})
    stale = get(fake, f"runs/{run_id}", headers={"If-None-Match": '"other"'})

    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", etag)
    assert (strong.status_code, among.status_code, stale.status_code) == (304, 304, 200)
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in (first, again, strong, stale)]
    assert remaining == [4998, 4998, 4998, 4997]  # the dispatch cost one, each 200 one
    assert stale.headers["ETag"] == etag
    assert fake.run_reads.ok == 2 and fake.run_reads.not_modified == 3
    assert fake.run_reads.charged == 2 and fake.run_reads.total == 5
    assert [s.status for s in fake.run_requests] == [200, 304, 304, 304, 200]


def test_the_etag_changes_with_the_run(fake: FakeGitHub, clock: FakeClock) -> None:
    fake.add_workflow(REPO, queued_for=1, runs_for=1)
    dispatch(fake)
    run_id = fake.runs[0].id
    etags = []
    list_etags = []
    for _ in range(4):
        etags.append(get(fake, f"runs/{run_id}").headers["ETag"])
        list_etags.append(get(fake, "runs").headers["ETag"])
        clock.advance(0.75)

    # at 0 queued, 0.75 queued, 1.5 in progress, 2.25 completed
    assert etags[0] == etags[1] != etags[2] != etags[3] != etags[0]
    assert list_etags[0] == list_etags[1] != list_etags[2] != list_etags[3]
    assert get(fake, "runs", headers={"If-None-Match": list_etags[3]}).status_code == 304
    dispatch(fake)  # a new run changes the list
    assert get(fake, "runs", headers={"If-None-Match": list_etags[3]}).status_code == 200


def test_following_one_run_costs_what_its_transitions_cost(
    fake: FakeGitHub, clock: FakeClock
) -> None:
    """A client polling every 10 s with If-None-Match pays one request per change."""
    fake.add_workflow(REPO, queued_for=30, runs_for=600)
    dispatch(fake)
    run_id = fake.runs[0].id
    etag: str | None = None
    statuses = []
    while True:
        response = get(fake, f"runs/{run_id}", headers={"If-None-Match": etag})
        if response.status_code == 200:
            etag = response.headers["ETag"]
            statuses.append(response.json()["status"])
            if statuses[-1] == "completed":
                break
        clock.advance(10)

    assert statuses == ["queued", "in_progress", "completed"]
    assert fake.run_reads.ok == 3
    # 64 reads, at 0, 10, ..., 630 s: three saw a change
    assert fake.run_reads.not_modified == 61


def test_injected_failures_strike_run_reads_on_their_own(fake: FakeGitHub) -> None:
    fake.add_workflow(REPO)
    fake.fail_next(500, to="runs")
    fake.rate_limit_next(time.time() + 60, to="runs")
    fake.secondary_rate_limit_next(7, to="runs")

    assert dispatch(fake).status_code == 204  # dispatches are not affected
    answers = [get(fake, "runs") for _ in range(4)]

    assert [r.status_code for r in answers] == [500, 403, 403, 200]
    assert answers[1].headers["x-ratelimit-remaining"] == "0"
    assert answers[2].headers["retry-after"] == "7"
    assert fake.run_reads.failed == 3 and fake.run_reads.ok == 1


def test_set_down_and_delay_for_run_reads(fake: FakeGitHub) -> None:
    fake.set_down(True, 502, to="runs")
    assert get(fake, "runs").status_code == 502
    assert dispatch(fake).status_code == 204
    fake.set_down(False, to="runs")

    fake.delay_next(0.3, to="runs")
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{fake.url}/repos/{REPO}/actions/runs", headers=HEADERS, timeout=0.05)
    assert get(fake, "runs").status_code == 200
