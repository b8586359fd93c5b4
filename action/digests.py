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
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

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


def new_hasher(entry: Entry, md5: Callable[[], Hasher] | None = None) -> Hasher:
    """The entry's hash; MD5 from ``md5`` when given (the downloader's shared lanes)."""
    if entry.algorithm == XXH128:
        hasher: Hasher = xxhash.xxh3_128()
        return hasher
    return md5() if md5 is not None else hashlib.md5(usedforsecurity=False)


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


def file_matches(path: Path, entry: Entry) -> bool:
    """True when the file at ``path`` has the entry's size and digest (a reusable copy)."""
    try:
        if not path.is_file() or (entry.size is not None and path.stat().st_size != entry.size):
            return False
        expected = expected_bytes(entry)
        if expected is None:
            return False
        hasher = new_hasher(entry)
        with path.open("rb", buffering=0) as fh:
            buf = bytearray(READ_CHUNK)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                hasher.update(view[:n])
        return hasher.digest() == expected
    except OSError:
        return False
