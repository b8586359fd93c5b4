"""Fixtures of the action's tests: a fake W&B with the demo artifact, a fake runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.action.fake_wandb import FakeArtifact, FakeWandb, demo_files
from tests.action.harness import API_KEY, Runner

if TYPE_CHECKING:
    from action.md5lanes import Lanes


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


@pytest.fixture(scope="session")
def md5_library(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The multi-buffer MD5 library, built as action.yml's setup step builds it."""
    from action.md5build import build

    if shutil.which(os.environ.get("CC") or "cc") is None:
        if os.environ.get("CI") == "true":  # .ci/run installs one
            pytest.fail("no C compiler to build the multi-buffer MD5 with")
        pytest.skip("no C compiler: the action hashes with hashlib here")
    return str(build(tmp_path_factory.mktemp("md5lanes")))


@pytest.fixture(scope="session")
def lanes(md5_library: str) -> Lanes:
    from action.md5lanes import Unavailable, load

    try:
        return load(md5_library)
    except Unavailable as exc:
        pytest.skip(f"multi-buffer MD5 cannot run here: {exc}")
