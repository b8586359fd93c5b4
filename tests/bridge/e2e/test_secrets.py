"""No secret, token or signature appears in any log line, answer or CLI output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import requests

from bridge.signature import sign
from tests.bridge.e2e.conftest import ENV, GH_TOKEN, RETIRED_SECRET, ROTATING_SECRET, SECRET, TOKEN
from tests.bridge.harness import post


def cli(*args: str, env: dict[str, str] | None = None, stdin: bytes = b"") -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **ENV, **(env or {})},
        timeout=60,
        check=False,
    )
    return proc.stdout.decode() + proc.stderr.decode()


def test_no_secret_in_logs_answers_or_cli_output(start_bridge, fake_github, tmp_path):
    bridge = start_bridge()
    seen: list[str] = []
    signatures: list[str] = []

    def record(resp: requests.Response) -> None:
        seen.append(f"{resp.status_code} {resp.headers} {resp.text}")

    bodies = [
        json.dumps({"event_type": "ADD_ARTIFACT_ALIAS", "alias": "production", "n": i}).encode()
        for i in range(6)
    ]
    fake_github.fail_next(401, body={"message": "Bad credentials"})
    for i, (secret, token) in enumerate(
        [
            (SECRET, TOKEN),
            (ROTATING_SECRET, TOKEN),
            (RETIRED_SECRET, TOKEN),
            (SECRET, "wrong-token"),
            (SECRET, None),
            (None, TOKEN),
        ]
    ):
        if secret:
            signatures.append(sign(secret, bodies[i]))
        record(post(f"{bridge.url}/webhooks/wandb", bodies[i], secret=secret, token=token))
    record(post(f"{bridge.url}/repos/evil/x/dispatches", bodies[0], secret=SECRET, token=TOKEN))
    record(post(f"{bridge.url}/webhooks/wandb", b"{", secret=SECRET, token=TOKEN))
    fake_github.wait_for_dispatches(1)
    record(requests.get(bridge.url + "/metrics", timeout=10))
    record(requests.get(bridge.url + "/readyz", timeout=10))

    outputs = [
        cli("check-config", "--config", str(bridge.config_path)),
        cli("events", "--config", str(bridge.config_path), "list"),
        cli("sign", "--secret-env", "E2E_SECRET", stdin=b"{}"),
        cli(
            "send-test",
            f"{bridge.url}/webhooks/wandb",
            "--secret-env",
            "E2E_SECRET",
            "--token-env",
            "E2E_TOKEN",
        ),
    ]
    event_ids = [line.split()[0] for line in outputs[1].splitlines() if line.startswith("evt_")]
    for event_id in event_ids:
        outputs.append(cli("events", "--config", str(bridge.config_path), "show", event_id))
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"sources: {{w: {{secrets: ['{SECRET}'], tokens: 7}}}}\ngithub: {{}}\n")
    outputs.append(cli("check-config", "--config", str(bad)))
    assert outputs[2].strip() == sign(SECRET, b"{}")  # printing a signature is its job
    del outputs[2]

    haystack = "\n".join([bridge.log(), *seen, *outputs])
    assert "status=202 source=wandb event=evt_" in haystack and "delivery attempt" in haystack
    for needle in [SECRET, ROTATING_SECRET, RETIRED_SECRET, TOKEN, GH_TOKEN, *signatures]:
        assert needle not in haystack, f"a secret leaked: {needle[:6]}..."
