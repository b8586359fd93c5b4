"""The model's dataclasses are the one list of config keys and defaults: every field can be
set from YAML, an absent key gets the field's default, and the loader has a reader for
every field's type."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, get_args, get_type_hints

import pytest

from bridge.config.keys import default, has_default, known_keys
from bridge.config.load import parse_config
from bridge.config.model import (
    CatchUp,
    Config,
    DeliveryConfig,
    Dispatch,
    GitHubConfig,
    LoggingConfig,
    Notifier,
    Route,
    RunsConfig,
    Source,
    WandbConfig,
    Workflow,
    WriteBack,
)
from bridge.config.secrets import Secret
from bridge.config.sections import SectionReader
from bridge.errors import ConfigError
from tests.fakes.keys import new_key_pair

ENV = {
    "S": "s3cr3t",
    "T": "t0ken",
    "GH": "ghp_value",
    "K": "local-" + "k" * 40,
    "HOOK": "https://hooks.example/x",
}

# every key of every section set, each to a value that is not its default
EVERYTHING: dict[str, Any] = {
    "store": "sqlite:///elsewhere.db",
    "max_body_bytes": 2048,
    "dedupe_window": "5m",
    "sources": {
        "wandb": {"secrets": [{"env": "S"}], "tokens": [{"env": "T"}]},
        "open": {"allow_unauthenticated": True},
    },
    "github": {
        "api_url": "https://github.example/api/v3",
        "token": {"env": "GH"},
        "repositories": ["acme/*"],
        "dry_run": False,
    },
    "routes": [
        {
            "name": "deploy",
            "sources": ["wandb"],
            "when": {"alias": "production"},
            "dispatch": {
                "repository": "acme/svc",
                "event_type": "DEPLOY",
                "client_payload": {"model": "${artifact_version_string}"},
            },
            "write_back": {
                "run_succeeded": {"aliases": ["deployed"], "tags": ["ok"]},
                "run_failed": {"tags": ["failed"]},
            },
        },
        {
            "workflow": {
                "repository": "acme/svc",
                "file": "evaluate.yml",
                "ref": "main",
                "inputs": {"model": "${artifact_version_string}"},
            }
        },
    ],
    "delivery": {
        "max_attempts": 3,
        "max_age": "1h",
        "initial_backoff": "2s",
        "max_backoff": "1m",
        "lease": "30s",
        "timeout": "3s",
        "concurrency": 2,
    },
    "logging": {"format": "json", "level": "DEBUG"},
    "admin": {"tokens": [{"env": "T"}]},
    "wandb": {
        "entity": "acme",
        "bridge_url": "https://bridge.acme.dev",
        "source": "wandb",
        "api_key": {"env": "K"},
        "base_url": "https://wandb.acme.dev",
        "integration": "acme bridge",
        "secret_name": "BRIDGE_SECRET",
        "access_token_name": "BRIDGE_TOKEN",
        "catch_up": {"every": "10m", "max_requests_per_hour": 50},
    },
    "runs": {
        "follow": True,
        "no_run_after": "1m",
        "give_up_after": "2h",
        "max_requests_per_hour": 9,
        "min_interval": "3s",
    },
    "notify": [
        {"name": "ml", "outcomes": ["run_failed"], "slack": {"webhook_url": {"env": "HOOK"}}},
        {"outcomes": ["delivered"], "webhook": {"url": {"env": "HOOK"}, "secret": {"env": "S"}}},
    ],
    "retention": {"events": "2d"},
}


def _the_rest(tmp_path) -> dict[str, Any]:
    """EVERYTHING with what it cannot hold at once: a GitHub App in the token's place, a
    dry run, runs not followed (so no route writes back)."""
    pem = tmp_path / "app.pem"
    pem.write_text(new_key_pair().private_pem)
    pem.chmod(0o600)
    app = {"id": 7, "private_key": {"file": str(pem)}, "installation_id": 9}
    routes = [{k: v for k, v in r.items() if k != "write_back"} for r in EVERYTHING["routes"]]
    return {
        **EVERYTHING,
        "github": {**EVERYTHING["github"], "token": None, "app": app, "dry_run": True},
        "routes": routes,
        "runs": {**EVERYTHING["runs"], "follow": False},
    }


def _sections(cls: type = Config) -> set[type]:
    """Every config dataclass reachable from ``cls``'s field types, ``cls`` too."""
    found = {cls}
    hints = get_type_hints(cls)

    def walk(hint: Any) -> None:
        if is_dataclass(hint) and hint is not Secret and hint not in found:
            found.update(_sections(hint))
        for arg in get_args(hint):
            walk(arg)

    for f in fields(cls):
        walk(hints[f.name])
    return found


