"""Run ``action.yml``'s composite steps as the GitHub runner runs them.

The runner evaluates ``${{ }}`` only in ``env:``/``with:``/``value:`` (here: ``inputs.*``,
``steps.<id>.outputs.*``, ``github.*``, ``runner.*``), writes each ``run:`` script to a
file and runs it with ``bash --noprofile --norc -eo pipefail``, gives every step a fresh
``GITHUB_OUTPUT`` file, stops at the first failing step, and maps ``outputs.*.value``.
It also obeys ``set-output`` commands in a step's log, ``::set-output name=N::V`` at a
line's start and the legacy ``##[set-output name=N]V`` anywhere in a line, as the runner
still does (``GITHUB_OUTPUT``, read after the step, wins), and ``::stop-commands::``.
``uses:`` steps (the cache) are not run here: they behave as a cache miss.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.action.harness import parse_outputs

REPO = Path(__file__).resolve().parents[2]
ACTION_YML = REPO / "action.yml"
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_SET_OUTPUT = re.compile(r"::set-output name=([^:,]*)::(.*)")
_LEGACY_SET_OUTPUT = re.compile(r"##\[set-output name=([^;\]]*)\](.*)")
_STOP = re.compile(r"::stop-commands::(.+)")


def load_action() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ACTION_YML.read_text(encoding="utf-8"))
    return data


@dataclass
class StepRun:
    name: str
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class ActionRun:
    steps: list[StepRun]
    outputs: dict[str, str]

    @property
    def code(self) -> int:
        return next((s.code for s in self.steps if s.code), 0)

    @property
    def stdout(self) -> str:
        return "".join(s.stdout for s in self.steps)

    @property
    def stderr(self) -> str:
        return "".join(s.stderr for s in self.steps)


def _evaluate(text: str, context: dict[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        parts = match.group(1).split(".")
        value: Any = context
        for n, part in enumerate(parts):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif parts[0] == "steps" and n == 3:
                return ""  # an output the step did not set is null, rendered ""
            else:
                raise AssertionError(f"the runner could not evaluate {match.group(0)!r}")
        return "" if value is None else str(value)

    return _EXPR.sub(one, str(text))


def commanded_outputs(log: str) -> dict[str, str]:
    """The outputs a step's log sets through ``set-output`` commands, as the runner reads
    them: line by line (CR and LF both end a line), commands paused by ``stop-commands``."""
    outputs: dict[str, str] = {}
    resume = ""
    for line in re.split(r"\r\n|\r|\n", log):
        text = line.strip()
        if resume:
            resume = "" if text == resume else resume
            continue
        if stop := _STOP.fullmatch(text):
            resume = f"::{stop.group(1)}::"
        elif found := _SET_OUTPUT.fullmatch(text) or _LEGACY_SET_OUTPUT.search(line):
            outputs[found.group(1)] = _unescape(found.group(2))
    return outputs


def _unescape(value: str) -> str:
    for escaped, plain in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        value = value.replace(escaped, plain)
    return value


def run_action(
    inputs: dict[str, str], env: dict[str, str], workspace: Path, temp: Path
) -> ActionRun:
    """Run the composite action with ``inputs`` (``with:``) in a job environment ``env``."""
    action = load_action()
    declared = action["inputs"]
    assert set(inputs) <= set(declared), f"undeclared inputs {set(inputs) - set(declared)}"
    context: dict[str, Any] = {
        "inputs": {
            name: inputs.get(name, spec.get("default", "")) for name, spec in declared.items()
        },
        "steps": {},
        "github": {"action_path": str(REPO), "workspace": str(workspace)},
        "runner": {"temp": env["RUNNER_TEMP"], "os": env["RUNNER_OS"]},
    }
    job_env = {**env, "GITHUB_ACTION_PATH": str(REPO), "GITHUB_WORKSPACE": str(workspace)}
    runs: list[StepRun] = []
    for n, step in enumerate(action["runs"]["steps"]):
        step_id = step.get("id", f"__{n}")
        if "uses" in step:
            for value in (step.get("with") or {}).values():
                _evaluate(value, context)  # the runner evaluates these: they must resolve
            context["steps"][step_id] = {"outputs": {}}
            continue
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], "expressions must not be inside run: scripts"
        output_file = temp / f"output-{n}"
        output_file.write_text("")
        script = temp / f"step-{n}.sh"
        script.write_text(step["run"], encoding="utf-8")
        step_env = {
            **job_env,
            **{k: _evaluate(v, context) for k, v in (step.get("env") or {}).items()},
            "GITHUB_OUTPUT": str(output_file),
        }
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            env=step_env,
            cwd=workspace,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        written = parse_outputs(output_file.read_text(encoding="utf-8") or "")
        outputs = {**commanded_outputs(done.stdout), **written}
        runs.append(
            StepRun(step.get("name", step_id), done.returncode, done.stdout, done.stderr, outputs)
        )
        context["steps"][step_id] = {"outputs": outputs}
        if done.returncode:
            break
    outputs = {name: _evaluate(spec["value"], context) for name, spec in action["outputs"].items()}
    return ActionRun(runs, outputs)


def job_environment(root: Path, tool_cache: Path) -> dict[str, str]:
    """The variables a hosted runner sets for a job (those the action reads)."""
    temp = root / "runner-temp"
    temp.mkdir(exist_ok=True)
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(root)),
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "repository_dispatch",
        "GITHUB_EVENT_PATH": str(root / "event.json"),
        "GITHUB_STEP_SUMMARY": str(root / "step_summary"),
        "RUNNER_OS": "Linux",
        "RUNNER_ARCH": "X64",
        "RUNNER_TEMP": str(temp),
        "RUNNER_TOOL_CACHE": str(tool_cache),
    }
