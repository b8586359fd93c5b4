import pytest

from bridge.config.load import find_config_path, load_config, parse_config
from bridge.errors import ConfigError

ENV = {"SECRET": "s3cr3t-value", "TOKEN": "t0ken-value", "GH": "ghp_value"}


def minimal(**over):
    raw = {
        "sources": {"wandb": {"secrets": [{"env": "SECRET"}], "tokens": [{"env": "TOKEN"}]}},
        "github": {"token": {"env": "GH"}, "repositories": ["acme/*"]},
    }
    raw.update(over)
    return raw


def test_minimal_config_with_defaults():
    cfg = parse_config(minimal(), ENV)
    assert cfg.store.value == "sqlite:///wandb-bridge.db"
    assert cfg.max_body_bytes == 1024 * 1024
    assert cfg.dedupe_window == 600
    assert cfg.github.api_url == "https://api.github.com"
    assert cfg.sources["wandb"].secrets[0].value == "s3cr3t-value"
    assert cfg.delivery.max_attempts == 20 and cfg.delivery.max_age == 86400
    assert cfg.warnings == ()


def test_durations_and_secret_files(tmp_path):
    key = tmp_path / "secret.txt"
    key.write_text("from-file\n")
    cfg = parse_config(
        minimal(
            dedupe_window="0",
            delivery={"max_age": "2h", "lease": "90s", "timeout": "5s"},
            sources={"w": {"secrets": [{"file": str(key)}]}},
        ),
        ENV,
    )
    assert cfg.dedupe_window == 0
    assert cfg.delivery.max_age == 7200 and cfg.delivery.lease == 90
    assert cfg.sources["w"].secrets[0].value == "from-file"


def test_every_problem_reported_at_once_with_key_paths():
    raw = {
        "store": "mysql://nope",
        "dedupe_window": "soon",
        "sources": {"wandb": {"secrets": [{"env": "MISSING"}]}, "open": {}},
        "github": {"api_url": "ftp://x"},
        "routes": [
            {"name": "r", "when": {"alias": "p"}, "dispatch": {"repository": "bad"}},
            {"dispatch": {"repository": "a/b", "client_payload": {"x": "${bad name}"}}},
        ],
        "delivery": {"max_attempts": 0, "colour": "blue"},
        "typo": 1,
    }
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, ENV)
    text = "\n".join(exc.value.problems)
    for path in (
        "store:",
        "dedupe_window:",
        "sources.wandb.secrets[0]:",
        "sources.open:",
        "github.api_url:",
        "github:",
        "routes[0].dispatch.repository:",
        "routes[1].dispatch:",
        "delivery.max_attempts:",
        "delivery.colour:",
        "typo:",
    ):
        assert path in text, path
    assert len(exc.value.problems) >= 11


def test_secret_values_never_appear_in_problems():
    raw = minimal(sources={"w": {"secrets": ["inline-secret-xyz"], "tokens": 5}})
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, ENV)
    assert "inline-secret-xyz" not in str(exc.value)


def test_plain_string_secret_warns():
    cfg = parse_config(minimal(sources={"w": {"secrets": ["plain"]}}), ENV)
    assert any("sources.w.secrets[0]" in w for w in cfg.warnings)


def test_app_and_token_are_exclusive_and_app_needs_key():
    with pytest.raises(ConfigError) as exc:
        parse_config(minimal(github={"token": {"env": "GH"}, "app": {"id": 1}}), ENV)
    assert any("not both" in p for p in exc.value.problems)
    assert any("github.app.private_key" in p for p in exc.value.problems)


def test_route_with_eleven_payload_keys_is_refused():
    payload = {f"k{i}": "${alias}" for i in range(11)}
    routes = [{"dispatch": {"repository": "a/b", "client_payload": payload}}]
    with pytest.raises(ConfigError, match="at most 10"):
        parse_config(minimal(routes=routes), ENV)


def test_load_config_reports_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "absent.yaml"), ENV)
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad), ENV)


def test_config_path_resolution():
    assert find_config_path("x.yaml", {"WANDB_BRIDGE_CONFIG": "y.yaml"}) == "x.yaml"
    assert find_config_path(None, {"WANDB_BRIDGE_CONFIG": "y.yaml"}) == "y.yaml"
    assert find_config_path(None, {}) == "wandb-bridge.yaml"


def test_quickstart_example_is_valid():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"
    cfg = load_config(str(path), {})
    assert cfg.github.dry_run and cfg.store.value.startswith("sqlite:///")


def test_store_url_with_password_in_plain_text_warns():
    cfg = parse_config(minimal(store="postgresql://u:pw@db/bridge"), ENV)
    assert any(w.startswith("store:") and "pw" not in w for w in cfg.warnings)
    cfg = parse_config(minimal(store={"env": "DB"}), {**ENV, "DB": "postgresql://u:pw@db/b"})
    assert cfg.store.value == "postgresql://u:pw@db/b" and not cfg.warnings


