"""Write-back: the payload a concluded run queues (pure, then from a real store), and its
sender against the W&B stand-in (the SDK's AddAliases / UpdateArtifact)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from bridge.config.model import Dispatch, Route, WriteBack
from bridge.config.secrets import Secret
from bridge.delivery.senders import DryRunSender, GitHubSender
from bridge.errors import PermanentDeliveryError, TransientDeliveryError
from bridge.logs import TextFormatter, fields_of
from bridge.routing.changes import echo_items
from bridge.store import SqlStore
from bridge.store.models import Claimed, NewDelivery, NewEvent
from bridge.wandb.api import WandbApi
from bridge.wandb.client import GraphQL
from bridge.wandb.writeback import (
    ECHO_WINDOW,
    WandbWriter,
    Write,
    WriteBacks,
    names,
    plan,
    version_of,
)
from tests.bridge.wandb.conftest import API_KEY, seed
from tests.bridge.wandb.standin import StandIn
from tests.bridge.wandb.standin_state import State
from tests.fakes.receivers import Receiver

REGISTRY = "wandb-registry-model"
FIELDS = {
    "event_type": "ADD_ARTIFACT_ALIAS",
    "entity_name": "acme-org",
    "project_name": REGISTRY,
    "artifact_collection_name": "churn",
    "artifact_version": "wandb-artifact://_id/QXJ0aWZhY3Q6Nw==",
    "artifact_version_string": f"acme-org/{REGISTRY}/churn:v1",
    "alias": "production",
}
WRITE_BACK = WriteBack(("deployed", "${alias}-done", "${tag}"), ("deployed-prod",))


# -- the payload (pure) ----------------------------------------------------------------


def test_the_version_comes_from_the_version_string_and_the_id_from_artifact_version():
    v = version_of(FIELDS)
    assert v == Write("QXJ0aWZhY3Q6Nw==", "acme-org", REGISTRY, "churn", "v1")
    assert v is not None and v.name == f"acme-org/{REGISTRY}/churn:v1"


def test_without_a_version_string_the_coordinates_come_from_the_name_fields():
    fields = {k: v for k, v in FIELDS.items() if k != "artifact_version_string"}
    assert version_of(fields) == Write("QXJ0aWZhY3Q6Nw==", "acme-org", REGISTRY, "churn", "")
    # no id and no version: nothing names the version
    assert version_of({**fields, "artifact_version": ""}) is None
    # a version string alone names it (looked up by name when sent)
    only = {"artifact_version_string": "acme/churn-training/churn-model:v3"}
    assert version_of(only) == Write(None, "acme", "churn-training", "churn-model", "v3")


def test_an_event_that_names_no_version_writes_nothing_back():
    assert plan(WRITE_BACK, {"event_type": "RUN_STATE", "project_name": "p"}) is None


def test_names_are_rendered_blank_ones_dropped_and_each_kept_once():
    fields = {**FIELDS, "tag": ""}
    assert names(("deployed", "${alias}-done", "${tag}", "deployed"), fields) == (
        "deployed",
        "production-done",
    )
    write = plan(WRITE_BACK, fields)
    assert write is not None
    assert (write.aliases, write.tags) == (("deployed", "production-done"), ("deployed-prod",))
    assert plan(WriteBack(("${tag}",), ()), fields) is None  # nothing left to add


def test_a_writes_echoes_are_the_items_its_webhooks_name():
    write = plan(WRITE_BACK, FIELDS)
    assert write is not None
    artifact = "QXJ0aWZhY3Q6Nw=="
    alias_hook = {**FIELDS, "alias": "deployed"}
    tag_hook = {**FIELDS, "event_type": "ADD_ARTIFACT_TAG", "tag": "deployed-prod"}
    noted = write.echoes(artifact)
    assert echo_items(alias_hook)[0] in noted and echo_items(tag_hook)[0] in noted
    assert echo_items(FIELDS)[0] not in noted  # the alias that started it is not an echo
    assert Write.from_json(write.to_json()) == write


# -- the delivery a concluded run queues (a real store) ------------------------------------


def route(name: str = "deploy", **outcomes: WriteBack) -> Route:
    return Route(name, Dispatch("acme/churn-svc"), write_back=tuple(outcomes.items()))


def accepted(store: SqlStore, body: dict[str, Any], route_name: str = "deploy") -> str:
    raw = json.dumps(body).encode()
    event = NewEvent(
        "evt_wb1", "wandb", "/webhooks/wandb", time.time(), raw, hashlib.sha256(raw).hexdigest()
    )
    store.accept(event, [NewDelivery("dlv_wb1", route_name, "acme/churn-svc", "X", "{}")], 0)
    return event.id


def test_a_run_outcome_of_a_route_with_write_back_queues_one_wandb_delivery(sqlite_store):
    event_id = accepted(sqlite_store, FIELDS)
    wb = WriteBacks([route(run_succeeded=WRITE_BACK)], sqlite_store, time.time)
    (made,) = wb.deliveries("run_succeeded", event_id, "dlv_wb1")
    assert made.kind == "wandb" and made.route == "deploy" and made.event_type == "run_succeeded"
    assert made.repository == f"acme-org/{REGISTRY}/churn:v1"
    assert json.loads(made.client_payload) == {
        "artifact_id": "QXJ0aWZhY3Q6Nw==",
        "entity": "acme-org",
        "project": REGISTRY,
        "collection": "churn",
        "version": "v1",
        "aliases": ["deployed", "production-done"],
        "tags": ["deployed-prod"],
    }
    assert wb.deliveries("run_failed", event_id, "dlv_wb1") == []  # not configured


def test_another_routes_dispatch_writes_nothing_back(sqlite_store):
    event_id = accepted(sqlite_store, FIELDS, route_name="publish")
    wb = WriteBacks([route(run_succeeded=WRITE_BACK), route("publish")], sqlite_store, time.time)
    assert wb.deliveries("run_succeeded", event_id, "dlv_wb1") == []


def test_an_event_without_a_version_is_logged_and_writes_nothing(sqlite_store, caplog):
    event_id = accepted(sqlite_store, {"event_type": "ADD_ARTIFACT_ALIAS", "alias": "x"})
    wb = WriteBacks([route(run_failed=WRITE_BACK)], sqlite_store, time.time)
    with caplog.at_level(logging.WARNING):
        assert wb.deliveries("run_failed", event_id, "dlv_wb1") == []
    (record,) = [r for r in caplog.records if "no write-back" in r.getMessage()]
    assert fields_of(record)["event"] == event_id


# -- the sender, against the W&B stand-in ------------------------------------------------


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(API_KEY, state=seed(State())) as s:
        yield s


def version(standin: StandIn, index: int = 1) -> dict[str, Any]:
    project = standin.state.project("acme-org", REGISTRY)
    assert project is not None
    return project.collections["churn"].versions[index]


def writer(standin: StandIn, store: SqlStore, key: str = API_KEY) -> WandbWriter:
    gql = GraphQL(standin.url, Secret(key, "env WANDB_API_KEY"), timeout=5)
    return WandbWriter(WandbApi(gql, "acme"), store, time.time)


def claimed(write: Write) -> Claimed:
    return Claimed(
        "wbk_1", "evt_1", write.name, "run_succeeded", write.to_json(), 1, 1, 0.0, kind="wandb"
    )


def a_write(standin: StandIn, artifact: bool = True, **names: tuple[str, ...]) -> Write:
    v = version(standin)
    return Write(
        v["artifact"] if artifact else None,
        "acme-org",
        REGISTRY,
        "churn",
        "v1",
        names.get("aliases", ("deployed",)),
        names.get("tags", ("deployed-prod",)),
    )


def test_the_write_adds_the_aliases_and_tags_with_the_sdks_operations(standin, sqlite_store):
    write = a_write(standin)
    assert writer(standin, sqlite_store).send(claimed(write)) == 200
    v = version(standin)
    assert "deployed" in v["aliases"] and v["tags"] == ["deployed-prod"]
    # a registry lives in the organization's entity: asked once, whatever the event said
    assert standin.state.operations == ["OrgEntity", "AddAliases", "UpdateArtifact"]
    assert sqlite_store.echoed(write.echoes(v["artifact"]), time.time())
    assert not sqlite_store.echoed(write.echoes(v["artifact"]), time.time() + ECHO_WINDOW + 1)


def test_a_registry_version_named_under_the_team_is_written_in_the_organization(
    standin, sqlite_store
):
    # W&B may name a registry version under the team's entity; the registry is the org's
    write = replace(a_write(standin, tags=()), entity="acme")
    sent = []

    def add_aliases(request: dict[str, Any]) -> tuple[int, Any]:
        sent.append(request["variables"]["input"]["aliases"][0]["entityName"])
        return 200, {"data": {"result": {"success": True}}}

    standin.answers["AddAliases"] = add_aliases
    writer(standin, sqlite_store).send(claimed(write))
    assert sent == ["acme-org"]


def test_the_write_is_noted_before_wandb_hears_of_it(standin, sqlite_store):
    write = a_write(standin)
    items = write.echoes(version(standin)["artifact"])
    seen_by_wandb = []

    def add_aliases(request: dict[str, Any]) -> tuple[int, Any]:
        seen_by_wandb.append(sqlite_store.echoed(items, time.time()))
        return 200, {"data": {"result": {"success": True}}}

    standin.answers["AddAliases"] = add_aliases
    writer(standin, sqlite_store).send(claimed(a_write(standin, tags=())))
    assert seen_by_wandb == [True]


def test_a_version_named_only_by_name_is_looked_up_first(standin, sqlite_store):
    write = a_write(standin, artifact=False, aliases=(), tags=("deployed-prod",))
    writer(standin, sqlite_store).send(claimed(write))
    assert standin.state.operations == ["OrgEntity", "ArtifactVersion", "UpdateArtifact"]
    assert version(standin)["tags"] == ["deployed-prod"]
    gone = Write(None, "acme-org", REGISTRY, "churn", "v9", ("deployed",))
    with pytest.raises(PermanentDeliveryError, match=r"no artifact version .*churn:v9"):
        writer(standin, sqlite_store).send(claimed(gone))


def test_a_protected_alias_is_refused_for_good_with_wandbs_message(standin, sqlite_store):
    standin.state.protected_aliases.add("production")
    standin.state.echo_key = True  # W&B's message quotes the credentials: never shown
    write = a_write(standin, aliases=("production",))
    with pytest.raises(PermanentDeliveryError) as caught:
        writer(standin, sqlite_store).send(claimed(write))
    message = caught.value.message
    assert "only registry admins" in message and "registry admin" in message
    assert API_KEY not in message
    assert "production" in version(standin, 1)["aliases"]  # unchanged: it was there
    assert version(standin)["tags"] == []  # nothing after the refusal


def test_a_wrong_key_is_refused_for_good(standin, sqlite_store):
    wrong = "local-ffffffffffffffffffffffffffffffffffffffff"
    with pytest.raises(PermanentDeliveryError) as caught:
        writer(standin, sqlite_store, key=wrong).send(claimed(a_write(standin)))
    assert caught.value.status == 401 and wrong not in caught.value.message


@pytest.mark.parametrize(
    ("status", "headers"), [(429, {"Retry-After": "120"}), (503, {}), (502, {"Retry-After": "7"})]
)
def test_rate_limits_and_outages_are_retried_after_what_wandb_asks(sqlite_store, status, headers):
    write = Write("QXJ0aWZhY3Q6Nw==", "acme-org", REGISTRY, "churn", "v1", ("deployed",))
    with Receiver("generic") as wandb:  # W&B answering only this
        wandb.fail_next(status, headers=headers, body={"errors": [{"message": "slow down"}]})
        gql = GraphQL(wandb.url, Secret(API_KEY, "env WANDB_API_KEY"), timeout=5)
        before = time.time()
        with pytest.raises(TransientDeliveryError) as caught:
            WandbWriter(WandbApi(gql, "acme"), sqlite_store, time.time).send(claimed(write))
        assert [r.path for r in wandb.received] == ["/graphql"]
    assert caught.value.status == status
    if "Retry-After" in headers:
        wait = float(headers["Retry-After"])
        assert caught.value.not_before is not None
        assert before + wait <= caught.value.not_before <= time.time() + wait
    else:
        assert caught.value.not_before is None


def test_no_answer_is_retried(sqlite_store):
    with StandIn(API_KEY, state=seed(State())) as gone:
        url, write = gone.url, a_write(gone)
    gql = GraphQL(url, Secret(API_KEY, "env WANDB_API_KEY"), timeout=5)
    with pytest.raises(TransientDeliveryError, match="cannot reach W&B"):
        WandbWriter(WandbApi(gql, "acme"), sqlite_store, time.time).send(claimed(write))


def test_a_dry_run_writes_nothing_to_wandb_and_says_what_it_would(standin, caplog):
    write = a_write(standin)
    with caplog.at_level(logging.INFO):
        assert DryRunSender("https://api.github.test").send(claimed(write)).status is None
    assert standin.state.operations == [] and "deployed" not in version(standin)["aliases"]
    (record,) = [r for r in caplog.records if "would add to W&B" in r.getMessage()]
    line = TextFormatter().format(record)
    assert write.name in line and "deployed-prod" in line


def test_without_a_writer_a_write_back_is_dead_with_the_fix(standin):
    sender = GitHubSender(client=None, notify=None)  # neither is used for a write-back
    with pytest.raises(PermanentDeliveryError, match="write_back"):
        sender.send(claimed(a_write(standin)))
