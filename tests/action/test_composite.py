"""``action.yml`` run step by step as the runner would, against the fake W&B."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.fake_wandb import FakeArtifact, FakeWandb
from tests.action.composite import job_environment, load_action, run_action
from tests.action.harness import API_KEY, Runner, md5_of, tree

INPUTS_PY = Path(__file__).resolve().parents[2] / "action" / "inputs.py"


@pytest.fixture(scope="module")
def tool_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One venv for the module's tests, as a runner's tool cache keeps it."""
    return tmp_path_factory.mktemp("tool-cache")


def test_every_input_goes_through_a_namespaced_variable() -> None:
    action = load_action()
    assert action["runs"]["using"] == "composite"
    fetch = next(s for s in action["runs"]["steps"] if s.get("id") == "fetch")
    for name in action["inputs"]:
        variable = "WANDB_ACTION_" + name.upper().replace("-", "_")
        assert fetch["env"][variable] == f"${{{{ inputs.{name} }}}}"
        assert f'"{variable.removeprefix("WANDB_ACTION_")}"' in INPUTS_PY.read_text(), variable
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step["name"]
        assert "uses" in step or step["shell"] == "bash"
        if "uses" in step:
            assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    for name, spec in action["outputs"].items():
        assert spec["value"] == f"${{{{ steps.fetch.outputs.{name} }}}}"


def test_the_steps_fetch_the_artifact(
    tmp_path: Path, tool_cache: Path, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    runner = Runner(tmp_path, fake.url)
    env = job_environment(tmp_path, tool_cache)
    run = run_action(
        {"api-key": API_KEY, "base-url": fake.url, "path": "model", "aliases": "production"},
        env,
        runner.workspace,
        tmp_path,
    )
    assert run.code == 0, run.stdout + run.stderr
    assert [s.name for s in run.steps] == [
        "Find Python",
        "Prepare the action's virtualenv",
        "Fetch the artifact",
    ]
    target = runner.workspace / "model"
    assert run.outputs["path"] == str(target)
    assert run.outputs["artifact"] == "acme/churn/churn-model:v0"
    assert run.outputs["description"] == "Churn classifier.\nTrained on Q3 data."
    assert run.outputs["skipped"] == "false"
    assert tree(target).keys() == {f.path for f in artifact.stored}
    assert md5_of(target / "model/weights.bin") == next(
        f.digest for f in artifact.files if f.path == "model/weights.bin"
    )
    fetch = run.steps[-1]
    assert fetch.stdout.startswith(f"::add-mask::{API_KEY}\n")
    assert API_KEY not in fetch.stdout.replace(f"::add-mask::{API_KEY}\n", "", 1)
    assert API_KEY not in run.stderr
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "### W&B artifact acme\\/churn\\/churn\\-model\\:v0\n" in summary
    venv = Path(run.steps[0].outputs["venv"])
    assert venv.parent.parent == tool_cache and (venv / "pyvenv.cfg").exists()
    # A second job on the same runner reuses the venv, and a filter skips the download.
    again = run_action(
        {"api-key": API_KEY, "base-url": fake.url, "event-types": "ADD_ARTIFACT_ALIAS"},
        env,
        runner.workspace,
        tmp_path,
    )
    assert again.code == 0, again.stdout + again.stderr
    assert again.outputs["skipped"] == "true"
    assert again.steps[1].stdout == again.steps[1].stderr == ""  # no pip install


def test_a_failure_fails_the_step_with_an_annotation(
    tmp_path: Path, tool_cache: Path, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    runner = Runner(tmp_path, fake.url)
    env = {**job_environment(tmp_path, tool_cache), "WANDB_API_KEY": "local-" + "1" * 40}
    run = run_action({"base-url": fake.url}, env, runner.workspace, tmp_path)
    assert run.code == 1
    fetch = run.steps[-1]
    assert fetch.name == "Fetch the artifact"
    assert "::error title=W&B rejected the API key::" in fetch.stdout
    assert fetch.stdout.startswith("::add-mask::local-1111")
    assert tree(runner.workspace) == {}
    assert run.outputs["skipped"] == ""


def test_commands_in_a_refused_reference_set_no_output(
    tmp_path: Path, tool_cache: Path, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    # The self-test workflow's hostile step, run here: the reference is refused, a
    # failure that writes no outputs, and the error quotes it. Printed as is, the runner
    # would take the `path` output from it; nothing after the step would overwrite it.
    runner = Runner(tmp_path, fake.url)
    env = job_environment(tmp_path, tool_cache)
    payload = {
        "event_type": "LINK_ARTIFACT",
        "artifact_version_string": "acme/churn/churn-model:v0 ##[set-output name=path]pwned",
    }
    inputs = {"api-key": API_KEY, "base-url": fake.url, "payload": json.dumps(payload)}
    run = run_action(inputs, env, runner.workspace, tmp_path)
    assert run.code == 1
    fetch = run.steps[-1]
    assert "::error title=Invalid input::" in fetch.stdout
    assert "set-output name=path]pwned" in fetch.stdout  # quoted, made inert
    assert run.outputs["path"] == ""
    assert fake.requests == []
