"""The ``action`` package: importable without side effects, independent of ``bridge``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ACTION = Path(__file__).resolve().parents[2] / "action"


def test_action_never_imports_bridge() -> None:
    for path in ACTION.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "bridge" or n.startswith("bridge.") for n in names), path


def test_importing_does_no_work() -> None:
    code = (
        "import sys, action, action.main, action.__main__\n"
        "assert not any(m == 'bridge' or m.startswith('bridge.') for m in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ACTION.parent,
        env={"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": "/nonexistent/out"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_modules_stay_small() -> None:
    for path in ACTION.glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) < 260, path
