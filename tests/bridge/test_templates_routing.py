import json

import pytest

from bridge.config.model import Dispatch, Route
from bridge.errors import RequestRefused
from bridge.routing.limits import MAX_BODY_BYTES
from bridge.routing.routes import (
    WANDB_FIELDS,
    default_payload,
    plan_dispatches,
    value_matches,
    webhook_fields,
)
from bridge.routing.templates import render, template_problems

FIELDS = {
    "event_type": "ADD_ARTIFACT_ALIAS",
    "event_author": "alice",
    "artifact_version_string": "acme/model-registry/churn:production",
    "artifact_collection_name": "churn-v2",
    "score": 0.93,
    "meta": {"accuracy": 0.9},
}


def test_whole_placeholder_keeps_json_value():
    assert render("${score}", FIELDS) == 0.93
    assert render("${meta}", FIELDS) == {"accuracy": 0.9}


def test_interpolation_and_missing_fields_render_empty():
    assert render("by ${event_author} (${missing})", FIELDS) == "by alice ()"
    assert render("${missing}", FIELDS) == ""
    assert render("s=${score}", FIELDS) == "s=0.93"
    assert render({"a": ["${event_author}", 1]}, FIELDS) == {"a": ["alice", 1]}


def test_dotted_lookup_into_nested_objects():
    assert render("${meta.accuracy}", FIELDS) == 0.9


def test_template_problems():
    assert template_problems("${ok_name}") == []
    assert template_problems({"a": "${bad name}"})
    assert template_problems("${unclosed")


def test_alias_falls_back_to_version_suffix():
    fields = webhook_fields({"artifact_version_string": "a/b/c:staging"}, "evt_1")
    assert fields["alias"] == "staging"
    fields = webhook_fields({"artifact_version_string": "a/b/c:v3", "alias": "prod"}, "evt_1")
    assert fields["alias"] == "prod"


def test_github_shaped_body_reads_client_payload():
    body = {"event_type": "BUILD", "client_payload": {"entity_name": "acme"}}
    fields = webhook_fields(body, "evt_1")
    assert fields["entity_name"] == "acme" and fields["event_type"] == "BUILD"
    body["client_payload"]["event_type"] = "LINK_MODEL"
    assert webhook_fields(body, "evt_1")["event_type"] == "LINK_MODEL"


@pytest.mark.parametrize(
    ("pattern", "value"), [("LINK_ARTIFACT", "LINK_MODEL"), ("LINK_MODEL", "LINK_ARTIFACT")]
)
def test_link_events_are_one_event(pattern, value):
    assert value_matches("event_type", value, [pattern])
    assert not value_matches("alias", value, [pattern])


def route(**when):
    return Route("r", Dispatch("acme/svc"), when=tuple((k, tuple(v)) for k, v in when.items()))


def test_route_matching_with_globs_and_lists():
    fields = webhook_fields(dict(FIELDS), "evt_1")
    r = route(event_type=["ADD_*"], alias=["production"], artifact_collection_name=["churn-*"])
    assert len(plan_dispatches([r], "wandb", fields)) == 1
    assert plan_dispatches([route(alias=["staging"])], "wandb", fields) == []
    restricted = Route("r", Dispatch("acme/svc"), sources=("other",))
    assert plan_dispatches([restricted], "wandb", fields) == []


def test_default_payload_has_wandb_fields_and_event_id_within_limit():
    body = {k: f"v-{k}" for k in (*WANDB_FIELDS, "extra1", "extra2")}
    assert len(WANDB_FIELDS) == 9  # W&B's variables (reference/wandb.md), bar the metadata
    assert len(default_payload(webhook_fields(body, "evt_1"))) == 9
    (d,) = plan_dispatches(
        [Route("r", Dispatch("acme/svc"))], "wandb", webhook_fields(body, "evt_1")
    )
    assert len(d.client_payload) == 10
    assert d.client_payload["bridge_event_id"] == "evt_1"
    assert "extra1" not in d.client_payload


def test_rendered_dispatch_event_type_and_payload():
    r = Route(
        "deploy", Dispatch("acme/svc", "DEPLOY_${alias}", {"model": "${artifact_version_string}"})
    )
    (d,) = plan_dispatches([r], "wandb", webhook_fields(dict(FIELDS), "evt_9"))
    assert d.event_type == "DEPLOY_production"
    assert d.client_payload == {
        "model": "acme/model-registry/churn:production",
        "bridge_event_id": "evt_9",
    }


def test_a_route_that_breaks_githubs_limits_is_refused():
    r = Route("big", Dispatch("acme/svc", "E", {"x": "${blob}"}))
    fields = webhook_fields({"blob": "x" * 70_000}, "evt_1")
    with pytest.raises(RequestRefused) as exc:
        plan_dispatches([r], "wandb", fields)
    assert exc.value.status == 422 and "route 'big'" in exc.value.message


def test_the_event_id_is_added_only_where_it_fits_never_a_422_of_its_own():
    # A payload just under GitHub's size limit: the id would push it over, so it is left
    # out rather than the route being refused (one rule, in routing.limits.plan).
    fields = webhook_fields({"blob": "x" * (MAX_BODY_BYTES - 60)}, "evt_1")
    r = Route("near", Dispatch("acme/svc", "E", {"x": "${blob}"}))
    (d,) = plan_dispatches([r], "wandb", fields)
    assert "bridge_event_id" not in d.client_payload
    ten = Route("ten", Dispatch("acme/svc", "E", {f"k{i}": "v" for i in range(10)}))
    (d,) = plan_dispatches([ten], "wandb", fields)
    assert len(d.client_payload) == 10 and "bridge_event_id" not in d.client_payload
    nine = Route("nine", Dispatch("acme/svc", "E", {f"k{i}": "v" for i in range(9)}))
    (d,) = plan_dispatches([nine], "wandb", fields)
    assert d.client_payload["bridge_event_id"] == "evt_1"
    assert json.loads(d.payload_json) == d.client_payload


def test_non_ascii_text_is_kept_as_is_when_matching_and_rendering():
    fields = webhook_fields({"event_type": "X", "tag": {"a": "é"}}, "evt_1")
    assert render("t=${tag}", fields) == 't={"a":"é"}'
    assert value_matches("tag", {"a": "é"}, ['{"a":"é"}'])
