"""One promotion, one dispatch per route: a managed automation's webhook names its route.

Two routes on the same change become two automations, so W&B sends two webhooks with
different templates. Each must reach the route it was made for and no other.
"""

import json

from bridge.config.load import parse_config
from bridge.wandb.render import fill, judge, sample_values
from bridge.wandb.wanted import wanted
from tests.bridge.wandb.conftest import ENV, config_dict
from tests.bridge.wandb.standin_state import MODERN_FEATURES

TWO_ROUTES = [
    {
        "name": "deploy",
        "when": {
            "event_type": "ADD_ARTIFACT_ALIAS",
            "alias": "production",
            "project_name": "wandb-registry-model",
        },
        "dispatch": {
            "repository": "acme/churn-svc",
            "client_payload": {"collection": "${artifact_collection_name}"},
        },
    },
    {
        "name": "model-card",
        "when": {
            "event_type": "ADD_ARTIFACT_ALIAS",
            "alias": "production",
            "project_name": "wandb-registry-model",
        },
        "dispatch": {
            "repository": "acme/model-cards",
            "client_payload": {"model": "${artifact_version_string}"},
        },
    },
]


def automations(tmp_path, routes=TWO_ROUTES):
    cfg = parse_config(config_dict("https://api.wandb.ai", tmp_path, routes), ENV)
    found, skipped = wanted(cfg, cfg.wandb, MODERN_FEATURES)
    assert skipped == []
    return cfg, found


def test_each_automations_webhook_reaches_its_own_route_only(tmp_path):
    cfg, found = automations(tmp_path)
    assert len(found) == 2
    values = sample_values("ADD_ARTIFACT_ALIAS", "acme")
    dispatched = []
    for automation in found:
        body, unknown = fill(json.dumps(automation.payload), values)
        assert unknown == []
        verdicts = judge(cfg, "wandb", body.encode())
        made = [v for v in verdicts if v.dispatch is not None]
        assert [v.route for v in made] == [automation.route]
        other = next(v for v in verdicts if v.route != automation.route)
        assert f"for route {automation.route!r}" in (other.why_not or "")
        dispatched += [v.dispatch for v in made]
    # one dispatch per repository, each rendered from the template made for its route
    by_repo = {d.repository: d.client_payload for d in dispatched}
    assert len(dispatched) == 2 and set(by_repo) == {"acme/churn-svc", "acme/model-cards"}
    assert by_repo["acme/churn-svc"]["collection"] == "churn"
    assert by_repo["acme/model-cards"]["model"] == "acme/wandb-registry-model/churn:production"


def test_the_route_still_checks_its_own_conditions(tmp_path):
    cfg, found = automations(tmp_path)
    deploy = next(a for a in found if a.route == "deploy")
    values = {**sample_values("ADD_ARTIFACT_ALIAS", "acme"), "alias": "staging"}
    body, _ = fill(json.dumps(deploy.payload), values)
    assert all(v.dispatch is None for v in judge(cfg, "wandb", body.encode()))


def test_a_webhook_without_the_route_key_matches_every_route_as_before(tmp_path):
    cfg, _ = automations(tmp_path)
    body = json.dumps(
        {
            "event_type": "ADD_ARTIFACT_ALIAS",
            "alias": "production",
            "project_name": "wandb-registry-model",
            "artifact_collection_name": "churn",
        }
    )
    made = [v.route for v in judge(cfg, "wandb", body.encode()) if v.dispatch is not None]
    assert made == ["deploy", "model-card"]


def test_a_webhook_for_a_route_the_config_lost_dispatches_nothing(tmp_path):
    cfg, found = automations(tmp_path)
    body, _ = fill(
        json.dumps({**found[0].payload, "bridge_route": "renamed-away"}),
        sample_values("ADD_ARTIFACT_ALIAS", "acme"),
    )
    assert all(v.dispatch is None for v in judge(cfg, "wandb", body.encode()))
