"""The bridge under gunicorn on loopback, delivering to a fake GitHub."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.bridge import BridgeProcess
from tests.fakes.github import FakeGitHub

# Test credentials. The secret scan (test_secrets.py) searches logs and answers for them.
SECRET = "whsec-e2e-current-0123456789"
ROTATING_SECRET = "whsec-e2e-second-key-4455"
RETIRED_SECRET = "whsec-e2e-retired-5555"
TOKEN = "wbt-e2e-access-token-abcdef"
GH_TOKEN = "ghp_e2eGithubToken0000zyxw"
ENV = {
    "E2E_SECRET": SECRET,
    "E2E_SECRET_2": ROTATING_SECRET,
    "E2E_TOKEN": TOKEN,
    "E2E_GH_TOKEN": GH_TOKEN,
}


def base_config(tmp_path: Path, github_url: str, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "store": f"sqlite:///{tmp_path}/bridge.db",
        "sources": {
            "wandb": {
                "secrets": [{"env": "E2E_SECRET"}, {"env": "E2E_SECRET_2"}],
                "tokens": [{"env": "E2E_TOKEN"}],
            },
            "signed-only": {"secrets": [{"env": "E2E_SECRET_2"}]},
        },
        "github": {
            "api_url": github_url,
            "token": {"env": "E2E_GH_TOKEN"},
            "repositories": ["acme/*"],
        },
        "routes": [
            {
                "name": "deploy",
                "when": {"event_type": "ADD_ARTIFACT_ALIAS", "alias": "production"},
                "dispatch": {
                    "repository": "acme/churn-svc",
                    "event_type": "DEPLOY_MODEL",
                    "client_payload": {"model": "${artifact_version_string}"},
                },
            },
            {
                "name": "evaluate",
                "when": {"event_type": "LINK_ARTIFACT"},
                "dispatch": {"repository": "acme/eval"},
            },
        ],
        "delivery": {
            "initial_backoff": "50ms",
            "max_backoff": "1s",
            "lease": "15s",
            "timeout": "5s",
        },
        "logging": {"level": "DEBUG"},
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def with_wandb(wandb_url: str, **wandb: Any) -> dict[str, Any]:
    """Config overrides for a bridge that W&B's stand-in (``tests.bridge.wandb``) reaches,
    with the team secrets it signs with, and a ``wandb:`` block pointing at it; its env
    is ``WANDB_ENV``."""
    from tests.bridge.wandb.conftest import BRIDGE_URL

    return {
        "sources": {
            "wandb": {"secrets": [{"env": "BRIDGE_SECRET"}], "tokens": [{"env": "BRIDGE_TOKEN"}]}
        },
        "wandb": {
            "base_url": wandb_url,
            "api_key": {"env": "WANDB_API_KEY"},
            "entity": "acme",
            "bridge_url": BRIDGE_URL,
            "secret_name": "BRIDGE_WEBHOOK_SECRET",
            "access_token_name": "BRIDGE_ACCESS_TOKEN",
            **wandb,
        },
    }


@pytest.fixture
def wandb() -> Iterator[Any]:
    """The W&B stand-in (``tests.bridge.wandb.standin``), seeded: the acme team, its
    organization's model registry, its team secrets."""
    from tests.bridge.wandb.conftest import API_KEY, seed
    from tests.bridge.wandb.standin import StandIn
    from tests.bridge.wandb.standin_state import State

    with StandIn(API_KEY, state=seed(State())) as standin:
        yield standin


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub(tokens=[GH_TOKEN]) as gh:
        yield gh


BridgeFactory = Callable[..., BridgeProcess]


@pytest.fixture
def start_bridge(tmp_path: Path, fake_github: FakeGitHub) -> Iterator[BridgeFactory]:
    """``start_bridge(workers=2, with_worker=True, env=None, **config_overrides)``."""
    started: list[BridgeProcess] = []

    def start(
        workers: int = 2,
        with_worker: bool = True,
        env: dict[str, str] | None = None,
        name: str = "bridge",
        **over: Any,
    ) -> BridgeProcess:
        cfg = base_config(tmp_path, fake_github.url, **over)
        proc = BridgeProcess(tmp_path, cfg, {**ENV, **(env or {})}, workers, with_worker, name)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def bridge(start_bridge: BridgeFactory) -> BridgeProcess:
    return start_bridge()
