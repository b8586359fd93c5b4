"""The example workflow and the docs agree with what the bridge sends and the action takes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.action.composite import load_action

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "workflows" / "deploy-model.yml"
DOCS = REPO / "docs" / "action.md"


def _workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return data


def _dispatched_types() -> set[str]:
    """The drop-in path's W&B example (also send-test's default) and the quickstart's
    deploy routes (its evaluate route is for another workflow)."""
    body = json.loads((REPO / "examples/payloads/github-example.json").read_text())
    config = yaml.safe_load((REPO / "examples/quickstart.yaml").read_text())
    routed = {r["dispatch"]["event_type"] for r in config["routes"] if "deploy" in r["name"]}
    return {body["event_type"], *routed}


def test_the_example_listens_for_what_the_bridge_sends() -> None:
    on = _workflow()[True]  # YAML 1.1 reads the key `on` as True
    types = set(on["repository_dispatch"]["types"])
    assert _dispatched_types() <= types
    assert "workflow_dispatch" in on
    documented = re.search(r"types: \[(.*)\]", DOCS.read_text()).group(1)  # type: ignore[union-attr]
    assert set(documented.split(", ")) == types


def test_the_example_names_the_bridge_event_in_its_run_name() -> None:
    assert "github.event.client_payload.bridge_event_id" in _workflow()["run-name"]


def test_no_script_echoes_or_expands_untrusted_values() -> None:
    for job in _workflow()["jobs"].values():
        for step in job["steps"]:
            script = step.get("run", "")
            assert "${{" not in script, step
            assert not re.search(r"\b(echo|printf|cat|ls)\b", script), step


def test_the_docs_list_every_input_with_its_default() -> None:
    text = DOCS.read_text(encoding="utf-8")
    usage = text[text.index("## Usage") : text.index("## A receiving workflow")]
    for name, spec in load_action()["inputs"].items():
        assert re.search(rf"^    {name}: ", usage, re.M), name
        assert f"| `{name}` |" in text, name
        if spec.get("default"):
            assert re.search(rf"Default: {re.escape(spec['default'])}\n    {name}: ", usage), name
    assert "SPEC" not in text
