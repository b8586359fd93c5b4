"""The stand-in's registry: versions read by pages, aliases that move, protected aliases,
and the webhooks W&B fires for each change, signed, lost, delayed or racing the answer."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bridge.config.secrets import Secret
from bridge.signature import signature_matches
from tests.bridge.wandb.conftest import ACCESS_TOKEN, API_KEY, WEBHOOK_SECRET, seed
from tests.bridge.wandb.standin import StandIn
from tests.bridge.wandb.standin_state import State, Trigger, Webhook
from tests.fakes.receivers import Receiver

REGISTRY = "acme-org/wandb-registry-model"
TEMPLATE = json.dumps(
    {
        "event_type": "${event_type}",
        "author": "${event_author}",
        "entity": "${entity_name}",
        "project": "${project_name}",
        "collection": "${artifact_collection_name}",
        "version": "${artifact_version}",
        "version_string": "${artifact_version_string}",
        "alias": "${alias}",
        "tag": "${tag}",
        "accuracy": "${artifact_metadata.accuracy}",
        "note": "${artifact_metadata.note}",
        "unknown": "${nope}",
    }
)
VERSIONS = """
query Versions($entity: String!, $project: String!, $collection: String!, $cursor: String) {
  project(entityName: $entity, name: $project) {
    artifactType(name: "model") {
      artifactCollection(name: $collection) {
        artifacts(after: $cursor, first: 100) {
          totalCount
          pageInfo { endCursor hasNextPage }
          edges { version node { id versionIndex aliases { alias } tags { name } } }
        }
      }
    }
  }
}
"""
ADD_ALIASES = (
    "mutation AddAliases($input: AddAliasesInput!) { result: addAliases(input: $input) "
    "{ success } }"
)
UPDATE = (
    "mutation UpdateArtifact($input: UpdateArtifactInput!) { result: updateArtifact(input: "
    "$input) { artifact { id tags { name } metadata description } } }"
)


def post(standin: StandIn, query: str, variables: dict[str, Any] | None = None) -> Any:
    res = requests.post(
        f"{standin.url}/graphql",
        json={"query": query, "variables": variables or {}},
        auth=("api", API_KEY),
        timeout=10,
    )
    return res.status_code, res.json()


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(API_KEY, state=seed(State())) as s:
        yield s


@pytest.fixture
def receiver(standin: StandIn) -> Iterator[Receiver]:
    with Receiver("generic", secret=WEBHOOK_SECRET) as r:
        standin.deliver_to(r.url)
        yield r


def automation(
    standin: StandIn,
    name: str,
    event: str,
    scope: tuple[str, str],
    event_filter: dict[str, Any] | None = None,
    enabled: bool = True,
) -> None:
    """An automation sending TEMPLATE to the bridge's webhook (signed, with a token)."""
    s = standin.state
    if "hook" not in s.webhooks:
        s.webhooks["hook"] = Webhook(
            "hook", "acme", "bridge", "https://bridge.acme.test/wandb/webhook",
            "BRIDGE_WEBHOOK_SECRET", "BRIDGE_ACCESS_TOKEN",
        )  # fmt: skip
    wrapped = json.dumps({"filter": event_filter or {"$or": [{"$and": []}]}})
    s.triggers[name] = Trigger(
        name, name, None, enabled, scope[0], scope[1], event, wrapped, "GENERIC_WEBHOOK",
        "hook", TEMPLATE, "2025",
    )  # fmt: skip


def registry_scope(standin: StandIn) -> tuple[str, str]:
    p = standin.state.project("acme-org", "wandb-registry-model")
    assert p is not None
    return "PROJECT", p.id


def version_id(standin: StandIn, index: int, collection: str = "churn") -> str:
    p = standin.state.project("acme-org", "wandb-registry-model")
    assert p is not None
    return str(p.collections[collection].versions[index]["artifact"])


def alias_input(alias: str, collection: str = "churn") -> dict[str, str]:
    return {
        "alias": alias,
        "entityName": "acme-org",
        "projectName": "wandb-registry-model",
        "artifactCollectionName": collection,
    }


