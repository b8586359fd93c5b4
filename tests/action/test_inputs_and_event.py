"""Reading inputs, the event, and artifact references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from action.errors import InputError
from action.event import canonical_event_type, event_type_matches, load_event, read_trigger
from action.inputs import DEFAULT_BASE_URL, read_settings, split_list
from action.refs import IdRef, NameRef, parse_ref


def test_defaults() -> None:
    settings = read_settings({"WANDB_API_KEY": " key \n", "GITHUB_WORKSPACE": "/ws"})
    assert settings.api_key == "key"
    assert settings.base_url == DEFAULT_BASE_URL
    assert settings.verify is True and settings.skip_references is False
    assert settings.concurrency == 8
    assert settings.event_types == () and settings.aliases == ()
    assert str(settings.workspace) == "/ws"


def test_inputs_win_over_wandb_variables() -> None:
    settings = read_settings(
        {
            "WANDB_API_KEY": "env",
            "WANDB_BASE_URL": "https://env.example",
            "WANDB_ACTION_API_KEY": "input",
            "WANDB_ACTION_BASE_URL": "https://wandb.acme.dev/",
            "WANDB_ACTION_VERIFY": "False",
            "WANDB_ACTION_SKIP_REFERENCES": "yes",
            "WANDB_ACTION_EVENT_TYPES": "LINK_MODEL, ADD_ARTIFACT_ALIAS,",
        }
    )
    assert (settings.api_key, settings.base_url) == ("input", "https://wandb.acme.dev")
    assert settings.verify is False and settings.skip_references is True
    assert settings.event_types == ("LINK_MODEL", "ADD_ARTIFACT_ALIAS")
    assert read_settings({"WANDB_BASE_URL": "https://env.example"}).base_url == (
        "https://env.example"
    )


def test_every_problem_at_once() -> None:
    with pytest.raises(InputError) as caught:
        read_settings(
            {
                "WANDB_ACTION_VERIFY": "sure",
                "WANDB_ACTION_CONCURRENCY": "many",
                "WANDB_ACTION_BASE_URL": "ftp://x",
            }
        )
    message = str(caught.value)
    assert "'verify'" in message and "'concurrency'" in message and "'base-url'" in message


def test_split_list() -> None:
    assert split_list(" a, b\nc,, ") == ("a", "b", "c")


@pytest.mark.parametrize(
    ("event_type", "wanted", "matches"),
    [
        ("LINK_MODEL", ["LINK_ARTIFACT"], True),
        ("link_artifact", ["LINK_MODEL"], True),
        ("ADD_ARTIFACT_ALIAS", ["add_artifact_alias"], True),
        ("ADD_ARTIFACT_ALIAS", ["LINK_MODEL", "CREATE_ARTIFACT"], False),
        ("", ["LINK_MODEL"], False),
    ],
)
def test_event_type_matching(event_type: str, wanted: list[str], matches: bool) -> None:
    assert event_type_matches(event_type, wanted) is matches
    assert canonical_event_type("RUN_METRIC") == "RUN_METRIC"  # unknown ones pass through


def test_trigger_from_a_dispatch() -> None:
    event = {
        "action": "BUILD_AND_DEPLOY",
        "client_payload": {
            "artifact_version": "wandb-artifact://_id/QXJ0aWZhY3Q6MQ==",
            "artifact_version_string": "acme/churn/model:production",
            "event_author": "alice",
        },
    }
    trigger = read_trigger(event, "", "")
    assert trigger.artifact == "acme/churn/model:production"
    assert (trigger.event_type, trigger.event_author) == ("BUILD_AND_DEPLOY", "alice")
    assert read_trigger(event, "", "x/y/z:v1").artifact == "x/y/z:v1"


def test_trigger_from_a_github_shaped_payload_input() -> None:
    payload = {
        "event_type": "DEPLOY",
        "client_payload": {"artifact_version": "wandb-artifact://_id/X"},
    }
    trigger = read_trigger({}, json.dumps(payload), "")
    assert (trigger.artifact, trigger.event_type) == ("wandb-artifact://_id/X", "DEPLOY")


def test_load_event(tmp_path: Path) -> None:
    assert load_event("") == {}
    assert load_event(str(tmp_path / "absent.json")) == {}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="GITHUB_EVENT_PATH"):
        load_event(str(tmp_path / "bad.json"))


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("acme/churn/model:production", NameRef("acme", "churn", "model", "production")),
        ("acme/churn/model", NameRef("acme", "churn", "model", "latest")),
        ("wandb-artifact://acme/p/m.v2:v3", NameRef("acme", "p", "m.v2", "v3")),
        ("wandb-artifact://_id/QXJ0aWZhY3Q6MQ==", IdRef("QXJ0aWZhY3Q6MQ==")),
    ],
)
def test_refs(text: str, ref: NameRef | IdRef) -> None:
    assert parse_ref(text) == ref
    assert str(parse_ref(str(ref))) == str(ref)


@pytest.mark.parametrize(
    "text",
    [
        "model:v1",
        "a/b/c/d:v1",
        "a/b/c:v1:v2",
        "wandb-artifact://_id/",
        "a//c:v1",
        "a/b c/d",
        "a/b/c:v1\n::warning::forged",
    ],
)
def test_bad_refs(text: str) -> None:
    with pytest.raises(InputError, match="neither"):
        parse_ref(text)


@pytest.mark.parametrize(
    "node_id", ["QXJ0\naWZhY3Q6MQ==", "QXJ0aWZhY3Q6MQ==\r\n::warning::x", "a\x1bb", "a b", "a\x85b"]
)
def test_an_id_with_a_line_break_or_control_character_is_refused(node_id: str) -> None:
    with pytest.raises(InputError, match="line break, white space or another control"):
        parse_ref("wandb-artifact://_id/" + node_id)


def test_registry_ref() -> None:
    assert NameRef("acme", "wandb-registry-model", "churn", "v1").is_registry
