"""The API key never appears in what the action writes, except the one ``::add-mask::``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.fake_wandb import FakeArtifact, FakeWandb
from tests.action.harness import API_KEY, Run, Runner


def _wrong_key(fake: FakeWandb, runner: Runner) -> Run:
    fake.api_key = "local-" + "0" * 40
    return runner.run()


def _corrupt(fake: FakeWandb, runner: Runner) -> Run:
    fake.corrupt("README.md")
    return runner.run()


def _handler_refuses(fake: FakeWandb, runner: Runner) -> Run:
    fake.refuse("README.md")
    fake.fail("handler", *[503] * 10)
    return runner.run()


def _missing(fake: FakeWandb, runner: Runner) -> Run:
    return runner.run(artifact="acme/churn/nope:v9")


def _graphql_down(fake: FakeWandb, runner: Runner) -> Run:
    fake.fail("graphql", *[0] * 10)
    return runner.run()


def _bad_input(fake: FakeWandb, runner: Runner) -> Run:
    return runner.run(verify="perhaps", payload="{")


def _success(fake: FakeWandb, runner: Runner) -> Run:
    fake.expire("model/weights.bin")  # the key is used at the download handler
    return runner.run()


@pytest.mark.parametrize(
    "scenario",
    [_success, _wrong_key, _corrupt, _handler_refuses, _missing, _graphql_down, _bad_input],
)
def test_key_is_never_written(
    runner: Runner,
    fake: FakeWandb,
    artifact: FakeArtifact,
    capfd: pytest.CaptureFixture[str],
    scenario: Callable[[FakeWandb, Runner], Run],
) -> None:
    run = scenario(fake, runner)
    captured = capfd.readouterr()
    lines = run.stdout.splitlines()
    assert lines[0] == f"::add-mask::{API_KEY}"
    everything = "\n".join([*lines[1:], run.output_text, run.summary, captured.out, captured.err])
    assert API_KEY not in everything
    assert API_KEY[6:] not in everything  # not even without its prefix