def test_versions_are_read_page_by_page_to_the_end(standin: StandIn) -> None:
    standin.state.page_cap = 3
    for n in range(5):
        standin.link(REGISTRY, "churn", {"n": n})
    seen, cursor, pages = [], None, 0
    while True:
        status, body = post(
            standin,
            VERSIONS,
            {"entity": "acme-org", "project": "wandb-registry-model", "collection": "churn",
             "cursor": cursor},
        )  # fmt: skip
        assert status == 200, body
        conn = body["data"]["project"]["artifactType"]["artifactCollection"]["artifacts"]
        assert conn["totalCount"] == 7 and len(conn["edges"]) <= 3  # first: 100 is capped
        seen += [e["version"] for e in conn["edges"]]
        pages += 1
        cursor = conn["pageInfo"]["endCursor"]
        if not conn["pageInfo"]["hasNextPage"]:
            break
    assert seen == [f"v{i}" for i in range(7)] and pages == 3


def test_an_alias_names_one_version_of_a_collection(standin: StandIn) -> None:
    standin.link(REGISTRY, "churn", aliases=["staging"])
    status, body = post(
        standin, ADD_ALIASES, {"input": {"artifactID": version_id(standin, 2),
                                         "aliases": [alias_input("production")]}}
    )  # fmt: skip
    assert status == 200 and body["data"]["result"]["success"], body
    versions = standin.state.project("acme-org", "wandb-registry-model").collections  # type: ignore[union-attr]
    assert [v["aliases"] for v in versions["churn"].versions] == [
        ["v0"],
        ["latest"],  # production moved to the version it was added to
        ["staging", "production"],
    ]
    found = post(
        standin,
        '{ project(name: "wandb-registry-model", entityName: "acme-org") {'
        ' artifactCollectionMembership(name: "churn:production") { versionIndex } } }',
    )[1]
    assert found["data"]["project"]["artifactCollectionMembership"] == {"versionIndex": 2}
    # another collection's alias of the same name stays where it is
    standin.link(REGISTRY, "fraud", aliases=["production"])
    assert versions["fraud"].versions[0]["aliases"] == ["production"]
    assert versions["churn"].versions[2]["aliases"] == ["staging", "production"]


def test_protected_aliases_need_a_registry_admin_and_refusals_change_nothing(
    standin: StandIn, receiver: Receiver
) -> None:
    automation(standin, "any alias", "ADD_ARTIFACT_ALIAS", registry_scope(standin))
    standin.state.protected_aliases = {"production"}
    target = {"artifactID": version_id(standin, 0), "aliases": [alias_input("production")]}
    status, body = post(standin, ADD_ALIASES, {"input": target})
    assert status == 200 and body["data"]["result"] is None
    assert "permission denied" in body["errors"][0]["message"]
    both = {**target, "aliases": [alias_input("candidate"), alias_input("production")]}
    assert "errors" in post(standin, ADD_ALIASES, {"input": both})[1]
    assert version_aliases(standin, 0) == ["v0"]  # not even the unprotected one
    unknown = {"artifactID": "QXJ0aWZhY3Q6OTk5", "aliases": [alias_input("x")]}
    assert "not found" in post(standin, ADD_ALIASES, {"input": unknown})[1]["errors"][0]["message"]
    standin.flush()
    assert standin.state.webhooks_sent == [] and receiver.received == []

    standin.state.registry_admin = True
    assert post(standin, ADD_ALIASES, {"input": target})[1]["data"]["result"]["success"]
    assert version_aliases(standin, 0) == ["v0", "production"]
    assert standin.state.mutations == ["addAliases"] * 4
    assert standin.state.operations == ["AddAliases"] * 4  # named by the document itself
    receiver.wait_for(1)


def version_aliases(standin: StandIn, index: int) -> list[str]:
    p = standin.state.project("acme-org", "wandb-registry-model")
    assert p is not None
    return list(p.collections["churn"].versions[index]["aliases"])


