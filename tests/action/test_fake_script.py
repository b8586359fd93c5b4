"""The fake W&B as a process, as the self-test workflow starts it, with the fixture event."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.action.harness import API_KEY, Runner, tree

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "action" / "fixtures" / "dispatch-event.json"


def test_script_serves_the_fixture_artifact(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.fake_wandb",
            "--demo",
            "--port",
            "0",
            "--api-key",
            API_KEY,
            "--ready-file",
            str(ready),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(300):
            if ready.exists() and ready.read_text().strip():
                break
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.05)
        url = ready.read_text().strip()
        runner = Runner(tmp_path / "job", url)
        runner.event_path.write_text(FIXTURE.read_text())
        run = runner.run(event_types="LINK_ARTIFACT", aliases="production")
        assert run.code == 0, run.stdout
        assert run.outputs["artifact"] == "acme/churn/churn-model:v0"
        assert run.outputs["event-type"] == "LINK_MODEL"
        assert json.loads(run.outputs["metadata"])["accuracy"] == 0.93
        assert len(tree(runner.default_target)) == 5
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
        if process.stderr:
            process.stderr.close()
