"""From routes to wanted automations, filters and payload templates (pure)."""

import re
from pathlib import Path

import pytest

from bridge.config.load import load_config, parse_config
from bridge.wandb.filters import condition, glob_regex, words
from bridge.wandb.model import ScopeRef
from bridge.wandb.wanted import MARKER, payload_template, wanted
from tests.bridge.wandb.conftest import ENV, ROUTES, config_dict
from tests.bridge.wandb.standin_state import MODERN_FEATURES

ROOT = Path(__file__).resolve().parents[3]


def configured(routes, tmp_path, **wandb):
    return parse_config(config_dict("https://api.wandb.ai", tmp_path, routes, **wandb), ENV)


def route(name="r", **when):
    return {"name": name, "when": when, "dispatch": {"repository": "acme/svc"}}


def test_the_sample_routes(tmp_path):
    cfg = configured(ROUTES, tmp_path)
    found, skipped = wanted(cfg, cfg.wandb, MODERN_FEATURES)
    assert skipped == []
    by_route = {w.route: w for w in found}
    deploy = by_route["deploy-production"]
    assert deploy.name == "wandb-github-bridge: deploy-production"
    assert deploy.event == "ADD_ARTIFACT_ALIAS"
    assert deploy.scope == ScopeRef("ARTIFACT_COLLECTION", "wandb-registry-model", "churn")
    assert deploy.filter == {"$or": [{"$and": [{"alias": {"$eq": "production"}}]}]}
    assert deploy.description.startswith(MARKER)
    # the route it is for; what the route reads (when: keys, template variables), what
    # the action reads and what names the change
    assert list(deploy.payload) == [
        "bridge_route",
        "event_type",
        "event_author",
        "project_name",
        "artifact_collection_name",
        "artifact_version",
        "artifact_version_string",
        "alias",
        "tag",
    ]
    assert deploy.payload["bridge_route"] == "deploy-production"  # a literal, not a variable
    assert deploy.payload["alias"] == "${alias}"
    evaluate = by_route["evaluate"]
    assert evaluate.event == "LINK_MODEL"  # LINK_ARTIFACT on the wire
    assert evaluate.scope == ScopeRef("PROJECT", "wandb-registry-model")
    assert evaluate.filter == {"$or": [{"$and": []}]}
    # the default client_payload copies every W&B field: the template carries them all
    assert {"entity_name", "tag"} <= set(evaluate.payload)
    canary = by_route["canary"]
    assert canary.scope == ScopeRef("ENTITY")
    assert canary.filter == {"$or": [{"$and": [{"alias": {"$regex": "^canary-.*$"}}]}]}
    assert "artifact_metadata.accuracy" in canary.payload
    notes = " ".join(canary.notes)
    assert "BUILD_AND_DEPLOY" in notes and "churn-*" in notes and "artifact_metadata" in notes


def test_the_quickstart_routes_need_an_entity_scope(tmp_path):
    cfg = load_config(str(ROOT / "examples" / "quickstart.yaml"))
    wb = configured([], tmp_path).wandb
    found, skipped = wanted(cfg, wb, MODERN_FEATURES)
    assert {(w.route, w.event) for w in found} == {
        ("deploy-production", "ADD_ARTIFACT_ALIAS"),
        ("evaluate-new-versions", "LINK_MODEL"),
    }
    found, skipped = wanted(cfg, wb, [])  # a server that cannot watch a whole entity
    assert found == []
    assert len(skipped) == 2 and all("project_name" in s.reason for s in skipped)


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ({"event_type": "BUILD_AND_DEPLOY"}, "names no W&B artifact event"),
        ({"event_type": "RUN_METRIC"}, "W&B's UI"),
        ({"event_type": "CREATE_ARTIFACT", "project_name": "p"}, "one collection"),
        ({"event_type": "ADD_ARTIFACT_ALIAS", "alias": "prod-[x"}, "cannot express"),
    ],
)
def test_routes_that_no_automation_can_serve_are_reported(tmp_path, when, reason):
    cfg = configured([route(**when)], tmp_path)
    found, skipped = wanted(cfg, cfg.wandb, MODERN_FEATURES)
    assert found == []
    assert [s.route for s in skipped] == ["r"] and reason in skipped[0].reason


