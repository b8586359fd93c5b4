"""Fixtures of the action's tests: a fake W&B with the demo artifact, a fake runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# The harness's asserts report as a test's own do.
pytest.register_assert_rewrite("tests.action.harness")

from harness.fake_wandb import FakeArtifact, FakeWandb, demo_files  # noqa: E402
from tests.action.harness import API_KEY, Runner  # noqa: E402


@pytest.fixture
def fake() -> Iterator[FakeWandb]:
    with FakeWandb(API_KEY, page_size=50) as server:
        yield server


@pytest.fixture
def artifact(fake: FakeWandb) -> FakeArtifact:
    """``acme/churn/churn-model:v0`` (production, latest): nested, empty, multi-chunk files."""
    return fake.store.add_artifact(
        "acme",
        "churn",
        "churn-model",
        demo_files(),
        aliases=("production", "latest"),
        xxh128=("model/config.json",),
        metadata={"accuracy": 0.93, "framework": "sklearn"},
        description="Churn classifier.\nTrained on Q3 data.",
    )


@pytest.fixture
def runner(tmp_path: Path, fake: FakeWandb) -> Runner:
    return Runner(tmp_path, fake.url)
