"""Talk to the real bridge under gunicorn (:mod:`harness.bridge`) as W&B does, and look
into its store and command line."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Mapping

import requests

from bridge.signature import sign
from harness.bridge import BridgeProcess
from harness.processes import REPO_ROOT

__all__ = ["REPO_ROOT", "BridgeProcess", "assert_error", "events_cli", "events_in_store", "post"]


def wandb_headers(
    body: bytes,
    *,
    secret: str | None = None,
    token: str | None = None,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers W&B sends a webhook ``body`` with."""
    h = {"Content-Type": content_type} if content_type else {}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if secret is not None:
        h["X-Wandb-Signature"] = sign(secret, body)
    h.update(headers or {})
    return h


def post(
    url: str,
    body: bytes,
    *,
    secret: str | None = None,
    token: str | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """POST ``body`` exactly as W&B sends a webhook."""
    h = wandb_headers(body, secret=secret, token=token, content_type=content_type, headers=headers)
    return requests.post(url, data=body, headers=h, timeout=30)


def assert_error(resp: requests.Response, status: int, code: str) -> None:
    """A refusal with ``status`` and the JSON error body a W&B admin can read."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and len(body["message"]) > 20


def events_in_store(bridge: BridgeProcess) -> int:
    """How many events the bridge's SQLite store holds."""
    with sqlite3.connect(bridge.workdir / "bridge.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def events_cli(bridge: BridgeProcess, *args: str, check: bool = True) -> str:
    """``wandb-bridge events ARGS`` on the bridge's config; its standard output."""
    return subprocess.run(
        [sys.executable, "-m", "bridge", "events", *args, "--config", str(bridge.config_path)],
        capture_output=True,
        text=True,
        env=bridge.env,
        check=check,
    ).stdout