def test_a_route_for_another_source_is_reported(tmp_path):
    raw = config_dict("https://api.wandb.ai", tmp_path, [])
    raw["sources"]["other"] = {"allow_unauthenticated": True}
    raw["routes"] = [{**route(event_type="LINK_ARTIFACT"), "sources": ["other"]}]
    cfg = parse_config(raw, ENV)
    found, skipped = wanted(cfg, cfg.wandb, MODERN_FEATURES)
    assert found == [] and "'wandb'" in skipped[0].reason


def test_gated_events_need_the_server_feature(tmp_path):
    cfg = configured([route(event_type="ADD_ARTIFACT_TAG", project_name="p", tag="x")], tmp_path)
    assert wanted(cfg, cfg.wandb, MODERN_FEATURES)[0][0].filter == {
        "$or": [{"$and": [{"tag": {"$eq": "x"}}]}]
    }
    found, skipped = wanted(cfg, cfg.wandb, [])
    assert found == [] and "AUTOMATION_EVENT_ADD_ARTIFACT_TAG" in skipped[0].reason


def test_several_events_and_scopes_make_several_named_automations(tmp_path):
    when = {
        "event_type": "*",
        "project_name": ["wandb-registry-model", "wandb-registry-data"],
        "artifact_collection_name": "churn",
    }
    cfg = configured([route("multi", **when)], tmp_path)
    found, _ = wanted(cfg, cfg.wandb, MODERN_FEATURES)
    assert len(found) == 4 and len({w.name for w in found}) == 4
    assert {w.event for w in found} == {"LINK_MODEL", "ADD_ARTIFACT_ALIAS"}
    assert "wandb-github-bridge: multi (LINK_MODEL, collection wandb-registry-data/churn)" in {
        w.name for w in found
    }


def test_workflow_routes_carry_their_inputs_variables(tmp_path):
    r = {
        "name": "wf",
        "when": {"event_type": "LINK_ARTIFACT", "project_name": "p"},
        "workflow": {
            "repository": "acme/svc",
            "file": "evaluate.yml",
            "ref": "${artifact_metadata.branch}",
            "inputs": {"model": "${artifact_version_string}"},
        },
    }
    cfg = configured([r], tmp_path)
    template = payload_template(cfg.routes[0])
    assert "artifact_metadata.branch" in template and "entity_name" not in template
    assert template["bridge_route"] == "wf"


def test_globs_become_anchored_regexes_that_match_what_fnmatch_matches():
    from fnmatch import fnmatchcase

    for glob in ("prod-*", "v?", "a.b+c", "[!x]y", "[^q]", "(a|b)*"):
        regex = glob_regex(glob)
        for text in (
            "prod-1",
            "prod-",
            "v1",
            "v12",
            "a.b+c",
            "axbc",
            "zy",
            "xy",
            "^",
            "q",
            "(a|b)z",
        ):
            assert bool(re.fullmatch(regex, text)) == fnmatchcase(text, glob), (glob, text)
    assert condition("alias", ["b", "a"]) == {"alias": {"$in": ["a", "b"]}}
    assert condition("alias", ["p*", "q"]) == {"alias": {"$regex": "^(?:p.*|q)$"}}


def test_filters_in_words():
    assert words({"$or": [{"$and": []}]}) == "any"
    assert words({"$or": [{"$and": [{"alias": {"$eq": "production"}}]}]}) == "alias is production"
    two = {"$or": [{"$and": [{"alias": {"$in": ["a", "b"]}}, {"tag": {"$regex": "^x$"}}]}]}
    assert words(two) == "alias is one of a, b and tag matches ^x$"
    assert words({"$or": [{"alias": {"$eq": "a"}}, {"alias": {"$eq": "b"}}]}) == (
        "(alias is a or alias is b)"
    )
    assert words({"weird": [1]}) == '{"weird":[1]}'
