"""Where things go wrong: one line naming the cause and the fix, exit 1, never the key."""

import socket

import pytest

from tests.bridge.wandb.conftest import API_KEY, WEBHOOK_SECRET


def one_line(res):
    lines = res.err.strip().splitlines()
    assert res.code == 1, res
    assert len(lines) == 1, res.err
    assert API_KEY not in res.out + res.err
    return lines[0]


@pytest.mark.parametrize("command", [["list"], ["plan"], ["apply"], ["delete", "x", "--yes"]])
def test_a_bad_key_is_refused_without_showing_it(wandb, write_config, cli, monkeypatch, command):
    wandb.state.echo_key = True  # W&B's message quotes what it got: it must be redacted
    monkeypatch.setenv("WANDB_API_KEY", "local-" + "f" * 40)
    line = one_line(cli("wandb", *command, "--config", write_config()))
    assert "401" in line and "wandb.api_key" in line and "env:WANDB_API_KEY" in line
    assert "f" * 40 not in line


def test_echoed_credentials_in_graphql_errors_are_redacted(wandb, write_config, cli):
    wandb.state.echo_key = True
    wandb.state.webhooks_allowed = False
    line = one_line(cli("wandb", "apply", "--config", write_config()))
    assert "***" in line


def test_an_unknown_entity(wandb, write_config, cli):
    line = one_line(cli("wandb", "plan", "--config", write_config(entity="acme-typo")))
    assert "'acme-typo'" in line and "wandb.entity" in line


def test_a_plan_without_webhooks(wandb, write_config, cli):
    wandb.state.webhooks_allowed = False
    line = one_line(cli("wandb", "apply", "--config", write_config()))
    assert "not available on your plan" in line and "Pro or Enterprise" in line
    assert wandb.state.webhooks == {} and wandb.state.triggers == {}


def test_wandb_validation_errors_are_passed_on_with_the_fix(wandb, write_config, cli):
    wandb.answers["CreateAutomation"] = (
        400,
        {"errors": [{"message": 'Variable "$input" got invalid value "x" at "input.name"'}]},
    )
    line = one_line(cli("wandb", "apply", "--config", write_config()))
    assert "create the automation" in line and "invalid value" in line
    assert "Pro or Enterprise" in line


def test_only_admins_may_store_secrets(wandb, write_config, cli):
    wandb.state.secrets["acme"].clear()
    wandb.state.admin = False
    line = one_line(cli("wandb", "apply", "--create-secrets", "--config", write_config()))
    assert "BRIDGE_WEBHOOK_SECRET" in line and "admin" in line
    assert WEBHOOK_SECRET not in line and wandb.state.secrets["acme"] == {}


def test_a_document_wandb_would_not_take_is_refused_here(wandb):
    from bridge.config.secrets import Secret
    from bridge.errors import WandbError
    from bridge.wandb.client import GraphQL

    gql = GraphQL(wandb.url, Secret(API_KEY))
    with pytest.raises(WandbError) as exc:
        gql.execute("x", "Q", 'query Q { entity(name: "acme") { nope } }', {}, "fix it")
    assert exc.value.status == 400 and exc.value.graphql
    assert "Cannot query field 'nope' on type 'Entity'" in str(exc.value)
    with pytest.raises(WandbError):  # JSONString takes JSON text, not an object
        gql.execute(
            "x",
            "U",
            'mutation U($f: JSONString) { updateFilterTrigger(input: {id: "1", eventFilter: $f})'
            " { trigger { id } } }",
            {"f": {"$or": []}},
            "fix it",
        )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ((502, "bad gateway"), "failed (HTTP 502"),
        ((429, "slow down"), "rate-limiting"),
        ((200, "<html>W&B</html>"), "no GraphQL answer"),
        ((302, ""), "redirects"),
    ],
)
def test_answers_that_are_not_wandbs(wandb, write_config, cli, answer, expected):
    wandb.fail_next.append(answer)
    line = one_line(cli("wandb", "list", "--config", write_config()))
    assert expected in line


def test_wandb_unreachable(wandb, write_config, cli):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_line(
        cli("wandb", "list", "--config", write_config(base_url=f"http://127.0.0.1:{port}"))
    )
    assert "cannot reach W&B" in line and "wandb.base_url" in line


def test_no_key_and_no_block(wandb, write_config, cli, monkeypatch, tmp_path):
    config = write_config()
    monkeypatch.delenv("WANDB_API_KEY")
    line = one_line(cli("wandb", "plan", "--config", config))
    assert "wandb.api_key" in line and "WANDB_API_KEY" in line
    bare = tmp_path / "bare.yaml"
    bare.write_text("sources: {w: {allow_unauthenticated: true}}\ngithub: {dry_run: true}\n")
    line = one_line(cli("wandb", "list", "--config", str(bare)))
    assert "wandb:" in line and "bridge_url" in line
