"""The stand-in answers the real W&B SDK (0.31): its own public calls read and write the
registry, and the writes change the stand-in's state and fire its webhooks.

The SDK runs its ``wandb-core`` sidecar, which sends the GraphQL documents; every
``WANDB_*`` variable, its settings, cache and home directory are this test's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wandb

from tests.bridge.wandb.conftest import API_KEY, seed
from tests.bridge.wandb.standin import StandIn
from tests.bridge.wandb.standin_state import State, Trigger, Webhook
from tests.fakes.receivers import Receiver

REGISTRY_PATH = "acme-org/wandb-registry-model"


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(API_KEY, state=seed(State())) as s:
        yield s


@pytest.fixture
def api(standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The SDK's public API on the stand-in, as a member of the team ``acme``."""
    import os

    for name in [n for n in os.environ if n.startswith("WANDB_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    for name, value in {
        "HOME": str(home),
        "NETRC": str(home / ".netrc"),
        "WANDB_DIR": str(tmp_path / "wandb"),
        "WANDB_CONFIG_DIR": str(tmp_path / "config"),
        "WANDB_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_DATA_DIR": str(tmp_path / "data"),
        "WANDB_ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "WANDB_MODE": "online",  # the public API talks to the (stand-in) server
        "WANDB_SILENT": "true",
        "WANDB_ERROR_REPORTING": "false",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield wandb.Api(api_key=API_KEY, overrides={"base_url": standin.url, "entity": "acme"})
    finally:
        wandb.teardown()  # ends the wandb-core process this test started


def watch_registry(standin: StandIn, receiver: Receiver) -> None:
    """Automations on the registry for alias and tag additions, sent to ``receiver``."""
    s = standin.state
    registry = s.project("acme-org", "wandb-registry-model")
    assert registry is not None
    s.webhooks["hook"] = Webhook(
        "hook", "acme", "bridge", "https://bridge.acme.test/wandb/webhook",
        "BRIDGE_WEBHOOK_SECRET", None,
    )  # fmt: skip
    payload = json.dumps(
        {"event": "${event_type}", "by": "${event_author}", "alias": "${alias}", "tag": "${tag}"}
    )
    for event in ("ADD_ARTIFACT_ALIAS", "ADD_ARTIFACT_TAG"):
        s.triggers[event] = Trigger(
            event, event, None, True, "PROJECT", registry.id, event,
            '{"filter": {"$or": [{"$and": []}]}}', "GENERIC_WEBHOOK", "hook", payload, "2025",
        )  # fmt: skip
    standin.deliver_to(receiver.url)


def churn(standin: StandIn) -> list[dict[str, Any]]:
    p = standin.state.project("acme-org", "wandb-registry-model")
    assert p is not None
    return p.collections["churn"].versions


def test_the_sdk_reads_a_registry_version_and_saves_aliases_and_tags(
    standin: StandIn, api: Any
) -> None:
    with Receiver("generic") as receiver:
        watch_registry(standin, receiver)
        art = api.artifact(f"{REGISTRY_PATH}/churn:v1")
        assert (art.version, art.aliases, art.tags) == ("v1", ["production", "latest"], [])
        assert art.id == churn(standin)[1]["artifact"]
        assert art.metadata == {"accuracy": 0.93}

        art.aliases.append("candidate")
        art.tags = ["deployed"]
        art.save()
        assert churn(standin)[1]["aliases"] == ["production", "latest", "candidate"]
        assert churn(standin)[1]["tags"] == ["deployed"]
        standin.flush()
        assert [r.payload for r in receiver.received] == [
            {"event": "ADD_ARTIFACT_ALIAS", "by": "wandb-bridge", "alias": "candidate", "tag": ""},
            {"event": "ADD_ARTIFACT_TAG", "by": "wandb-bridge", "alias": "", "tag": "deployed"},
        ]

        art.aliases.remove("latest")
        art.save()
        assert churn(standin)[1]["aliases"] == ["production", "candidate"]
        standin.flush()
        assert len(receiver.received) == 2  # W&B has no event for a removed alias
    assert standin.state.mutations == ["addAliases", "updateArtifact", "deleteAliases",
                                       "updateArtifact"]  # fmt: skip
    assert {"Viewer", "ArtifactMembershipByName", "AddAliases", "DeleteAliases",
            "UpdateArtifact"} <= set(standin.state.operations)  # fmt: skip


def test_the_sdk_pages_through_a_collections_versions(standin: StandIn, api: Any) -> None:
    for n in range(3):
        standin.link(REGISTRY_PATH, "churn", {"n": n}, aliases=[f"run-{n}"])
    standin.state.page_cap = 2
    collection = api.artifact_collection("model", f"{REGISTRY_PATH}/churn")
    versions = {v.version: v.aliases for v in collection.artifacts()}
    assert versions == {
        "v0": [],
        "v1": ["production", "latest"],
        "v2": ["run-0"],
        "v3": ["run-1"],
        "v4": ["run-2"],
    }
    assert standin.state.operations.count("ProjectArtifacts") == 3
    names = [c.name for c in api.artifact_collections(REGISTRY_PATH, "model")]
    assert names == ["churn", "fraud"]


def test_the_sdk_is_refused_a_protected_alias_without_registry_admin(
    standin: StandIn, api: Any
) -> None:
    standin.state.protected_aliases = {"production"}
    art = api.artifact(f"{REGISTRY_PATH}/churn:v0")
    art.aliases.append("production")
    with pytest.raises(wandb.errors.CommError, match="permission"):
        art.save()
    assert [v["aliases"] for v in churn(standin)] == [["v0"], ["production", "latest"]]
    standin.state.registry_admin = True
    art.save()
    assert [v["aliases"] for v in churn(standin)] == [["v0", "production"], ["latest"]]