def _instances(value: Any, out: dict[type, list[Any]]) -> dict[type, list[Any]]:
    """Every dataclass object inside ``value``, by its class."""
    if is_dataclass(value) and not isinstance(value, type | Secret):
        out.setdefault(type(value), []).append(value)
        for f in fields(value):
            _instances(getattr(value, f.name), out)
    elif isinstance(value, tuple | list):
        for item in value:
            _instances(item, out)
    elif isinstance(value, dict):
        for item in value.values():
            _instances(item, out)
    return out


def test_every_field_of_every_section_can_be_set_from_yaml(tmp_path):
    loaded: dict[type, list[Any]] = {}
    for raw in (EVERYTHING, _the_rest(tmp_path)):
        _instances(parse_config(raw, ENV), loaded)
    sections = _sections()
    assert {WriteBack, CatchUp, Notifier, Workflow} <= sections
    assert sections <= set(loaded), f"no {sections - set(loaded)} in the test's config"
    for cls in sections:
        for f in fields(cls):
            if not has_default(f):
                continue  # a required field: loading fails without it
            values = [getattr(obj, f.name) for obj in loaded[cls]]
            assert any(v != default(f) for v in values), (
                f"{cls.__name__}.{f.name}: the test's config does not set it, or the loader "
                "drops it (give it a value that is not its default)"
            )


def test_what_yaml_sets_is_what_the_config_holds(tmp_path):
    cfg, rest = parse_config(EVERYTHING, ENV), parse_config(_the_rest(tmp_path), ENV)
    assert cfg.store == Secret("sqlite:///elsewhere.db", "inline")
    assert (cfg.max_body_bytes, cfg.dedupe_window, cfg.retention) == (2048, 300, 2 * 86400)
    assert cfg.delivery == DeliveryConfig(3, 3600, 2, 60, 30, 3, 2)
    assert cfg.runs == RunsConfig(True, 60, 7200, 9, 3) and not rest.runs.follow
    assert cfg.logging == LoggingConfig("json", "DEBUG")
    assert [t.value for t in cfg.admin_tokens] == ["t0ken"]
    assert cfg.github == GitHubConfig(
        "https://github.example/api/v3", Secret("ghp_value", "env:GH"), None, ("acme/*",), False
    )
    assert rest.github.app is not None and rest.github.dry_run and rest.github.token is None
    assert (rest.github.app.app_id, rest.github.app.installation_id) == (7, 9)
    assert cfg.sources["open"] == Source("open", allow_unauthenticated=True)
    deploy, evaluate = cfg.routes
    assert deploy.dispatch == Dispatch(
        "acme/svc", "DEPLOY", {"model": "${artifact_version_string}"}
    )
    assert (deploy.name, deploy.sources, deploy.when) == (
        "deploy",
        ("wandb",),
        (("alias", ("production",)),),
    )
    assert deploy.write_back == (
        ("run_succeeded", WriteBack(("deployed",), ("ok",))),
        ("run_failed", WriteBack((), ("failed",))),
    )
    assert evaluate.workflow == Workflow(
        "acme/svc", "evaluate.yml", "main", {"model": "${artifact_version_string}"}
    )
    wb = cfg.wandb
    assert wb is not None and wb.key == Secret(ENV["K"], "env:K")
    assert wb == WandbConfig(
        entity="acme",
        bridge_url="https://bridge.acme.dev",
        source="wandb",
        api_key=("env", "K"),
        base_url="https://wandb.acme.dev",
        integration="acme bridge",
        secret_name="BRIDGE_SECRET",
        access_token_name="BRIDGE_TOKEN",
        catch_up=CatchUp(600, 50),
        key=wb.key,
    )
    slack, hook = cfg.notify
    assert slack == Notifier("ml", ("run_failed",), "slack", Secret(ENV["HOOK"], "env:HOOK"))
    assert (hook.name, hook.kind, hook.secret) == ("notify-1", "webhook", Secret("s3cr3t", "env:S"))


