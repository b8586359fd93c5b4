"""The staging directory next to the target, and the final move into place.

The staging directory is a hidden sibling of the target (``.<name>.partial-<random>``),
so that its files are on the same filesystem and ``os.replace`` is atomic per file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from action.errors import LocalError

if TYPE_CHECKING:
    from action.download import Outcome


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


def move_into_place(outcomes: Sequence[Outcome], root: Path) -> None:
    """Rename every staged file to its destination, creating directories as needed."""
    try:
        root.mkdir(parents=True, exist_ok=True)  # also for an artifact without files
    except OSError as exc:
        raise LocalError(
            f"cannot create {root}: {exc.strerror or exc}.",
            fix="Choose a `path` that is, or can be, a directory.",
        ) from exc
    for outcome in outcomes:
        if outcome.staged is None:
            continue
        dest = outcome.job.dest
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(outcome.staged, dest)
        except OSError as exc:
            raise LocalError(
                f"cannot move {outcome.job.entry.path} into place at {dest}: "
                f"{exc.strerror or exc}.",
                fix="Remove what is in the way at `path` (a directory where a file goes?).",
            ) from exc
