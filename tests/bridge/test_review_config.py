"""Hostile values a config loader must refuse rather than start with."""

import pytest

from bridge.config.load import parse_config
from bridge.errors import ConfigError

ENV = {"SECRET": "s3cr3t-value", "GH": "ghp_value", "WANDB_API_KEY": "k"}
WANDB = {"entity": "acme", "secret_name": "BRIDGE_WEBHOOK_SECRET"}


def minimal(**over):
    raw = {
        "sources": {"wandb": {"secrets": [{"env": "SECRET"}]}},
        "github": {"token": {"env": "GH"}},
    }
    raw.update(over)
    return raw


def route(name=None, repository="acme/svc"):
    out = {"when": {"event_type": "ADD_ARTIFACT_ALIAS"}, "dispatch": {"repository": repository}}
    return out if name is None else {"name": name, **out}


def problems(raw):
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, ENV)
    return exc.value.problems


@pytest.mark.parametrize(
    "value",
    [float("inf"), float("nan"), -1, 1e12, 10**400, "9" * 400],
    ids=["inf", "nan", "negative", "1e12", "huge-int", "huge-string"],
)
def test_a_duration_is_a_finite_number_of_seconds(value):
    # an endless lease or timeout reaches Lock.acquire and socket.settimeout, which raise
    assert problems(minimal(delivery={"lease": value})) == [
        "delivery.lease: must be a duration such as 30s, 10m, 24h or 0"
    ]


def test_a_name_or_repository_with_a_trailing_newline_is_refused():
    # `$` matches before a final newline: each pattern must hold the whole value
    found = problems(
        minimal(
            sources={"wandb\n": {"secrets": [{"env": "SECRET"}]}},
            routes=[route(repository="acme/svc\n")],
        )
    )
    assert any(p.startswith("sources.wandb\\n: a source name") for p in found)
    assert "routes[0].dispatch.repository: must be owner/repo" in found


def test_a_workflow_file_and_a_tag_with_a_trailing_newline_are_refused():
    r = {
        "when": {"event_type": "LINK_ARTIFACT"},
        "workflow": {"repository": "acme/svc", "file": "deploy.yml\n", "ref": "main"},
        "write_back": {"run_succeeded": {"tags": ["deployed\n"]}},
    }
    wandb = {**WANDB, "bridge_url": "https://bridge.acme.dev"}
    found = problems(minimal(routes=[r], wandb=wandb))
    assert any(p.startswith("routes[0].workflow.file: must be") for p in found)
    assert any(
        p.startswith("routes[0].write_back.run_succeeded.tags: 'deployed\\n'") for p in found
    )


def test_a_bridge_url_with_a_trailing_newline_is_refused():
    wandb = {**WANDB, "bridge_url": "https://bridge.acme.dev\n"}
    assert any(p.startswith("wandb.bridge_url: must be") for p in problems(minimal(wandb=wandb)))


def test_two_routes_of_one_name_are_refused():
    # catch-up and the webhook's change records are keyed by route name: a second route
    # of the same name would lose its dispatches to the first's
    found = problems(minimal(routes=[route("deploy"), route("deploy", "acme/other")]))
    assert any(p.startswith("routes[1].name:") for p in found)


def test_a_key_in_a_problem_is_escaped_and_cut():
    # a problem goes to a terminal: a key must not clear the screen or run on for pages
    found = problems(minimal(**{"\x1b[2Jstore": 1, "x" * 5000: 1}))
    assert "\x1b" not in "".join(found)
    assert any(p.startswith("\\x1b[2Jstore: unknown key") for p in found)
    assert max(len(p.partition(":")[0]) for p in found) < 200


@pytest.mark.parametrize(
    "url", ["https://user:pw@ghe.example/api/v3", "https://ghe.example/api/v3\n"]
)
def test_github_api_url_holds_no_credentials_nor_a_newline(url):
    # check-config prints the URL: a password in it would be shown (W&B's base_url is
    # refused the same way)
    found = problems(minimal(github={"token": {"env": "GH"}, "api_url": url}))
    assert [p.split(":")[0] for p in found] == ["github.api_url"]
    assert "pw" not in found[0]
