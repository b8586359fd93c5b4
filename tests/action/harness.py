"""Helpers for the action's tests: a runner-like environment and a GITHUB_OUTPUT parser."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from action.main import main

API_KEY = "local-5f3b0c9e2a7d41e8b6c4a9f0e1d2c3b4a5968776"
_HEREDOC = re.compile(r"^([\w-]+)<<(.+)$")
_PLAIN = re.compile(r"^([\w-]+)=(.*)$")


def parse_outputs(text: str) -> dict[str, str]:
    """Parse GITHUB_OUTPUT as the runner does; fail on any line it would not accept."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    assert lines[-1] == "", "GITHUB_OUTPUT must end with a newline"
    lines.pop()
    i = 0
    while i < len(lines):
        line = lines[i]
        heredoc = _HEREDOC.match(line)
        if heredoc:
            name, delimiter = heredoc.groups()
            end = lines.index(delimiter, i + 1)
            outputs[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
            continue
        plain = _PLAIN.match(line)
        assert plain, f"malformed GITHUB_OUTPUT line {line!r}"
        outputs[plain.group(1)] = plain.group(2)
        i += 1
    return outputs


def md5_of(path: Path) -> str:
    return base64.b64encode(hashlib.md5(path.read_bytes(), usedforsecurity=False).digest()).decode()


@dataclass
class Run:
    code: int
    stdout: str
    output_text: str
    summary: str
    sleeps: list[float] = field(default_factory=list)

    @property
    def outputs(self) -> dict[str, str]:
        return parse_outputs(self.output_text) if self.output_text else {}

    @property
    def summary_text(self) -> str:
        """The step summary with Markdown's backslash escapes undone."""
        return re.sub(r"\\(.)", r"\1", self.summary)

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("::error")]


def failed_with(run: Run, *fragments: str) -> str:
    """The run failed with one ``::error`` naming every fragment; return that line."""
    assert run.code == 1, run.stdout
    assert len(run.errors) == 1, run.stdout
    for fragment in fragments:
        assert fragment in run.errors[0], run.errors[0]
    return run.errors[0]


class Runner:
    """A fake GitHub runner job: event file, output files, workspace, and inputs."""

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self.workspace = root / "workspace"
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.event_path = root / "event.json"
        self.output_path = root / "github_output"
        self.summary_path = root / "step_summary"
        self.base_url = base_url
        self.part_size: int | None = None  # the action's own unless a test sets one
        self.dispatch(
            "LINK_MODEL",
            artifact_version_string="acme/churn/churn-model:production",
            event_author="alice",
        )

    def dispatch(self, action: str, **client_payload: Any) -> None:
        """Write a repository_dispatch event file as GitHub does."""
        event = {
            "action": action,
            "branch": "main",
            "client_payload": client_payload,
            "repository": {"full_name": "acme/churn-svc"},
            "sender": {"login": "wandb-bridge[bot]"},
        }
        self.event_path.write_text(json.dumps(event), encoding="utf-8")

    def environ(self, **inputs: str) -> dict[str, str]:
        env = {
            "GITHUB_EVENT_NAME": "repository_dispatch",
            "GITHUB_EVENT_PATH": str(self.event_path),
            "GITHUB_OUTPUT": str(self.output_path),
            "GITHUB_STEP_SUMMARY": str(self.summary_path),
            "GITHUB_WORKSPACE": str(self.workspace),
            "WANDB_ACTION_API_KEY": API_KEY,
            "WANDB_ACTION_BASE_URL": self.base_url,
        }
        for name, value in inputs.items():
            env["WANDB_ACTION_" + name.upper()] = value
        return {k: v for k, v in env.items() if v is not None}

    def run(self, env: dict[str, str] | None = None, /, *, clock: Any = None, **inputs: str) -> Run:
        for path in (self.output_path, self.summary_path):
            path.unlink(missing_ok=True)
        stdout = io.StringIO()
        sleeps: list[float] = []
        kwargs: dict[str, Any] = {"stdout": stdout, "sleep": sleeps.append}
        if clock is not None:
            kwargs["clock"] = clock
        if self.part_size is not None:
            kwargs["part_size"] = self.part_size
        code = main(env if env is not None else self.environ(**inputs), **kwargs)
        return Run(
            code, stdout.getvalue(), _read(self.output_path), _read(self.summary_path), sleeps
        )

    @property
    def default_target(self) -> Path:
        return self.workspace / "artifacts" / "churn-model"


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8") if path.exists() else ""  # CR kept as is


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (also hidden ones), by relative POSIX path."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def snapshot(root: Path) -> dict[str, object]:
    """Everything under ``root`` without following links: bytes of files, ``dir`` for
    directories, ``-> target`` for symbolic links."""
    found: dict[str, object] = {}
    for directory, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(directory) / name
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[key] = f"-> {os.readlink(path)}"
            elif path.is_dir():
                found[key] = "dir"
            else:
                found[key] = path.read_bytes()
    return found
