"""The staging directory beside ``path``, and the swap of staged files into ``path``.

Files are downloaded and verified in a hidden sibling of ``path``
(``.<name>.partial-<random>``, same filesystem, so that renames are atomic). Only then
are they renamed into ``path``, each file it replaces first moved aside into the staging
directory; if a rename fails, every step done so far is undone, so a failed run leaves
``path`` as it was, file for file. Nothing is written through a symbolic link below
``path``: a link where a directory is needed is refused before anything is touched.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from action.errors import LocalError

MOVE_FIX = "Remove what is in the way at `path` (a restored cache?), or choose another `path`."


def make_staging(root: Path) -> Path:
    """Create an empty staging directory next to ``root`` (creating its parents)."""
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = root.parent / f".{root.name}.partial-{secrets.token_hex(4)}"
        staging.mkdir()
    except OSError as exc:
        raise LocalError(
            f"cannot create a staging directory next to {root}: {exc.strerror or exc}.",
            fix="Choose a `path` in a writable directory (e.g. in the workspace).",
        ) from exc
    return staging


def check_target(root: Path, dests: Iterable[Path]) -> None:
    """Raise LocalError when a file could not be put at its ``dest`` under ``root``
    without following a link or removing a directory; touches nothing."""
    kinds: dict[Path, int | None] = {}

    def kind(path: Path) -> int | None:
        if path not in kinds:
            try:
                kinds[path] = stat.S_IFMT(os.lstat(path).st_mode)
            except FileNotFoundError:
                kinds[path] = None
            except OSError as exc:
                raise LocalError(
                    f"cannot look at {path}: {exc.strerror or exc}.", fix=MOVE_FIX
                ) from exc
        return kinds[path]

    if kind(root) is not None and not root.is_dir():
        raise LocalError(f"`path` {root} exists and is not a directory.", fix=MOVE_FIX)
    for dest in dests:
        here = root
        for part in dest.relative_to(root).parts[:-1]:
            here = here / part
            found = kind(here)
            if found is None:
                break
            if found == stat.S_IFLNK:
                raise LocalError(
                    f"{here} is a symbolic link; the action writes nothing through a link "
                    f"below `path` (it would put {dest.name} outside {root}).",
                    fix=MOVE_FIX,
                )
            if found != stat.S_IFDIR:
                raise LocalError(f"{here} is a file where a directory must be.", fix=MOVE_FIX)
        else:
            if kind(dest) == stat.S_IFDIR:
                raise LocalError(f"{dest} is a directory where a file must be.", fix=MOVE_FIX)


def install(moves: Sequence[tuple[Path, Path]], root: Path, staging: Path) -> None:
    """Rename each ``(staged, dest)`` into place under ``root``; all or nothing."""
    check_target(root, (dest for _, dest in moves))
    undo: list[tuple[str, Path, Path]] = []  # (what, path, backup) in the order done
    aside = staging / "replaced"
    try:
        _mkdirs(root, root.parent, undo)
        for number, (staged, dest) in enumerate(moves):
            _mkdirs(dest.parent, root, undo)
            if os.path.lexists(dest):
                aside.mkdir(exist_ok=True)
                backup = aside / str(number)
                os.replace(dest, backup)
                undo.append(("replaced", dest, backup))
            os.replace(staged, dest)
            undo.append(("placed", dest, dest))
    except OSError as exc:
        failed = _roll_back(undo)
        kept = f" Could not restore: {', '.join(failed)}." if failed else ""
        raise LocalError(
            f"cannot move the files into {root}: {exc.strerror or exc} "
            f"({exc.filename or root}); {root} was left as it was.{kept}",
            fix=MOVE_FIX,
        ) from exc


def _mkdirs(directory: Path, root: Path, undo: list[tuple[str, Path, Path]]) -> None:
    """Create ``directory`` and its missing parents up to ``root``, noting each made."""
    missing = []
    while directory != root and not os.path.lexists(directory):
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir()
        undo.append(("made", path, path))


def _roll_back(undo: list[tuple[str, Path, Path]]) -> list[str]:
    """Undo the steps in reverse; return the paths that could not be restored."""
    failed = []
    for what, path, backup in reversed(undo):
        try:
            if what == "placed":
                path.unlink()
            elif what == "replaced":
                os.replace(backup, path)
            else:
                path.rmdir()
        except OSError:
            failed.append(str(path))
    return failed
