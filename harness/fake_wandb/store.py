"""The fake W&B's data: artifacts built from real bytes, their collections and aliases.

Digests are computed here as a W&B client computes them: base64 of the raw MD5 (or of the
XXH128 digest for entries marked ``extra.alg: XXH128``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import xxhash


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def md5_b64(data: bytes) -> str:
    return b64(hashlib.md5(data, usedforsecurity=False).digest())


def xxh128_b64(data: bytes) -> str:
    return b64(xxhash.xxh3_128(data).digest())


def _hash_source(source: Path, algorithm: str) -> tuple[int, bytes]:
    hasher = xxhash.xxh3_128() if algorithm == "XXH128" else hashlib.md5(usedforsecurity=False)
    size = 0
    with source.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.digest()


@dataclass
class StoredFile:
    """One manifest entry; ``data`` or ``source`` holds its bytes unless it is a ``ref``."""

    path: str
    size: int
    digest: str
    algorithm: str
    birth_id: str
    data: bytes | None = None
    source: Path | None = None
    ref: str = ""

    @property
    def hex(self) -> str:
        return base64.b64decode(self.digest).hex()

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()


@dataclass
class Membership:
    """A version's place in a collection: the source sequence or a linked (registry) one."""

    entity: str
    project: str
    collection: str
    version_index: int
    aliases: list[str]


@dataclass
class FakeArtifact:
    id: str
    number: int
    type: str
    state: str
    description: str
    metadata: dict[str, object]
    files: list[StoredFile]
    source: Membership
    links: list[Membership] = field(default_factory=list)
    layout: str = "V2"
    region: str = ""
    raw_manifest: bytes | None = None  # served instead of manifest(), when set

    @property
    def memberships(self) -> list[Membership]:
        return [self.source, *self.links]

    @property
    def stored(self) -> list[StoredFile]:
        return [f for f in self.files if not f.ref]

    @property
    def digest(self) -> str:
        lines = "".join(f"{f.path}:{f.digest}\n" for f in sorted(self.files, key=lambda f: f.path))
        return hashlib.md5(lines.encode(), usedforsecurity=False).hexdigest()

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def manifest(self) -> bytes:
        contents: dict[str, dict[str, object]] = {}
        for f in self.files:
            entry: dict[str, object] = {"digest": f.digest, "size": f.size}
            if f.ref:
                entry["ref"] = f.ref
            else:
                entry["birthArtifactID"] = f.birth_id
            if f.algorithm == "XXH128":
                entry["extra"] = {"alg": "XXH128"}
            contents[f.path] = entry
        config: dict[str, str] = {"storageLayout": self.layout}
        if self.region:
            config["storageRegion"] = self.region
        return json.dumps(
            {
                "version": 1,
                "storagePolicy": "wandb-storage-policy-v1",
                "storagePolicyConfig": config,
                "contents": contents,
            }
        ).encode()


class Store:
    """All artifacts of the fake server, and the team -> organization entity map."""

    def __init__(self) -> None:
        self.artifacts: list[FakeArtifact] = []
        self.org_of: dict[str, tuple[str, str]] = {}  # team entity -> (org name, org entity)
        self._lock = threading.Lock()

    def add_artifact(
        self,
        entity: str,
        project: str,
        collection: str,
        files: Mapping[str, bytes | Path],
        *,
        aliases: tuple[str, ...] = ("latest",),
        type: str = "model",
        state: str = "COMMITTED",
        description: str = "",
        metadata: dict[str, object] | None = None,
        xxh128: tuple[str, ...] = (),
        refs: dict[str, tuple[str, str, int]] | None = None,
        layout: str = "V2",
        region: str = "",
    ) -> FakeArtifact:
        """A new version of ``entity/project/collection`` holding ``files``.

        ``refs`` maps a path to ``(url, digest, size)`` for reference entries.
        """
        with self._lock:
            number = len(self.artifacts) + 1
            node_id = b64(f"Artifact:{number}".encode())
            stored = []
            for path, content in files.items():
                algorithm = "XXH128" if path in xxh128 else "MD5"
                if isinstance(content, Path):
                    size, raw = _hash_source(content, algorithm)
                    data, source = None, content
                else:
                    raw = (xxhash.xxh3_128 if algorithm == "XXH128" else hashlib.md5)(
                        content
                    ).digest()
                    size, data, source = len(content), content, None
                stored.append(StoredFile(path, size, b64(raw), algorithm, node_id, data, source))
            for path, (url, digest, size) in (refs or {}).items():
                stored.append(StoredFile(path, size, digest, "MD5", node_id, ref=url))
            index = sum(1 for a in self.artifacts if _same(a.source, entity, project, collection))
            membership = Membership(entity, project, collection, index, [])
            artifact = FakeArtifact(
                node_id,
                number,
                type,
                state,
                description,
                dict(metadata or {}),
                sorted(stored, key=lambda f: f.path),
                membership,
                layout=layout,
                region=region,
            )
            self.artifacts.append(artifact)
        self.set_aliases(artifact.source, aliases)
        return artifact

    def link(
        self,
        artifact: FakeArtifact,
        entity: str,
        project: str,
        collection: str,
        aliases: tuple[str, ...] = ("latest",),
    ) -> Membership:
        """Link a version into another collection (a registry's), as W&B's link does."""
        with self._lock:
            index = sum(
                1 for a in self.artifacts for m in a.links if _same(m, entity, project, collection)
            )
            membership = Membership(entity, project, collection, index, [])
            artifact.links.append(membership)
        self.set_aliases(membership, aliases)
        return membership

    def set_aliases(self, membership: Membership, aliases: tuple[str, ...]) -> None:
        """Aliases are unique within a collection: adding one moves it here."""
        with self._lock:
            for other in self.memberships():
                if other is not membership and _same(
                    other, membership.entity, membership.project, membership.collection
                ):
                    other.aliases = [a for a in other.aliases if a not in aliases]
            membership.aliases = list(dict.fromkeys([*membership.aliases, *aliases]))

    def memberships(self) -> list[Membership]:
        return [m for a in self.artifacts for m in a.memberships]

    def find(
        self, entity: str, project: str, collection: str, alias: str
    ) -> tuple[FakeArtifact, Membership] | None:
        """``(artifact, membership)`` for ``collection:alias`` (or ``:vN``), else None."""
        for artifact in self.artifacts:
            for m in artifact.memberships:
                if _same(m, entity, project, collection) and (
                    alias in m.aliases or alias == f"v{m.version_index}"
                ):
                    return artifact, m
        return None

    def has_project(self, entity: str, project: str) -> bool:
        return any(m.entity == entity and m.project == project for m in self.memberships())

    def has_collection(self, entity: str, project: str, collection: str) -> bool:
        return any(_same(m, entity, project, collection) for m in self.memberships())

    def by_id(self, node_id: str) -> FakeArtifact | None:
        return next((a for a in self.artifacts if a.id == node_id), None)

    def file_by_object(
        self, birth_id: str, digest_hex: str
    ) -> tuple[FakeArtifact, StoredFile] | None:
        for artifact in self.artifacts:
            for f in artifact.stored:
                if f.hex == digest_hex and (not birth_id or f.birth_id == birth_id):
                    return artifact, f
        return None


def _same(m: Membership, entity: str, project: str, collection: str) -> bool:
    return (m.entity, m.project, m.collection) == (entity, project, collection)
