"""Fixtures of the in-process flows: a fake GitHub, and bridges in this process
(:mod:`tests.bridge.flows.inprocess`), stopped and closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.bridge.e2e.conftest import (
    GH_TOKEN,
    wandb,  # noqa: F401  (the W&B stand-in, a fixture)
)
from tests.bridge.flows.inprocess import Bridge, open_bridge
from tests.fakes.github import FakeGitHub

BridgeFactory = Callable[..., Bridge]


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub(tokens=[GH_TOKEN]) as gh:
        yield gh


@pytest.fixture
def start_bridge(
    tmp_path: Path, fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BridgeFactory]:
    """``start_bridge(with_worker=True, env=None, name="bridge", **config_overrides)``:
    overrides as ``tests.bridge.e2e.conftest.base_config`` takes them."""
    # one process: its counters in its own registry, not in a directory
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    started: list[Bridge] = []

    def start(
        with_worker: bool = True,
        env: Mapping[str, str] | None = None,
        name: str = "bridge",
        **over: Any,
    ) -> Bridge:
        bridge = open_bridge(tmp_path, fake_github.url, env, name, **over)
        started.append(bridge)
        if with_worker:
            bridge.start_worker()
        return bridge

    yield start
    for bridge in reversed(started):
        bridge.close()


@pytest.fixture
def bridge(start_bridge: BridgeFactory) -> Bridge:
    return start_bridge()