def test_a_minimal_config_gets_the_dataclass_defaults():
    raw = {
        "sources": {"w": {"allow_unauthenticated": True}},
        "github": {"token": {"env": "GH"}},
        "routes": [
            {"dispatch": {"repository": "a/b"}, "write_back": {"run_failed": {"tags": ["x"]}}},
            {"workflow": {"repository": "a/b", "file": "x.yml", "ref": "main"}},
        ],
        "wandb": {"entity": "acme", "bridge_url": "https://b.acme.dev", "catch_up": {}},
        "notify": [{"outcomes": ["delivered"], "slack": {"webhook_url": {"env": "HOOK"}}}],
        "logging": {"format": None},  # a key with no value is an absent one
    }
    cfg = parse_config(raw, {**ENV, "WANDB_API_KEY": "local-key"})
    # each side builds the same object: what the loader filled in, the dataclass's default
    assert cfg.sources == {"w": Source("w", allow_unauthenticated=True)}
    assert cfg.github == GitHubConfig(token=Secret("ghp_value", "env:GH"))
    assert cfg.routes == (
        Route(
            "routes[0]",
            Dispatch("a/b"),
            write_back=(("run_failed", WriteBack(tags=("x",))),),
        ),
        Route("routes[1]", workflow=Workflow("a/b", "x.yml", "main")),
    )
    assert cfg.wandb is not None and cfg.wandb.key is not None
    assert cfg.wandb == WandbConfig(
        entity="acme",
        bridge_url="https://b.acme.dev",
        source="w",
        catch_up=CatchUp(),
        key=cfg.wandb.key,
    )
    assert cfg.notify == (
        Notifier("notify-0", ("delivered",), "slack", Secret(ENV["HOOK"], "env:HOOK")),
    )
    given = {k: getattr(cfg, k) for k in ("sources", "github", "routes", "wandb", "notify")}
    assert dataclasses.replace(cfg, warnings=()) == Config(**given)
    assert cfg.delivery == DeliveryConfig() and cfg.runs == RunsConfig()
    assert cfg.logging == LoggingConfig() and cfg.store.value == "sqlite:///wandb-bridge.db"


def test_unknown_keys_name_the_dataclass_fields_even_one_mapping_down():
    raw = {
        "sources": {"w": {"secrets": ["x"], "colour": 1}},
        "github": {"dry_run": True},
        "delivery": {"retries": 3},
        "admin": {"token": "x"},
        "retention": {"days": 3},
        "wandb": {"entity": "acme", "bridge_url": "https://b.acme.dev", "key": "x"},
        "typo": 1,
    }
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, ENV)
    problems = exc.value.problems
    known = ", ".join(sorted(known_keys(DeliveryConfig)))
    assert (
        known == "concurrency, initial_backoff, lease, max_age, max_attempts, max_backoff, timeout"
    )
    for problem in (
        f"delivery.retries: unknown key (known: {known})",
        "sources.w.colour: unknown key (known: allow_unauthenticated, secrets, tokens)",
        "admin.token: unknown key (known: tokens)",
        "retention.days: unknown key (known: events)",
        "typo: unknown key (known: admin, dedupe_window, delivery, github, logging, "
        "max_body_bytes, notify, retention, routes, runs, sources, store, wandb)",
    ):
        assert problem in problems, problems
    # the key is read from api_key, never set: it is no key of the wandb block
    assert any(p.startswith("wandb.key: unknown key (known: access_token_name,") for p in problems)


@dataclass(frozen=True)
class Sample:
    count: int = field(metadata={"key": "n", "required": "how many to take"})
    wait: float = 5.0
    tokens: tuple[Secret, ...] = field(default=(), metadata={"key": "auth.tokens"})
    label: str | None = None
    seen: int = field(default=0, metadata={"key": None})


def test_a_section_is_read_by_its_fields_names_types_and_defaults():
    r = SectionReader({"T": "tok"})
    values = r.fields_of(Sample, {"n": 3, "auth": {"tokens": [{"env": "T"}]}, "label": None}, "s")
    assert Sample(**values) == Sample(3, 5.0, (Secret("tok", "env:T"),))
    assert r.problems == []
    values = r.fields_of(Sample, {"wait": "soon", "auth": {"more": 1}, "seen": 2}, "s")
    assert values == {"wait": 5.0, "tokens": (), "label": None}  # a bad value gives way
    assert r.problems == [
        "s.seen: unknown key (known: auth, label, n, wait)",
        "s.n: is required (how many to take)",
        "s.wait: must be a duration such as 30s, 10m, 24h or 0",
        "s.auth.more: unknown key (known: tokens)",
    ]
    assert r.build(Sample, values) is None


def test_a_field_type_the_loader_cannot_read_is_an_error_of_the_code_not_the_config():
    @dataclass(frozen=True)
    class Odd:
        ratio: complex = 0j

    with pytest.raises(TypeError, match="no reader for 'ratio'"):
        SectionReader({}).fields_of(Odd, {"ratio": 1}, "odd")
