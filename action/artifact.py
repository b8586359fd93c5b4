"""A resolved artifact version, and how it is read from W&B's GraphQL answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from action.errors import ApiError


@dataclass(frozen=True)
class Artifact:
    """One resolved artifact version, named by the collection it was resolved in."""

    id: str
    entity: str
    project: str
    collection: str
    version_index: int
    aliases: tuple[str, ...]
    digest: str
    type: str
    state: str
    size: int
    file_count: int
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return f"v{self.version_index}"

    @property
    def name(self) -> str:
        """``entity/project/collection:vN``."""
        return f"{self.entity}/{self.project}/{self.collection}:{self.version}"


def dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None when any level is missing or null."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def text(data: Any, *keys: str) -> str:
    """Like :func:`dig`, for a string field: ``""`` when missing or not a string."""
    value = dig(data, *keys)
    return value if isinstance(value, str) else ""


def parse_artifact(node: dict[str, Any], **where: Any) -> Artifact:
    raw_meta = node.get("metadata")
    try:
        metadata = json.loads(raw_meta) if isinstance(raw_meta, str) and raw_meta else {}
    except ValueError:
        metadata = {}
    if isinstance(raw_meta, dict):
        metadata = raw_meta
    aliases = tuple(
        a["alias"] for a in where["aliases"] or [] if isinstance(a, dict) and a.get("alias")
    )
    index = where["version_index"]
    if not isinstance(index, int):
        index = node.get("versionIndex")
    if not isinstance(index, int) or not where["entity"] or not where["collection"]:
        raise ApiError(
            "W&B's answer about the artifact lacks its collection or version.",
            fix="Re-run the job; report the W&B Server version if it persists.",
        )
    return Artifact(
        id=str(node.get("id", "")),
        entity=where["entity"],
        project=where["project"],
        collection=where["collection"],
        version_index=index,
        aliases=aliases,
        digest=str(node.get("digest") or ""),
        type=text(node, "artifactType", "name"),
        state=str(node.get("state") or ""),
        size=int(node.get("size") or 0),
        file_count=int(node.get("fileCount") or 0),
        description=str(node.get("description") or ""),
        metadata=metadata if isinstance(metadata, dict) else {"value": metadata},
    )
