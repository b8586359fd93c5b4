"""File digests as W&B's manifests write them.

``digest`` is base64 of the raw MD5; entries whose ``extra.alg`` is ``XXH128`` use that
hash (base64 of its 16 bytes; a 32-hex-digit form is accepted as well, as which one W&B
writes is unconfirmed). HTTP references carry the ETag as digest: when that looks like
an MD5 (hex, as S3 and GCS give for simple uploads) it is checked, else it cannot be.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO, Protocol

import xxhash

from action.manifest import XXH128, Entry

READ_CHUNK = 1 << 20
_HEX32 = re.compile(r'^(?:W/)?"?([0-9a-fA-F]{32})"?$')


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...
    def digest(self) -> bytes: ...


def expected_bytes(entry: Entry) -> bytes | None:
    """The 16 digest bytes the entry promises, or None when its digest is no hash."""
    found = _HEX32.match(entry.digest.strip())
    if found:
        return bytes.fromhex(found.group(1))
    try:
        raw = base64.b64decode(entry.digest, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 16 else None


def new_hasher(entry: Entry) -> Hasher:
    """The hash the entry's digest was made with (MD5 unless ``extra.alg`` says XXH128)."""
    if entry.algorithm == XXH128:
        hasher: Hasher = xxhash.xxh3_128()
        return hasher
    return hashlib.md5(usedforsecurity=False)


def is_supported(entry: Entry) -> bool:
    """Whether the action can check this entry's digest at all."""
    return entry.algorithm in ("MD5", XXH128) and expected_bytes(entry) is not None


def show(digest: bytes) -> str:
    """A digest as the manifest shows it (base64)."""
    return base64.b64encode(digest).decode("ascii")


def md5_hex(entry: Entry) -> str:
    """The hex MD5 W&B's download handler expects in its URL."""
    raw = expected_bytes(entry)
    return raw.hex() if raw else ""


def hash_stretch(path: Path, at: int, length: int, hasher: Hasher) -> None:
    """Feed ``length`` bytes of the file at ``path`` from offset ``at`` to ``hasher``;
    raises OSError, or EOFError when the file ends first."""
    with path.open("rb") as fh:
        fh.seek(at)
        while length > 0:
            chunk = fh.read(min(READ_CHUNK, length))
            if not chunk:
                raise EOFError(f"{path} ends before byte {at + length}")
            hasher.update(chunk)
            length -= len(chunk)


def _digest(fh: BinaryIO, entry: Entry) -> bytes:
    hasher = new_hasher(entry)
    while chunk := fh.read(READ_CHUNK):
        hasher.update(chunk)
    return hasher.digest()


def file_matches(path: Path, entry: Entry) -> bool:
    """True when ``path`` is a regular file (not a link) with the entry's size and digest:
    a copy that can stay."""
    expected = expected_bytes(entry)
    if expected is None or entry.algorithm not in ("MD5", XXH128):
        return False
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        with open(os.open(path, flags), "rb") as fh:  # no link followed, no FIFO waited on
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                return False
            if entry.size is not None and info.st_size != entry.size:
                return False
            return _digest(fh, entry) == expected
    except OSError:  # absent, a link, unreadable
        return False
