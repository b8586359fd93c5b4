"""plan / apply / list / delete end to end through the CLI, checked in the stand-in's state."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from bridge.wandb.wanted import MARKER
from tests.bridge.wandb.conftest import (
    ACCESS_TOKEN,
    API_KEY,
    BRIDGE_URL,
    ENV,
    ROUTES,
    WEBHOOK_SECRET,
    config_dict,
    seed,
)
from tests.bridge.wandb.standin import StandIn
from tests.bridge.wandb.standin_state import State, Trigger, Webhook

HOOK_URL = f"{BRIDGE_URL}/webhooks/wandb"


def triggers(standin):
    return {t.name: t for t in standin.state.triggers.values()}


def test_plan_changes_nothing_then_apply_creates_everything(wandb, write_config, cli):
    config = write_config()
    res = cli("wandb", "plan", "--config", config)
    assert res.code == 0
    assert wandb.state.mutations == [] and wandb.state.webhooks == {}

    res = cli("wandb", "apply", "--config", config)
    assert res.code == 0, res.err
    (hook,) = wandb.state.webhooks.values()
    assert (hook.entity, hook.name, hook.url) == ("acme", "wandb-github-bridge", HOOK_URL)
    assert (hook.secret_ref, hook.token_ref) == ("BRIDGE_WEBHOOK_SECRET", "BRIDGE_ACCESS_TOKEN")
    made = triggers(wandb)
    assert set(made) == {
        "wandb-github-bridge: deploy-production",
        "wandb-github-bridge: evaluate",
        "wandb-github-bridge: canary",
    }
    registry = wandb.state.project("acme-org", "wandb-registry-model")
    deploy = made["wandb-github-bridge: deploy-production"]
    assert (deploy.scope_type, deploy.scope_id) == (
        "ARTIFACT_COLLECTION",
        registry.collections["churn"].id,
    )
    assert deploy.event == "ADD_ARTIFACT_ALIAS" and deploy.enabled
    assert json.loads(deploy.filter) == {
        "filter": {"$or": [{"$and": [{"alias": {"$eq": "production"}}]}]}
    }
    assert deploy.action == "GENERIC_WEBHOOK" and deploy.integration_id == hook.id
    assert json.loads(deploy.payload)["artifact_version_string"] == "${artifact_version_string}"
    assert deploy.description.startswith(MARKER)
    evaluate = made["wandb-github-bridge: evaluate"]
    assert (evaluate.scope_type, evaluate.scope_id, evaluate.event) == (
        "PROJECT",
        registry.id,
        "LINK_MODEL",
    )
    canary = made["wandb-github-bridge: canary"]
    assert (canary.scope_type, canary.scope_id) == ("ENTITY", wandb.state.entities["acme"]["id"])

    # A second apply sends no mutation at all.
    sent = list(wandb.state.mutations)
    assert cli("wandb", "apply", "--config", config).code == 0
    assert wandb.state.mutations == sent


def test_apply_changes_and_deletes_only_what_the_bridge_manages(wandb, write_config, cli):
    config = write_config()
    assert cli("wandb", "apply", "--config", config).code == 0
    hook = next(iter(wandb.state.webhooks.values()))
    # Someone's own automation on the same webhook, and one on another webhook.
    other = Webhook("hook-2", "acme", "ops-alerts", "https://ops.acme.test/hook", None, None)
    wandb.state.webhooks[other.id] = other
    registry = wandb.state.project("acme-org", "wandb-registry-model")
    for tid, name, hook_id, description in (
        ("t-own", "notify ops", other.id, "hand-made"),
        ("t-same-hook", "hand-made on the bridge", hook.id, "made in the UI"),
    ):
        wandb.state.triggers[tid] = Trigger(
            tid, name, description, True, "PROJECT", registry.id, "LINK_MODEL",
            '{"filter": {"$or": [{"$and": []}]}}', "GENERIC_WEBHOOK", hook_id, "{}", "2025",
        )  # fmt: skip
    before = {tid: vars(t).copy() for tid, t in wandb.state.triggers.items()}

    routes = [dict(r) for r in ROUTES if r["name"] != "canary"]
    routes[0] = {**routes[0], "when": {**routes[0]["when"], "alias": ["production", "stable"]}}
    config = write_config(routes)
    sent = len(wandb.state.mutations)
    assert cli("wandb", "apply", "--config", config).code == 0
    assert wandb.state.mutations[sent:] == ["updateFilterTrigger", "deleteTrigger"]
    made = triggers(wandb)
    assert "wandb-github-bridge: canary" not in made
    deploy = made["wandb-github-bridge: deploy-production"]
    assert json.loads(deploy.filter)["filter"]["$or"][0]["$and"] == [
        {"alias": {"$in": ["production", "stable"]}}
    ]
    for tid in ("t-own", "t-same-hook"):
        assert vars(wandb.state.triggers[tid]) == before[tid]

    # A change made in W&B's UI is undone by the next apply; W&B's spacing is no change.
    deploy.enabled = False
    made["wandb-github-bridge: evaluate"].payload = json.dumps(
        json.loads(made["wandb-github-bridge: evaluate"].payload)
    )  # compact text, same JSON value
    sent = len(wandb.state.mutations)
    assert cli("wandb", "apply", "--config", config).code == 0
    assert wandb.state.mutations[sent:] == ["updateFilterTrigger"] and deploy.enabled


def test_a_name_taken_by_someone_else_stops_apply(wandb, write_config, cli):
    config = write_config()
    assert cli("wandb", "apply", "--config", config).code == 0
    taken = triggers(wandb)["wandb-github-bridge: evaluate"]
    taken.description = "made by hand"
    sent = len(wandb.state.mutations)
    for command in ("plan", "apply"):
        res = cli("wandb", command, "--config", config)
        assert res.code == 1
        assert "'wandb-github-bridge: evaluate'" in res.err and "rename" in res.err
    assert len(wandb.state.mutations) == sent and taken.description == "made by hand"


def test_an_integration_pointing_elsewhere_stops_apply(wandb, write_config, cli):
    wandb.state.webhooks["h"] = Webhook(
        "h", "acme", "wandb-github-bridge", "https://old.acme.test/x", None, None
    )
    res = cli("wandb", "apply", "--config", write_config())
    assert res.code == 1 and "https://old.acme.test/x" in res.err
    assert wandb.state.mutations == []


def test_list_and_list_json(wandb, write_config, cli):
    config = write_config()
    assert cli("wandb", "apply", "--config", config).code == 0
    other = Webhook("hook-2", "acme", "ops-alerts", "https://ops.acme.test/hook", None, None)
    slack = Webhook("hook-3", "acme", "team", "#ml", None, None, kind="SlackIntegration")
    wandb.state.webhooks.update({other.id: other, slack.id: slack})
    registry = wandb.state.project("acme-org", "wandb-registry-model")
    wandb.state.triggers["t-slack"] = Trigger(
        "t-slack", "slack ping", None, False, "PROJECT", registry.id, "LINK_MODEL",
        '{"filter": {"$or": [{"$and": []}]}}', "NOTIFICATION", slack.id, None, "2025",
    )  # fmt: skip
    res = cli("wandb", "list", "--json", "--config", config)
    assert res.code == 0
    doc = json.loads(res.out)
    assert {i["name"]: i["this_bridge"] for i in doc["integrations"]} == {
        "wandb-github-bridge": True,
        "ops-alerts": False,
    }
    by_name = {a["name"]: a for a in doc["automations"]}
    assert set(by_name) == {t.name for t in wandb.state.triggers.values()}
    deploy = by_name["wandb-github-bridge: deploy-production"]
    assert deploy["managed"] and deploy["this_bridge"] and deploy["enabled"]
    assert deploy["scope"]["type"] == "ARTIFACT_COLLECTION"
    assert deploy["filter_words"] == "alias is production"
    assert deploy["integration"]["url"] == HOOK_URL
    slack_ping = by_name["slack ping"]
    assert not slack_ping["managed"] and not slack_ping["enabled"]
    assert slack_ping["action"] == "NotificationTriggeredAction"
    text = cli("wandb", "list", "--config", config)
    assert text.code == 0 and wandb.state.mutations.count("deleteTrigger") == 0


def test_list_pages_through_everything(wandb, write_config, cli):
    wandb.state.page_cap = 2  # every listing takes several pages
    config = write_config()
    assert cli("wandb", "apply", "--config", config).code == 0
    doc = json.loads(cli("wandb", "list", "--json", "--config", config).out)
    assert len(doc["automations"]) == 3
    sent = len(wandb.state.mutations)
    assert cli("wandb", "apply", "--config", config).code == 0
    assert len(wandb.state.mutations) == sent


def test_delete_asks_unless_yes(wandb, write_config, cli):
    config = write_config()
    assert cli("wandb", "apply", "--config", config).code == 0
    name = "wandb-github-bridge: evaluate"
    res = cli("wandb", "delete", name, "--config", config, stdin="n\n")
    assert res.code == 1 and name in triggers(wandb)
    res = cli("wandb", "delete", name, "--config", config, stdin="")  # no answer: no
    assert res.code == 1 and name in triggers(wandb)
    res = cli("wandb", "delete", name, "--config", config, stdin="yes\n")
    assert res.code == 0 and name not in triggers(wandb)
    assert "apply" in res.out  # the route still wants it: the next apply brings it back
    name = "wandb-github-bridge: canary"
    assert cli("wandb", "--config", config, "delete", "--yes", name).code == 0
    assert name not in triggers(wandb)


def test_delete_refuses_what_the_bridge_does_not_manage(wandb, write_config, cli):
    config = write_config()
    assert cli("wandb", "apply", "--config", config).code == 0
    triggers(wandb)["wandb-github-bridge: evaluate"].description = "mine"
    sent = len(wandb.state.mutations)
    res = cli("wandb", "delete", "wandb-github-bridge: evaluate", "--yes", "--config", config)
    assert res.code == 1 and "not managed" in res.err
    res = cli("wandb", "delete", "no such thing", "--yes", "--config", config)
    assert res.code == 1 and "no automation named" in res.err
    assert len(wandb.state.mutations) == sent


def test_an_old_server_is_listed_project_by_project(env, tmp_path, cli):
    with StandIn(API_KEY, legacy=True, state=seed(State())) as old:
        old.state.page_cap = 1
        path = tmp_path / "old.yaml"
        path.write_text(yaml.safe_dump(config_dict(old.url, tmp_path)))
        res = cli("wandb", "apply", "--config", str(path))
        assert res.code == 0, res.err
        # no entity scope on an old server: the route without a project is reported
        assert "canary" in res.out and "project_name" in res.out
        assert len(old.state.triggers) == 2
        assert cli("wandb", "apply", "--config", str(path)).code == 0
        assert old.state.mutations.count("createFilterTrigger") == 2
        assert len(old.state.mutations) == 3  # and the integration; nothing on the 2nd apply
        assert "GetEntityAutomationsLegacy" in old.state.operations
        assert "GetEntityAutomations" not in old.state.operations
        doc = json.loads(cli("wandb", "list", "--json", "--config", str(path)).out)
        assert len(doc["automations"]) == 2


def test_secrets_are_checked_and_created_on_request(wandb, write_config, cli):
    wandb.state.secrets["acme"].clear()
    config = write_config()
    res = cli("wandb", "apply", "--config", config)
    assert res.code == 1 and "BRIDGE_WEBHOOK_SECRET" in res.err and "--create-secrets" in res.err
    assert wandb.state.mutations == []
    res = cli("wandb", "apply", "--create-secrets", "--config", config)
    assert res.code == 0, res.err
    assert wandb.state.secrets["acme"] == {
        "BRIDGE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "BRIDGE_ACCESS_TOKEN": ACCESS_TOKEN,
    }
    assert len(wandb.state.webhooks) == 1 and len(wandb.state.triggers) == 3
    assert WEBHOOK_SECRET not in res.out + res.err


def test_a_server_without_a_secret_list_is_trusted(env, tmp_path, cli):
    with StandIn(API_KEY, secrets=False, state=seed(State())) as standin:
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(config_dict(standin.url, tmp_path)))
        res = cli("wandb", "plan", "--config", str(path))
        assert res.code == 0 and "cannot check" in res.out
        assert cli("wandb", "apply", "--config", str(path)).code == 0
        assert len(standin.state.triggers) == 3


@pytest.mark.timeout(120)
def test_the_console_script_end_to_end(wandb, write_config):
    config = write_config()

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "bridge", "wandb", *args, "--config", config],
            capture_output=True,
            text=True,
            env={**os.environ, **ENV},
            timeout=60,
            check=False,
        )

    assert run("apply").returncode == 0
    listed = run("list", "--json")
    assert listed.returncode == 0
    assert {a["name"] for a in json.loads(listed.stdout)["automations"]} == set(triggers(wandb))
    sent = len(wandb.state.mutations)
    assert run("apply").returncode == 0 and len(wandb.state.mutations) == sent