def test_sqlite_url_options():
    from bridge.store.sqlite import parse_sqlite_url

    assert parse_sqlite_url("sqlite:///b.db") == ("b.db", "normal")
    assert parse_sqlite_url("sqlite:////x/b.db?synchronous=FULL") == ("/x/b.db", "full")
    with pytest.raises(ConfigError, match="synchronous must be normal or full"):
        parse_config(minimal(store="sqlite:///b.db?synchronous=off"), ENV)
    with pytest.raises(ConfigError, match="unknown option 'mode'"):
        parse_config(minimal(store="sqlite:///b.db?mode=ro"), ENV)


def test_a_route_keeps_its_name_whatever_its_templates_name():
    cfg = parse_config(
        {
            "sources": {"w": {"secrets": [{"env": "S"}]}},
            "github": {"dry_run": True},
            "routes": [
                {
                    "name": "deploy-production",
                    "dispatch": {
                        "repository": "acme/svc",
                        "event_type": "${event_type}",
                        "client_payload": {"m": "${artifact_version_string}"},
                    },
                }
            ],
        },
        {"S": "x"},
    )
    assert [r.name for r in cfg.routes] == ["deploy-production"]


def _routes(*routes, **top):
    raw = {
        "sources": {"w": {"secrets": [{"env": "S"}]}},
        "github": {"dry_run": True},
        "routes": list(routes),
        **top,
    }
    return parse_config(raw, {"S": "x", "HOOK": "https://hooks.slack.example/T/B/x"})


def test_a_workflow_route_and_its_limits():
    cfg = _routes(
        {
            "name": "eval",
            "when": {"event_type": "LINK_ARTIFACT"},
            "workflow": {
                "repository": "acme/svc",
                "file": "evaluate.yml",
                "ref": "main",
                "inputs": {"model": "${artifact_version_string}", "n": 3},
            },
        }
    )
    (r,) = cfg.routes
    assert r.workflow is not None and r.dispatch is None and r.repository == "acme/svc"
    assert r.workflow.file == "evaluate.yml" and r.workflow.inputs["n"] == 3
    bad = [
        (
            {
                "repository": "acme/svc",
                "file": "x.yml",
                "ref": "main",
                "inputs": {f"i{k}": "v" for k in range(26)},
            },
            "at most 25",
        ),
        (
            {
                "repository": "acme/svc",
                "file": "x.yml",
                "ref": "main",
                "inputs": {"m": {"nested": 1}},
            },
            "string, number or boolean",
        ),
        ({"repository": "acme/svc", "file": "../x", "ref": "main"}, "file"),
        ({"repository": "acme/svc", "file": "x.yml"}, "ref"),
        ({"repository": "acme/svc", "file": "x.yml", "ref": "${nope}"}, "${nope}"),
    ]
    for workflow, says in bad:
        with pytest.raises(ConfigError) as exc:
            _routes({"name": "r", "workflow": workflow})
        assert says in str(exc.value), (says, str(exc.value))
    with pytest.raises(ConfigError, match="exactly one target"):
        _routes(
            {
                "name": "both",
                "dispatch": {"repository": "a/b"},
                "workflow": {"repository": "a/b", "file": "x.yml", "ref": "main"},
            }
        )


def test_notify_runs_and_retention():
    cfg = _routes(
        notify=[
            {
                "name": "ml",
                "outcomes": ["run_failed", "delivery_dead"],
                "slack": {"webhook_url": {"env": "HOOK"}},
            }
        ],
        runs={"no_run_after": "2m", "give_up_after": "1h", "max_requests_per_hour": 50},
        retention={"events": "7d"},
    )
    (n,) = cfg.notify
    assert (
        n.kind == "slack" and n.url.value.startswith("https://") and n.outcomes[0] == "run_failed"
    )
    assert cfg.runs.no_run_after == 120 and cfg.runs.max_requests_per_hour == 50
    assert cfg.retention == 7 * 86400
    assert "hooks.slack.example" not in repr(cfg)
    for notify, says in [
        (
            [{"name": "x", "outcomes": ["run_faild"], "slack": {"webhook_url": "https://h"}}],
            "outcomes",
        ),
        ([{"name": "x", "outcomes": ["delivered"]}], "exactly one of"),
        (
            [{"name": "x", "outcomes": ["delivered"], "teams": {"webhook_url": "ftp://h"}}],
            "http(s) URL",
        ),
    ]:
        with pytest.raises(ConfigError) as exc:
            _routes(notify=notify)
        assert says in str(exc.value)
