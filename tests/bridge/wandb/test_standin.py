"""The stand-in itself: strict where W&B is strict, so the other tests mean something."""

import requests

from tests.bridge.wandb.conftest import API_KEY, seed
from tests.bridge.wandb.standin import StandIn
from tests.bridge.wandb.standin_state import State


def post(standin, query, variables=None, key=API_KEY):
    return requests.post(
        f"{standin.url}/graphql",
        json={"query": query, "variables": variables or {}},
        auth=("api", key),
        timeout=10,
    )


def test_basic_auth_is_required():
    with StandIn(API_KEY, state=seed(State())) as standin:
        assert post(standin, "{ serverInfo { latestLocalVersionInfo } }").status_code == 200
        assert (
            post(standin, "{ serverInfo { latestLocalVersionInfo } }", key="x").status_code == 401
        )


def test_unknown_fields_and_wrong_types_are_refused_as_by_a_graphql_server():
    with StandIn(API_KEY, state=seed(State())) as standin:
        res = post(standin, '{ entity(name: "acme") { id nope } }')
        assert res.status_code == 400
        assert "Cannot query field 'nope' on type 'Entity'" in res.text
        # integration is an interface: its fields are asked for on the concrete type
        res = post(standin, '{ entity(name: "acme") { integrations { edges { node { name } } } } }')
        assert res.status_code == 400
        bad = (
            "mutation($i: CreateFilterTriggerInput!) "
            "{ createFilterTrigger(input: $i) { trigger { id } } }"
        )
        assert post(standin, bad, {"i": {"name": "x"}}).status_code == 400


def test_an_old_server_lacks_entity_triggers_and_features():
    with StandIn(API_KEY, legacy=True, state=seed(State())) as old:
        for query in (
            '{ entity(name: "acme") { triggers { edges { node { id } } } } }',
            "{ serverInfo { features { name } } }",
            '{ entity(name: "acme") { projects { edges { node { triggers { scope { ... on Entity'
            " { id } } } } } } } }",
        ):
            assert post(old, query).status_code == 400, query


def test_triggers_are_listed_by_their_scopes_owner():
    with StandIn(API_KEY, state=seed(State())) as standin:
        s = standin.state
        hook = post(
            standin,
            "mutation($i: CreateGenericWebhookIntegrationInput!) { createGenericWebhookIntegration"
            "(input: $i) { integration { id } } }",
            {"i": {"entityName": "acme", "name": "h", "urlEndpoint": "https://h.acme.test/x"}},
        ).json()["data"]["createGenericWebhookIntegration"]["integration"]["id"]
        registry = s.project("acme-org", "wandb-registry-model")
        create = (
            "mutation($i: CreateFilterTriggerInput!) { createFilterTrigger(input: $i) "
            "{ trigger { id } } }"
        )
        base = {
            "name": "t",
            "enabled": True,
            "scopeType": "PROJECT",
            "scopeID": registry.id,
            "triggeringEventType": "LINK_MODEL",
            "eventFilter": "{}",
            "triggeredActionType": "GENERIC_WEBHOOK",
            "triggeredActionConfig": {"genericWebhookActionInput": {"integrationID": hook}},
        }
        assert post(standin, create, {"i": base}).status_code == 200
        assert post(standin, create, {"i": base}).status_code == 409  # the same name again
        listing = '{ entity(name: "%s") { triggers { edges { node { name } } } } }'
        assert post(standin, listing % "acme-org").json()["data"]["entity"]["triggers"]["edges"]
        assert not post(standin, listing % "acme").json()["data"]["entity"]["triggers"]["edges"]
        localhost = {"entityName": "acme", "name": "l", "urlEndpoint": "https://localhost/x"}
        res = post(
            standin,
            "mutation($i: CreateGenericWebhookIntegrationInput!) { createGenericWebhookIntegration"
            "(input: $i) { integration { id } } }",
            {"i": localhost},
        )
        assert "localhost" in res.json()["errors"][0]["message"]
