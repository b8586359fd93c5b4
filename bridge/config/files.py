"""Read the small text files a config names (the config itself, secret files), bounded.

A path can name anything: ``/dev/zero`` never ends, a log file can be gigabytes, a key
can be saved in Latin-1. Each is a problem the operator can fix, so it comes back as a
sentence (:class:`UnreadableFile`), never a hang, a MemoryError or a traceback.
"""

from __future__ import annotations

import stat
from pathlib import Path

MAX_SECRET_BYTES = 64 * 1024  # a PEM key is ~3 KB; anything this big is the wrong file
MAX_CONFIG_BYTES = 1024 * 1024


class UnreadableFile(Exception):
    """Why a file could not be read, as a phrase ("No such file or directory")."""


def read_text(path: str, limit: int) -> str:
    """The file's UTF-8 text; raises UnreadableFile when it is missing, over ``limit``
    bytes, or not UTF-8. Reads at most ``limit + 1`` bytes, whatever the file is."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or type(exc).__name__) from exc
    if len(data) > limit:
        size = f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit // 1024} KiB"
        raise UnreadableFile(f"it is larger than {size}; is it the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"it is not UTF-8 text (byte {exc.start + 1} cannot be decoded); save it as UTF-8"
        ) from exc


def others_can_read(path: str) -> bool:
    """Does the file's mode let its group or other users read or change it?"""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) and bool(mode & 0o077)