def test_webhooks_fire_for_the_matching_automations_only_signed_as_w_and_b_signs(
    standin: StandIn, receiver: Receiver
) -> None:
    s = standin.state
    registry = s.project("acme-org", "wandb-registry-model")
    assert registry is not None
    prod = {"$or": [{"$and": [{"alias": {"$eq": "production"}}]}]}
    automation(standin, "prod", "ADD_ARTIFACT_ALIAS", ("PROJECT", registry.id), prod)
    automation(standin, "fraud only", "ADD_ARTIFACT_ALIAS",
               ("ARTIFACT_COLLECTION", registry.collections["fraud"].id))  # fmt: skip
    automation(standin, "links", "LINK_MODEL", ("ENTITY", s.entities["acme-org"]["id"]))
    automation(standin, "off", "ADD_ARTIFACT_ALIAS", ("PROJECT", registry.id), enabled=False)
    automation(standin, "other team", "LINK_MODEL", ("ENTITY", s.entities["acme"]["id"]))
    release = {"$or": [{"$and": [{"tag": {"$regex": "^release-.*$"}}]}]}
    automation(standin, "tags", "ADD_ARTIFACT_TAG", ("PROJECT", registry.id), release)

    standin.link(REGISTRY, "churn", {"accuracy": 0.95, "note": 'said "hi"\n'}, ["staging"])
    standin.add_alias(REGISTRY, "churn", 2, "production", author="bob")
    standin.add_alias(REGISTRY, "churn", 2, "production")  # held already: no change
    standin.add_tag(REGISTRY, "churn", 2, "nightly")
    standin.add_tag(REGISTRY, "churn", 2, "release-7")
    standin.flush()

    assert [h.trigger for h in s.webhooks_sent] == ["links", "prod", "tags"]
    assert [h.outcome for h in s.webhooks_sent] == ["sent"] * 3
    assert [h.status for h in s.webhooks_sent] == [200] * 3
    got = receiver.received
    assert [r.path for r in got] == ["/wandb/webhook"] * 3
    artifact = version_id(standin, 2)
    assert got[0].payload == {
        "event_type": "LINK_MODEL",
        "author": "alice",
        "entity": "acme-org",
        "project": "wandb-registry-model",
        "collection": "churn",
        "version": f"wandb-artifact://_id/{artifact}",
        "version_string": "acme-org/wandb-registry-model/churn:v2",
        "alias": "",
        "tag": "",
        "accuracy": "0.95",
        "note": 'said "hi"\n',
        "unknown": "",
    }
    assert got[1].payload["version_string"] == "acme-org/wandb-registry-model/churn:production"
    assert (got[1].payload["alias"], got[1].payload["author"]) == ("production", "bob")
    assert (got[2].payload["event_type"], got[2].payload["tag"]) == (
        "ADD_ARTIFACT_TAG",
        "release-7",
    )
    for r in got:
        assert r.headers["content-type"] == "application/json"
        assert r.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
        secret = Secret(WEBHOOK_SECRET)
        assert signature_matches([secret], r.headers["x-wandb-signature"], r.raw)
        assert not signature_matches([Secret("other")], r.headers["x-wandb-signature"], r.raw)


def test_dropped_webhooks_are_lost_and_held_ones_arrive_later_in_order(
    standin: StandIn, receiver: Receiver
) -> None:
    automation(standin, "aliases", "ADD_ARTIFACT_ALIAS", registry_scope(standin))
    standin.drop_next(1)
    standin.add_alias(REGISTRY, "churn", 0, "a")
    standin.add_alias(REGISTRY, "churn", 0, "b")
    standin.flush()
    assert [(h.outcome, json.loads(h.body)["alias"]) for h in standin.state.webhooks_sent] == [
        ("dropped", "a"),
        ("sent", "b"),
    ]
    assert [r.payload["alias"] for r in receiver.received] == ["b"]

    standin.hold()
    standin.add_alias(REGISTRY, "churn", 0, "c")
    standin.add_alias(REGISTRY, "churn", 1, "d")
    standin.flush()  # nothing to send while held
    assert [h.outcome for h in standin.state.webhooks_sent[2:]] == ["held", "held"]
    assert len(receiver.received) == 1
    standin.release()
    standin.flush()
    assert [r.payload["alias"] for r in receiver.received] == ["b", "c", "d"]
    assert [h.outcome for h in standin.state.webhooks_sent] == ["dropped", "sent", "sent", "sent"]


def test_a_failed_webhook_is_recorded_and_not_retried(standin: StandIn, receiver: Receiver) -> None:
    automation(standin, "aliases", "ADD_ARTIFACT_ALIAS", registry_scope(standin))
    receiver.fail_next(503)
    standin.add_alias(REGISTRY, "churn", 0, "a")
    standin.flush()
    assert [(h.outcome, h.status) for h in standin.state.webhooks_sent] == [("sent", 503)]
    assert len(receiver.received) == 1


