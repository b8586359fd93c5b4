"""render: fill a payload template as W&B does, then route it as the bridge would."""

import json

import pytest

from bridge.wandb.render import fill, judge, sample_values


def test_fill_is_textual_and_escapes_for_json():
    values = {**sample_values("ADD_ARTIFACT_ALIAS", "acme"), "event_author": 'al"ice'}
    values["artifact_metadata"] = {"n": 3, "tags": ["a"], "note": "ok"}
    body, unknown = fill(
        '{"a": "${event_author}", "n": ${artifact_metadata.n}, "t": "${artifact_metadata.tags}",'
        ' "x": "${nope}", "m": "${artifact_metadata.missing}", "s": "${SECRET_NAME}"}',
        values,
    )
    assert json.loads(body) == {
        "a": 'al"ice',
        "n": 3,
        "t": '["a"]',
        "x": "",
        "m": "",
        "s": "",
    }
    assert unknown == ["nope", "SECRET_NAME"]


def test_judge_uses_the_bridges_routing(tmp_path):
    from bridge.config.load import parse_config
    from tests.bridge.wandb.conftest import ENV, ROUTES, config_dict

    cfg = parse_config(config_dict("https://api.wandb.ai", tmp_path, ROUTES), ENV)
    body, _ = fill(
        '{"event_type": "${event_type}", "alias": "${alias}", '
        '"project_name": "${project_name}", "artifact_collection_name": "churn", '
        '"artifact_version_string": "${artifact_version_string}", "event_author": "x"}',
        sample_values("ADD_ARTIFACT_ALIAS", "acme"),
    )
    verdicts = {v.route: v for v in judge(cfg, "wandb", body.encode())}
    deploy = verdicts["deploy-production"].dispatch
    assert deploy is not None and deploy.event_type == "DEPLOY_MODEL"
    assert deploy.client_payload["model"] == "acme/wandb-registry-model/churn:production"
    assert "event_type" in verdicts["evaluate"].why_not
    assert "alias" in verdicts["canary"].why_not


@pytest.fixture
def render(write_config, cli, tmp_path):
    """``wandb-bridge wandb render`` of a template given as text, with options."""
    config = write_config()

    def run(template: str, *options: str):
        path = tmp_path / "t.json"
        path.write_text(template)
        return cli("wandb", "render", str(path), *options, "--config", config)

    return run


def test_render_samples_through_the_cli(wandb, render):
    template = (
        '{"event_type": "${event_type}", "artifact_version_string": "${artifact_version_string}",'
        ' "alias": "${alias}", "project_name": "${project_name}",'
        ' "artifact_collection_name": "${artifact_collection_name}"}\n'
    )
    res = render(template)
    assert res.code == 0
    assert "'deploy-production': repository_dispatch to acme/churn-svc" in res.out
    res = render(template, "--event", "LINK_ARTIFACT")
    assert res.code == 0 and "'evaluate': repository_dispatch" in res.out
    assert wandb.state.operations == []  # samples need no W&B


def test_render_a_real_version(wandb, render):
    artifact = "acme-org/wandb-registry-model/churn:production"
    template = (
        '{"event_type": "${event_type}", "v": "${artifact_version_string}",'
        ' "id": "${artifact_version}", "acc": ${artifact_metadata.accuracy}}'
    )
    res = render(template, "--artifact", artifact)
    assert res.code == 0, res.err
    body = json.loads(res.out.split("\n")[1])
    version = wandb.state.project("acme-org", "wandb-registry-model").collections["churn"]
    assert body == {
        "event_type": "ADD_ARTIFACT_ALIAS",
        "v": artifact,
        "id": f"wandb-artifact://_id/{version.versions[1]['artifact']}",
        "acc": 0.93,
    }
    res = render(template, "--artifact", artifact[:-10] + "nope")
    assert res.code == 1 and "no version churn:nope" in res.err


def test_render_a_broken_template_shows_the_refusal(write_config, cli, tmp_path):
    template = tmp_path / "t.json"
    template.write_text('{"alias": ${alias}}')  # a string outside quotes: not JSON
    res = cli("wandb", "render", str(template), "--config", write_config())
    assert res.code == 1 and "400 invalid_json" in res.out


def test_every_applied_template_matches_its_own_route(wandb, write_config, cli, tmp_path):
    """What apply sets up in W&B, rendered as W&B would, reaches the route it came from."""
    config = write_config()
    assert cli("wandb", "apply", "--config", config).code == 0
    for trigger in wandb.state.triggers.values():
        route = trigger.description.split("route '")[1].split("'")[0]
        template = tmp_path / "payload.json"
        template.write_text(trigger.payload)
        event = {"LINK_MODEL": "LINK_ARTIFACT"}.get(trigger.event, trigger.event)
        artifact = "acme-org/wandb-registry-model/churn:production"
        args = ["--artifact", artifact] if route != "canary" else []
        res = cli("wandb", "render", str(template), "--event", event, *args, "--config", config)
        if route == "canary":  # needs alias canary-* and a churn-* collection: not the sample
            assert "'canary': no match" in res.out
            continue
        assert f"route {route!r}: repository_dispatch" in res.out, res.out
