import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.signature import sign
from bridge.store import open_store

ROOT = Path(__file__).resolve().parents[2]


def run(*args, env=None, stdin=b"", cwd=None, module="bridge"):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=60,
        check=False,
    )


def without_config_env():
    return {k: v for k, v in os.environ.items() if k != "WANDB_BRIDGE_CONFIG"}


def create_store(path):
    """The SQLite store ``serve`` creates at start (the ``events`` commands never do)."""
    store = open_store(f"sqlite:///{path}")
    store.migrate()
    store.close()


def test_check_config_ok_and_bad(tmp_path):
    ok = run("check-config", "--config", str(ROOT / "examples" / "quickstart.yaml"))
    assert ok.returncode == 0 and b"config OK" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: {}\ngithub: {api_url: nope}\ndelivery: {max_attempts: -1}\n")
    res = run("check-config", "--config", str(bad))
    assert res.returncode == 1
    err = res.stderr.decode()
    for path in ("sources:", "github.api_url:", "delivery.max_attempts:"):
        assert path in err


def test_check_config_uses_env_var_path(tmp_path):
    res = run("check-config", env={"WANDB_BRIDGE_CONFIG": str(tmp_path / "nope.yaml")})
    assert res.returncode == 1 and b"nope.yaml" in res.stderr


def test_sign_from_stdin_file_and_secret_file(tmp_path):
    body = b'{"a": 1}'
    res = run("sign", env={"WANDB_WEBHOOK_SECRET": "k1"}, stdin=body)
    assert res.returncode == 0 and res.stdout.decode().strip() == sign("k1", body)
    (tmp_path / "body.json").write_bytes(body)
    (tmp_path / "secret").write_text("k2\n")
    res = run("sign", "--secret-file", str(tmp_path / "secret"), str(tmp_path / "body.json"))
    assert res.stdout.decode().strip() == sign("k2", body)


def test_sign_without_secret_is_a_usage_error():
    env = {k: v for k, v in os.environ.items() if k != "WANDB_WEBHOOK_SECRET"}
    res = subprocess.run(
        [sys.executable, "-m", "bridge", "sign", "-"],
        input=b"{}",
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2 and b"WANDB_WEBHOOK_SECRET" in res.stderr


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_send_test_unreachable_is_a_failure():
    res = run("send-test", "http://127.0.0.1:9/webhooks/wandb")
    assert res.returncode == 1 and b"cannot reach" in res.stderr


def test_events_show_replay_on_a_fresh_store(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"store: sqlite:///{tmp_path}/b.db\nsources: {{w: {{allow_unauthenticated: "
        "true}}\ngithub: {dry_run: true}\n"
    )
    create_store(tmp_path / "b.db")
    assert run("events", "--config", str(cfg), "list").returncode == 0
    res = run("events", "--config", str(cfg), "show", "evt_missing")
    assert res.returncode == 1 and b"evt_missing" in res.stderr
    res = run("events", "--config", str(cfg), "replay", "--dead")
    assert res.returncode == 0 and b"queued again: 0" in res.stdout
    assert run("events", "--config", str(cfg), "replay").returncode == 2


def test_events_show_prints_json_history(tmp_path):
    from bridge.app import create_app
    from bridge.config.load import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"store: sqlite:///{tmp_path}/b.db\nsources: {{w: {{allow_unauthenticated: "
        "true}}\ngithub: {dry_run: true}\nroutes: [{dispatch: {repository: a/b}}]\n"
    )
    app = create_app(load_config(str(cfg)))
    resp = app.test_client().post("/webhooks/w", json={"event_type": "X"})
    app.extensions["wandb_bridge"].store.close()
    event_id = resp.get_json()["event_id"]
    res = run("events", "--config", str(cfg), "show", event_id)
    shown = json.loads(res.stdout)
    assert shown["id"] == event_id and shown["deliveries"][0]["state"] == "queued"
    assert shown["deliveries"][0]["client_payload"]["bridge_event_id"] == event_id


def test_config_may_come_before_or_after_any_subcommand(tmp_path):
    cfg = str(ROOT / "examples" / "quickstart.yaml")
    env = {"WANDB_WEBHOOK_SECRET": "s", "WANDB_WEBHOOK_TOKEN": "t", "GITHUB_TOKEN": "g"}
    create_store(tmp_path / "wandb-bridge.db")
    for args in (
        ("events", "list", "--config", cfg),
        ("events", "--config", cfg, "list"),
        ("--config", cfg, "events", "list"),
        ("check-config", "--config", cfg),
        ("--config", cfg, "check-config"),
    ):
        res = subprocess.run(
            [sys.executable, "-m", "bridge", *args],
            capture_output=True,
            env={**os.environ, **env},
            cwd=tmp_path,  # the store (relative to the working directory) lands here
            timeout=60,
            check=False,
        )
        assert res.returncode == 0, (args, res.stderr)


def test_every_cli_failure_is_one_line_without_a_traceback(tmp_path):
    cases = [
        (("send-test", "http://127.0.0.1:9/x", "--payload", "nope.json"), "nope.json"),
        (("sign", "--secret-file", "/nonexistent"), "/nonexistent"),
        (("events", "list"), "--config"),  # no config anywhere: says how to give one
        (("check-config", "--config", "/nonexistent.yaml"), "/nonexistent.yaml"),
    ]
    for args, names in cases:
        res = subprocess.run(
            [sys.executable, "-m", "bridge", *args],
            capture_output=True, env=without_config_env(), cwd=tmp_path, timeout=60, check=False,
        )  # fmt: skip
        err = res.stderr.decode()
        assert res.returncode in (1, 2), (args, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)
        assert names in err, (args, err)


def test_yaml_errors_never_echo_the_line_and_its_secret(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  w: {secrets: [hunter2-very-secret], tokens: [oops: }\n")
    res = run("check-config", "--config", str(bad))
    err = res.stderr.decode()
    assert res.returncode == 1 and "line 2" in err
    assert "hunter2" not in err


def test_warnings_print_once_from_check_config_not_from_every_command(tmp_path):
    cfg = tmp_path / "open.yaml"
    cfg.write_text(
        "store: sqlite:///b.db\nsources:\n  w: {allow_unauthenticated: true}\n"
        "  s: {secrets: [inline-secret-value]}\ngithub: {dry_run: true}\n"
    )
    checked = run("check-config", "--config", str(cfg)).stderr.decode()
    assert "allow_unauthenticated" in checked and "plain string" in checked
    create_store(tmp_path / "b.db")
    listed = subprocess.run(
        [sys.executable, "-m", "bridge", "events", "list", "--config", str(cfg)],
        capture_output=True, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0 and b"plain string" not in listed.stderr


def test_flask_run_without_a_config_says_how_to_give_one(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "bridge", "run", "--port", "0"],
        capture_output=True, env=without_config_env(), cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    err = res.stderr.decode()
    assert res.returncode != 0 and "Traceback" not in err, err
    assert "$WANDB_BRIDGE_CONFIG" in err and "--config" in err
