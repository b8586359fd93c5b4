"""``PROMETHEUS_MULTIPROC_DIR`` set to the data directory: ``serve`` removes only its own
stale metric files, never the database or anything else there."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import requests

from tests.bridge.e2e.conftest import ENV, SECRET, TOKEN, base_config
from tests.bridge.e2e.test_metrics import sample
from tests.bridge.harness import BridgeProcess, post
from tests.fakes.github import FakeGitHub


def _body(n: int) -> bytes:
    return json.dumps({"event_type": "ADD_ARTIFACT_ALIAS", "alias": "production", "n": n}).encode()


def _serve(data: Path, github: FakeGitHub) -> BridgeProcess:
    config = base_config(data, github.url, store=f"sqlite:///{data}/wandb-bridge.db")
    bridge = BridgeProcess(data, config, ENV)
    bridge.env["PROMETHEUS_MULTIPROC_DIR"] = str(data)  # as `docker run -e ...=/data` would
    return bridge.start()


def _accepted(bridge: BridgeProcess) -> float:
    text = requests.get(bridge.url + "/metrics", timeout=10).text
    return sample(text, "wandb_bridge_requests_total", source="wandb", outcome="accepted")


def _events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def test_serve_keeps_the_data_directory(tmp_path: Path, fake_github: FakeGitHub) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE kept (x)")
        conn.execute("INSERT INTO kept VALUES (1)")
    conn.close()
    (tmp_path / "notes.txt").write_text("operator's notes\n")
    foreign = tmp_path / "counter_1.db"  # another program's metric file: not the bridge's
    foreign.write_bytes(b"not ours")

    first = _serve(tmp_path, fake_github)
    try:
        assert post(f"{first.url}/webhooks/wandb", _body(1), secret=SECRET, token=TOKEN).ok
        fake_github.wait_for_dispatches(1)
        assert _accepted(first) == 1
    finally:
        first.stop()
    stale = [p for p in tmp_path.rglob("*.db") if p.name.startswith("counter_") and p != foreign]
    assert stale, "the first run left its metric files"

    second = _serve(tmp_path, fake_github)
    try:
        # the first run's counters are gone (its files were removed), not added to these
        assert post(f"{second.url}/webhooks/wandb", _body(2), secret=SECRET, token=TOKEN).ok
        assert _accepted(second) == 1
    finally:
        second.stop()
    assert not any(p.exists() for p in stale)
    assert _events(tmp_path / "wandb-bridge.db") == 2  # the queue and history survived
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(1,)]
    conn.close()
    assert (tmp_path / "notes.txt").read_text() == "operator's notes\n"
    assert foreign.read_bytes() == b"not ours"


def test_an_unusable_metrics_directory_stops_serve_with_a_message(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    missing = tmp_path / "no-such-dir"
    bridge = BridgeProcess(tmp_path, base_config(tmp_path, fake_github.url), ENV)
    bridge.env["PROMETHEUS_MULTIPROC_DIR"] = str(missing)
    serve = [sys.executable, "-m", "bridge", "serve", "--config", str(bridge.config_path)]
    done = subprocess.run(
        [*serve, "--bind", f"127.0.0.1:{bridge.port}"],
        env=bridge.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "PROMETHEUS_MULTIPROC_DIR" in done.stderr and str(missing) in done.stderr
    assert "Traceback" not in done.stderr
