"""``action.staging``: the checks before anything is touched, and the undoable swap."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from action.errors import LocalError
from action.staging import check_target, install, make_staging
from tests.action.harness import snapshot


def _staged(staging: Path, files: dict[str, bytes], root: Path) -> list[tuple[Path, Path]]:
    moves = []
    for n, (name, content) in enumerate(files.items()):
        part = staging / f"{n}.part"
        part.write_bytes(content)
        moves.append((part, root / name))
    return moves


def test_install_replaces_and_adds(tmp_path: Path) -> None:
    root = tmp_path / "model"
    (root / "keep").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"old")
    (root / "keep/mine.txt").write_bytes(b"mine")
    staging = make_staging(root)
    assert staging.parent == tmp_path and staging.name.startswith(".model.partial-")
    install(_staged(staging, {"a.txt": b"new", "x/y/z.txt": b"z"}, root), root, staging)
    assert snapshot(root) == {
        "a.txt": b"new",
        "keep": "dir",
        "keep/mine.txt": b"mine",
        "x": "dir",
        "x/y": "dir",
        "x/y/z.txt": b"z",
    }


def test_install_creates_a_missing_root(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "model"
    staging = make_staging(root)
    install([], root, staging)
    assert root.is_dir()


@pytest.mark.parametrize("failing_call", [0, 1, 2, 3])
def test_a_failed_rename_undoes_every_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_call: int
) -> None:
    root = tmp_path / "model"
    root.mkdir()
    (root / "a.txt").write_bytes(b"old a")
    (root / "b.txt").write_bytes(b"old b")
    before = snapshot(tmp_path)
    staging = make_staging(root)
    moves = _staged(staging, {"a.txt": b"new a", "n/new.txt": b"n", "b.txt": b"new b"}, root)
    real, calls = os.replace, []

    def replace(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) == failing_call + 1:
            raise OSError(5, "Input/output error", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(LocalError, match="was left as it was"):
        install(moves, root, staging)
    monkeypatch.undo()
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith(".model.partial-")}
    assert after == before


def test_check_target_refuses_links_files_and_directories_in_the_way(tmp_path: Path) -> None:
    root = tmp_path / "model"
    (root / "dir").mkdir(parents=True)
    (root / "file").write_bytes(b"")
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(LocalError, match="is a symbolic link"):
        check_target(root, [root / "link/x"])
    with pytest.raises(LocalError, match="is a file where a directory must be"):
        check_target(root, [root / "file/x"])
    with pytest.raises(LocalError, match="is a directory where a file must be"):
        check_target(root, [root / "dir"])
    check_target(root, [root / "link", root / "file", root / "dir/x", root / "new/x"])
    (tmp_path / "plain").write_bytes(b"")
    with pytest.raises(LocalError, match="exists and is not a directory"):
        check_target(tmp_path / "plain", [tmp_path / "plain/x"])


def test_root_may_itself_be_a_link(tmp_path: Path) -> None:
    """The user's own `path` may point elsewhere (a bigger disk); links below it may not."""
    real = tmp_path / "disk"
    real.mkdir()
    root = tmp_path / "model"
    root.symlink_to(real)
    staging = make_staging(root)
    install(_staged(staging, {"a.txt": b"a"}, root), root, staging)
    assert (real / "a.txt").read_bytes() == b"a"
