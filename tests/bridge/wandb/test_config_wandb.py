"""The ``wandb:`` block of the bridge's config."""

import pytest

from bridge.config.load import parse_config
from bridge.errors import ConfigError

ENV = {"SECRET": "s3cr3t-value", "TOKEN": "t0ken-value"}


def raw(**wandb):
    return {
        "sources": {"wandb": {"secrets": [{"env": "SECRET"}], "tokens": [{"env": "TOKEN"}]}},
        "github": {"dry_run": True},
        "wandb": wandb,
    }


GOOD = {
    "entity": "acme",
    "bridge_url": "https://bridge.acme.dev/",
    "secret_name": "BRIDGE_WEBHOOK_SECRET",
    "access_token_name": "BRIDGE_ACCESS_TOKEN",
}


def test_defaults_and_no_key_needed_to_start():
    cfg = parse_config(raw(**GOOD), ENV)  # no WANDB_API_KEY: serve must still start
    wb = cfg.wandb
    assert wb is not None
    assert wb.base_url == "https://api.wandb.ai"
    assert wb.api_key == ("env", "WANDB_API_KEY")
    assert wb.bridge_url == "https://bridge.acme.dev"
    assert (wb.integration, wb.source) == ("wandb-github-bridge", "wandb")
    assert cfg.warnings == ()
    assert parse_config({k: v for k, v in raw().items() if k != "wandb"}, ENV).wandb is None


def test_a_plain_key_is_allowed_with_a_warning_and_never_shown():
    cfg = parse_config(raw(**GOOD, api_key="local-" + "k" * 40), ENV)
    assert cfg.wandb.api_key == ("inline", "local-" + "k" * 40)
    assert any("wandb.api_key" in w for w in cfg.warnings)
    assert "k" * 40 not in repr(cfg.wandb)


def test_every_problem_with_its_key_path():
    bad = {
        "base_url": "ftp://x",
        "api_key": {"vault": "x"},
        "bridge_url": "http://bridge.acme.dev",
        "integration": "no/slash",
        "secret_name": "has-dash",
        "source": "nosuch",
        "colour": "blue",
    }
    with pytest.raises(ConfigError) as exc:
        parse_config(raw(**bad), ENV)
    text = "\n".join(exc.value.problems)
    # each key, where its problem is named; an unknown one says so
    keys = ["base_url", "api_key", "entity", "bridge_url", "integration", "secret_name", "source"]
    missing = [k for k in keys if f"wandb.{k}:" not in text]
    assert not missing, text
    assert "wandb.colour: unknown key" in text


@pytest.mark.parametrize(
    "url", ["https://localhost/x", "https://10.0.0.5", "https://127.0.0.1:8443"]
)
def test_wandb_refuses_webhooks_on_localhost_or_an_ip(url):
    with pytest.raises(ConfigError) as exc:
        parse_config(raw(**{**GOOD, "bridge_url": url}), ENV)
    assert "DNS name" in str(exc.value)


def test_secret_names_are_required_when_the_source_checks_them():
    with pytest.raises(ConfigError) as exc:
        parse_config(raw(entity="acme", bridge_url="https://b.acme.dev"), ENV)
    assert {p.split(":")[0] for p in exc.value.problems} == {
        "wandb.secret_name",
        "wandb.access_token_name",
    }


def test_the_source_defaults_to_the_only_one_and_must_be_named_among_several():
    cfg = raw(entity="acme", bridge_url="https://b.acme.dev")
    cfg["sources"] = {"hooks": {"allow_unauthenticated": True}}
    assert parse_config(cfg, ENV).wandb.source == "hooks"
    cfg["sources"]["more"] = {"allow_unauthenticated": True}
    with pytest.raises(ConfigError) as exc:
        parse_config(cfg, ENV)
    assert "wandb.source" in str(exc.value)
