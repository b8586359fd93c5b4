"""The artifact manifest: which files make up the version, with their sizes and digests.

``{"version": 1, "storagePolicy": "wandb-storage-policy-v1", "storagePolicyConfig":
{"storageLayout": "V2", "storageRegion"?: ...}, "contents": {"<path>": {"digest",
"size", "birthArtifactID"?, "ref"?, "extra"?}}}``. Keys are relative paths that may
contain ``/``; a key that would escape the target directory, or a file that is also
another file's directory, is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from action.errors import ApiError

MD5 = "MD5"
XXH128 = "XXH128"


@dataclass(frozen=True)
class Entry:
    path: str
    digest: str
    size: int | None
    algorithm: str
    birth_artifact_id: str
    ref: str

    @property
    def basename(self) -> str:
        return PurePosixPath(self.path).name


@dataclass(frozen=True)
class Manifest:
    storage_layout: str
    storage_region: str
    entries: tuple[Entry, ...]

    @property
    def stored(self) -> tuple[Entry, ...]:
        """Entries whose bytes are in W&B storage."""
        return tuple(e for e in self.entries if not e.ref)

    @property
    def references(self) -> tuple[Entry, ...]:
        """Entries that point elsewhere (``https://``, ``s3://``, ...)."""
        return tuple(e for e in self.entries if e.ref)


def is_safe_path(key: str) -> bool:
    """Whether ``key`` names a file strictly inside a directory on any runner: relative,
    no ``.``/``..``/empty part, no backslash or NUL, no drive letter."""
    parts = key.split("/")
    return not (
        not key
        or "\x00" in key
        or "\\" in key
        or key.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
        or ":" in parts[0]
    )


def safe_path(key: str) -> str:
    """The manifest key as a relative POSIX path; raise when it could escape the target."""
    if not is_safe_path(key):
        raise ApiError(
            f"the manifest lists an unsafe file path {key!r}.",
            fix="The artifact was not written by a W&B client; refuse it, or fix it in W&B.",
        )
    return key


def parse_manifest(text: str | bytes) -> Manifest:
    """Parse a manifest; raise ApiError naming what is wrong."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _bad(f"it is not JSON ({type(exc).__name__})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("contents"), dict):
        raise _bad("it has no 'contents' object")
    config = data.get("storagePolicyConfig")
    config = config if isinstance(config, dict) else {}
    entries = tuple(_entry(key, raw) for key, raw in sorted(data["contents"].items()))
    files = {e.path for e in entries}
    for entry in entries:
        parent = PurePosixPath(entry.path).parent
        while parent.name:
            if str(parent) in files:
                raise _bad(f"{parent} is listed as a file and as the directory of {entry.path}")
            parent = parent.parent
    return Manifest(
        storage_layout=_text(config.get("storageLayout")) or "V1",
        storage_region=_text(config.get("storageRegion")) or "default",
        entries=entries,
    )


def _entry(key: str, raw: Any) -> Entry:
    if not isinstance(raw, dict):
        raise _bad(f"entry {key!r} is not an object")
    digest = raw.get("digest")
    if digest is not None and not isinstance(digest, str):
        raise _bad(f"entry {key!r} has a digest that is not a string")
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise _bad(f"entry {key!r} has an invalid size {size!r}")
    extra = raw.get("extra")
    algorithm = extra.get("alg") if isinstance(extra, dict) else None
    return Entry(
        path=safe_path(key),
        digest=digest or "",
        size=size,
        algorithm=MD5 if algorithm is None else str(algorithm).upper(),
        birth_artifact_id=_text(raw.get("birthArtifactID")),
        ref=_text(raw.get("ref")),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _bad(why: str) -> ApiError:
    return ApiError(
        f"the artifact's manifest cannot be used: {why}.",
        fix="Log the artifact again with a current W&B client, or contact W&B support.",
    )
