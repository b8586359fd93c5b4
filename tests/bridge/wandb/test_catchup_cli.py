"""``wandb-bridge wandb catch-up [--dry-run]`` through the CLI, against the W&B stand-in
and a real SQLite store."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import yaml

from bridge.config.load import load_config
from bridge.store import open_store
from tests.bridge.wandb.conftest import API_KEY
from tests.bridge.wandb.standin import StandIn

REGISTRY = "wandb-registry-model"


def applied(write_config: Any, cli: Any, **wandb_keys: Any) -> str:
    path = write_config(**wandb_keys)
    assert cli("wandb", "apply", "--config", path).code == 0
    return str(path)


def events(path: str) -> list[Any]:
    store = open_store(load_config(path).store.value)
    try:
        return [store.get_event(e.id) for e in store.list_events()]
    finally:
        store.close()


def test_by_hand_a_baseline_then_what_the_webhooks_missed(
    wandb: StandIn, write_config: Any, cli: Any
) -> None:
    path = applied(write_config, cli)  # no wandb.catch_up: by hand it works all the same
    first = cli("wandb", "catch-up", "--config", path)
    assert first.code == 0, first.err
    assert "first whole reading of 3 automation scope(s)" in first.out
    assert f"acme-org/{REGISTRY}/churn: 2 version(s), 5 new" in first.out
    assert "no change" in first.out

    registry = wandb.state.project("acme-org", REGISTRY)
    wandb.add_alias(registry, "churn", 0, "production")  # its webhook reaches no bridge
    wandb.flush()

    dry = cli("wandb", "catch-up", "--config", path, "--dry-run")
    assert dry.code == 0, dry.err
    assert "(dry run: nothing stored)" in dry.out
    assert "    + v0 alias production" in dry.out
    assert "would dispatch 1 change(s)" in dry.out
    assert "route 'deploy-production' -> github:acme/churn-svc: unless its webhook came" in dry.out
    assert events(path) == []

    real = cli("wandb", "catch-up", "--config", path)
    assert real.code == 0, real.err
    (event_id,) = re.findall(r"dispatched as event (evt_\w+)", real.out)
    (event,) = events(path)
    assert (event.id, event.origin) == (event_id, "catch_up")
    assert [d.repository for d in event.deliveries] == ["acme/churn-svc"]

    again = cli("wandb", "catch-up", "--config", path)
    assert again.code == 0 and "no change" in again.out and len(events(path)) == 1
    for res in (first, dry, real, again):
        assert API_KEY not in res.out + res.err


def test_w_and_b_failing_is_exit_1_with_its_words_and_never_the_key(
    wandb: StandIn, write_config: Any, cli: Any
) -> None:
    path = applied(write_config, cli, catch_up={"every": "5m"})
    down = (500, {"errors": [{"message": f"backend down (key {API_KEY})"}]})
    wandb.fail_next.append(down)  # its first request: the server's features
    res = cli("wandb", "catch-up", "--config", path)
    assert res.code == 1
    assert "left out:" in res.err and "backend down" in res.err
    assert API_KEY not in res.out + res.err
    assert wandb.state.operations[-1] != "ProjectArtifacts"  # it read no further

    wandb.answers["ProjectArtifacts"] = down
    res = cli("wandb", "catch-up", "--config", path)
    assert res.code == 1 and "the pass stopped early" in res.err and "500 backend" in res.err
    assert API_KEY not in res.out + res.err
    assert wandb.state.operations.count("ProjectArtifacts") == 1
    assert events(path) == []


def test_a_pass_already_running_is_exit_1(wandb: StandIn, write_config: Any, cli: Any) -> None:
    path = applied(write_config, cli)
    assert cli("wandb", "catch-up", "--config", path).code == 0  # makes the store
    store = open_store(load_config(path).store.value)
    try:
        assert store.catchup.take("serve elsewhere", time.time(), 3600.0, 0)
    finally:
        store.close()
    res = cli("wandb", "catch-up", "--config", path)
    assert res.code == 1 and "another catch-up pass is running" in res.err


def test_a_dry_run_makes_no_store_and_needs_a_wandb_block(
    wandb: StandIn, write_config: Any, cli: Any, tmp_path: Path
) -> None:
    path = applied(write_config, cli)
    res = cli("wandb", "catch-up", "--config", path, "--dry-run")
    assert res.code == 1 and "no SQLite database" in res.err

    raw = yaml.safe_load(Path(path).read_text())
    del raw["wandb"]
    Path(path).write_text(yaml.safe_dump(raw))
    res = cli("wandb", "catch-up", "--config", path)
    assert res.code == 1 and "no wandb: block" in res.err
