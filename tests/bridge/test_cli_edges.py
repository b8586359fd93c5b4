"""The command line at its edges: a bad --bind, a busy port, output piped to `head`, a
secret that passed check-config only to fail every delivery."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = str(ROOT / "examples" / "quickstart.yaml")


def run(*args: str, env: dict[str, str] | None = None, stdout: int = subprocess.PIPE):
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def one_line(res: subprocess.CompletedProcess[bytes]) -> str:
    err = res.stderr.decode()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if " WARNING " not in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("bind", ["127.0.0.1:notaport", "127.0.0.1:99999", "127.0.0.1:", "8080"])
def test_a_malformed_bind_is_a_usage_error_naming_the_form(bind):
    res = run("serve", "--config", QUICKSTART, "--bind", bind)
    assert res.returncode == 2
    line = one_line(res)
    assert line.startswith(f"wandb-bridge: --bind {bind!r}") and "127.0.0.1:8080" in line


def test_a_busy_port_is_one_line_with_the_fix():
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        res = run("serve", "--config", QUICKSTART, "--bind", f"127.0.0.1:{port}")
    assert res.returncode == 1
    line = one_line(res)
    assert f"port {port} is in use" in line and "--bind" in line


def test_a_host_that_is_not_this_machines_is_one_line():
    res = run("serve", "--config", QUICKSTART, "--bind", "no-such-host.invalid:8080")
    assert res.returncode == 1
    assert "not a name or address of this machine" in one_line(res)


def test_output_to_a_closed_pipe_ends_quietly():
    read, write = os.pipe()
    os.close(read)  # like `| head` that has already stopped reading
    try:
        res = run("check-config", "--config", QUICKSTART, stdout=write)
    finally:
        os.close(write)
    err = res.stderr.decode()
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception" not in err, err
    assert res.returncode == 1


def test_a_github_token_with_a_trailing_newline_passes_check_config_stripped(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"store: sqlite:///{tmp_path}/b.db\nsources: {{w: {{secrets: [{{env: S}}]}}}}\n"
        "github: {token: {env: GH_TOKEN_FROM_FILE}}\n"
    )
    token = "ghp_" + "t" * 36
    res = run(
        "check-config",
        "--config",
        str(config),
        env={"S": "x" * 8, "GH_TOKEN_FROM_FILE": token + "\n"},
    )
    assert res.returncode == 0, res.stderr
    err = res.stderr.decode()
    assert "github.token: environment variable GH_TOKEN_FROM_FILE" in err and token not in err
