"""Fixtures: a seeded W&B stand-in, a bridge config that points at it, and the CLI."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.cli import main
from tests.bridge.wandb.standin import StandIn
from tests.bridge.wandb.standin_state import State

API_KEY = "local-0123456789abcdef0123456789abcdef01234567"
WEBHOOK_SECRET = "bridge-webhook-secret-value"
ACCESS_TOKEN = "bridge-access-token-value"
BRIDGE_URL = "https://bridge.acme.test"
ENV = {"WANDB_API_KEY": API_KEY, "BRIDGE_SECRET": WEBHOOK_SECRET, "BRIDGE_TOKEN": ACCESS_TOKEN}

ROUTES: list[dict[str, Any]] = [
    {
        "name": "deploy-production",
        "when": {
            "event_type": "ADD_ARTIFACT_ALIAS",
            "alias": "production",
            "project_name": "wandb-registry-model",
            "artifact_collection_name": "churn",
        },
        "dispatch": {
            "repository": "acme/churn-svc",
            "event_type": "DEPLOY_MODEL",
            "client_payload": {"model": "${artifact_version_string}", "by": "${event_author}"},
        },
    },
    {
        "name": "evaluate",
        "when": {"event_type": "LINK_ARTIFACT", "project_name": "wandb-registry-model"},
        "dispatch": {"repository": "acme/churn-svc", "event_type": "EVALUATE_MODEL"},
    },
    {
        "name": "canary",
        "when": {
            "event_type": ["ADD_ARTIFACT_ALIAS", "BUILD_AND_DEPLOY"],
            "alias": "canary-*",
            "artifact_collection_name": "churn-*",
            "artifact_metadata.accuracy": "0.9*",
        },
        "dispatch": {"repository": "acme/churn-svc", "event_type": "CANARY"},
    },
]


def seed(state: State) -> State:
    """acme (a team in the acme-org organization), its registry, a project, its secrets."""
    state.add_entity("acme-org")
    state.add_entity("acme", org="acme-org")
    registry = state.add_project(
        "acme-org",
        "wandb-registry-model",
        {"churn": "ArtifactPortfolio", "fraud": "ArtifactPortfolio"},
    )
    state.add_version(registry, "churn", ["v0"], {"accuracy": 0.81})
    state.add_version(registry, "churn", ["production", "latest"], {"accuracy": 0.93})
    state.add_project("acme", "churn-training", {"churn-model": "ArtifactSequence"})
    state.secrets["acme"].update(
        {"BRIDGE_WEBHOOK_SECRET": WEBHOOK_SECRET, "BRIDGE_ACCESS_TOKEN": ACCESS_TOKEN}
    )
    return state


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def wandb(env: None) -> Iterator[StandIn]:
    with StandIn(API_KEY, state=seed(State())) as standin:
        yield standin


def config_dict(
    url: str, tmp_path: Path, routes: list[dict[str, Any]] | None = None, **wandb: Any
) -> dict[str, Any]:
    return {
        "store": f"sqlite:///{tmp_path}/bridge.db",
        "sources": {
            "wandb": {"secrets": [{"env": "BRIDGE_SECRET"}], "tokens": [{"env": "BRIDGE_TOKEN"}]}
        },
        "github": {"dry_run": True, "repositories": ["acme/*"]},
        "routes": ROUTES if routes is None else routes,
        "wandb": {
            "base_url": url,
            "api_key": {"env": "WANDB_API_KEY"},
            "entity": "acme",
            "bridge_url": BRIDGE_URL,
            "secret_name": "BRIDGE_WEBHOOK_SECRET",
            "access_token_name": "BRIDGE_ACCESS_TOKEN",
            **wandb,
        },
    }


@pytest.fixture
def write_config(tmp_path: Path, wandb: StandIn) -> Callable[..., str]:
    """Write a bridge config pointing at the stand-in; returns its path."""

    def write(routes: list[dict[str, Any]] | None = None, **wandb_keys: Any) -> str:
        path = tmp_path / "wandb-bridge.yaml"
        path.write_text(yaml.safe_dump(config_dict(wandb.url, tmp_path, routes, **wandb_keys)))
        return str(path)

    return write


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """``wandb-bridge <args>`` in this process; ``stdin`` is what it reads."""

    def run(*args: str, stdin: str = "") -> Result:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
