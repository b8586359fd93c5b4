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


WRITE_BACK_ROUTE = {
    "name": "deploy",
    "when": {"event_type": "ADD_ARTIFACT_ALIAS", "alias": "production"},
    "dispatch": {"repository": "acme/svc"},
    "write_back": {
        "run_succeeded": {"aliases": ["deployed"], "tags": ["deployed-${alias}"]},
        "run_failed": {"tags": ["deploy-failed"]},
    },
}


def live(routes=(), **wandb):
    """A config for a bridge that follows runs (write-back acts when one ends)."""
    cfg = raw(**wandb)
    cfg["github"] = {"token": {"env": "TOKEN"}}
    cfg["routes"] = list(routes)
    return cfg


def test_catch_up_and_write_back_read_the_key_at_start_and_redact_it():
    env = {**ENV, "WANDB_API_KEY": "local-" + "k" * 40}
    cfg = parse_config(live([WRITE_BACK_ROUTE], **GOOD, catch_up={"every": "5m"}), env)
    wb = cfg.wandb
    assert wb is not None and wb.catch_up is not None
    assert (wb.catch_up.every, wb.catch_up.max_requests_per_hour) == (300.0, 2000)
    assert wb.key is not None and wb.key.value == env["WANDB_API_KEY"]
    assert wb.key in cfg.secrets()
    assert env["WANDB_API_KEY"] not in repr(cfg)
    (route,) = cfg.routes
    outcomes = dict(route.write_back)
    assert outcomes["run_succeeded"].aliases == ("deployed",)
    assert outcomes["run_succeeded"].tags == ("deployed-${alias}",)
    assert outcomes["run_failed"].aliases == ()
    with pytest.raises(ConfigError) as err:  # the key is needed now, and missing
        parse_config(live([WRITE_BACK_ROUTE], **GOOD), ENV)
    assert any("wandb.api_key" in p and "WANDB_API_KEY" in p for p in err.value.problems)


def test_write_back_is_refused_without_a_wandb_block_or_followed_runs():
    no_wandb = {k: v for k, v in live([WRITE_BACK_ROUTE]).items() if k != "wandb"}
    with pytest.raises(ConfigError) as err:
        parse_config(no_wandb, ENV)
    assert any("write_back" in p and "wandb:" in p for p in err.value.problems)
    env = {**ENV, "WANDB_API_KEY": "local-" + "k" * 40}
    unfollowed = {**live([WRITE_BACK_ROUTE], **GOOD), "runs": {"follow": False}}
    with pytest.raises(ConfigError) as err:
        parse_config(unfollowed, env)
    assert any("runs.follow" in p for p in err.value.problems)


@pytest.mark.parametrize(
    ("write_back", "says"),
    [
        ({"run_done": {"tags": ["x"]}}, "run_done: unknown key"),
        ({"run_failed": {}}, "give aliases, tags or both"),
        ({"run_failed": {"tags": ["bad/tag!"]}}, "is not a W&B tag"),
        ({"run_failed": {"aliases": ["a:b"]}}, "is not a W&B alias"),
        ({"run_failed": {"aliases": ["x" * 129]}}, "128 characters"),
        ({"run_failed": {"tags": ["${nope}"]}}, "not a W&B payload variable"),
        ({"run_failed": {"colour": ["x"]}}, "colour: unknown key"),
    ],
)
def test_write_back_problems_name_their_key(write_back, says):
    env = {**ENV, "WANDB_API_KEY": "local-" + "k" * 40}
    route = {**WRITE_BACK_ROUTE, "write_back": write_back}
    with pytest.raises(ConfigError) as err:
        parse_config(live([route], **GOOD), env)
    assert any(says in p and p.startswith("routes[0].write_back") for p in err.value.problems), (
        err.value.problems
    )


def test_catch_up_problems():
    env = {**ENV, "WANDB_API_KEY": "local-" + "k" * 40}
    for catch_up, says in (
        ({"every": "5s"}, "at least 30s"),
        ({"every": "soon"}, "must be a duration"),
        ({"max_requests_per_hour": 0}, "whole number >= 1"),
        ({"often": True}, "often: unknown key"),
    ):
        with pytest.raises(ConfigError) as err:
            parse_config(live(**GOOD, catch_up=catch_up), env)
        assert any(says in p and "wandb.catch_up" in p for p in err.value.problems), catch_up