def test_with_hooks_before_answer_a_write_answers_after_its_webhook_was_answered(
    standin: StandIn, receiver: Receiver
) -> None:
    automation(standin, "aliases", "ADD_ARTIFACT_ALIAS", registry_scope(standin))
    standin.hooks_before_answer = True
    receiver.hold()
    answered = threading.Event()
    seen: list[Any] = []

    def write() -> None:
        target = {"artifactID": version_id(standin, 0), "aliases": [alias_input("production")]}
        seen.append(post(standin, ADD_ALIASES, {"input": target}))
        seen.append([h.status for h in standin.state.webhooks_sent])
        answered.set()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        while receiver.in_flight == 0 and thread.is_alive():  # the webhook arrives, held
            time.sleep(0.01)
        assert receiver.in_flight == 1
        assert not answered.is_set()  # W&B's answer waits for its webhook's
    finally:
        receiver.release()
        thread.join()
    assert seen[0][1]["data"]["result"]["success"]
    assert seen[1] == [200]  # answered before the write was


def test_update_artifact_changes_tags_metadata_and_description_and_fires_tag_events(
    standin: StandIn, receiver: Receiver
) -> None:
    automation(standin, "tags", "ADD_ARTIFACT_TAG", registry_scope(standin))
    artifact = version_id(standin, 1)
    standin.add_tag(REGISTRY, "churn", 1, "old")
    status, body = post(
        standin,
        UPDATE,
        {"input": {"artifactID": artifact, "tagsToAdd": [{"tagName": "deployed"}],
                   "tagsToDelete": [{"tagName": "old"}], "metadata": '{"accuracy": 0.97}',
                   "description": "shipped"}},
    )  # fmt: skip
    assert status == 200, body
    assert body["data"]["result"]["artifact"] == {
        "id": artifact,
        "tags": [{"name": "deployed"}],
        "metadata": '{"accuracy": 0.97}',
        "description": "shipped",
    }
    bad = {"input": {"artifactID": artifact, "tagsToAdd": [{"tagName": "no/slash"}]}}
    assert "invalid tag" in post(standin, UPDATE, bad)[1]["errors"][0]["message"]
    standin.flush()
    assert [json.loads(h.body)["tag"] for h in standin.state.webhooks_sent] == ["old", "deployed"]
    assert json.loads(standin.state.webhooks_sent[1].body)["author"] == "wandb-bridge"
    assert standin.state.mutations == ["updateArtifact", "updateArtifact"]


def test_artifacts_are_found_by_id_and_unknown_fields_are_refused(standin: StandIn) -> None:
    artifact = version_id(standin, 1)
    query = (
        "query($id: ID!) { artifact(id: $id) { versionIndex artifactSequence { name project "
        "{ name entity { name } } } aliases { alias artifactCollection { name } } } }"
    )
    found = post(standin, query, {"id": artifact})[1]["data"]["artifact"]
    assert found["versionIndex"] == 1 and found["artifactSequence"]["name"] == "churn"
    assert {a["alias"] for a in found["aliases"]} == {"production", "latest"}
    assert post(standin, query, {"id": "QXJ0aWZhY3Q6OTk5"})[1]["data"] == {"artifact": None}
    status, _ = post(standin, "query($id: ID!) { artifact(id: $id) { nope } }", {"id": artifact})
    assert status == 400


def test_update_artifact_sets_a_collections_aliases_and_guards_protected_ones(
    standin: StandIn, receiver: Receiver
) -> None:
    automation(standin, "aliases", "ADD_ARTIFACT_ALIAS", registry_scope(standin))
    standin.state.protected_aliases = {"production"}
    artifact = version_id(standin, 0)

    def set_aliases(*names: str) -> Any:
        aliases = [{"alias": a, "artifactCollectionName": "churn"} for a in names]
        return post(standin, UPDATE, {"input": {"artifactID": artifact, "aliases": aliases}})[1]

    assert "permission denied" in set_aliases("production")["errors"][0]["message"]
    assert set_aliases("latest", "v7")["errors"][0]["message"] == "invalid alias 'v7'"
    assert "errors" not in set_aliases("latest", "best")
    assert [v["aliases"] for v in churn_versions(standin)] == [["latest", "best"], ["production"]]
    standin.flush()
    assert [r.payload["alias"] for r in receiver.received] == ["latest", "best"]


def churn_versions(standin: StandIn) -> list[dict[str, Any]]:
    p = standin.state.project("acme-org", "wandb-registry-model")
    assert p is not None
    return p.collections["churn"].versions
