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
    """An :class:`Artifact` from W&B's ``Artifact`` node and where it was found; fields of
    the wrong type are read as missing, as W&B's answers are not trusted."""
    metadata = _metadata(node.get("metadata"))
    raw_aliases = where["aliases"]
    aliases = tuple(
        a["alias"]
        for a in (raw_aliases if isinstance(raw_aliases, list) else [])
        if isinstance(a, dict) and isinstance(a.get("alias"), str) and a["alias"]
    )
    index = where["version_index"]
    if not _is_int(index):
        index = node.get("versionIndex")
    if not _is_int(index) or index < 0 or not where["entity"] or not where["collection"]:
        raise ApiError(
            "W&B's answer about the artifact lacks its collection or version.",
            fix="Re-run the job; report the W&B Server version if it persists.",
        )
    return Artifact(
        id=text(node, "id"),
        entity=where["entity"],
        project=where["project"],
        collection=where["collection"],
        version_index=index,
        aliases=aliases,
        digest=text(node, "digest"),
        type=text(node, "artifactType", "name"),
        state=text(node, "state"),
        size=_count(node.get("size")),
        file_count=_count(node.get("fileCount")),
        description=text(node, "description"),
        metadata=metadata,
    )


def outputs(artifact: Artifact) -> dict[str, str]:
    """The action's outputs that describe the version."""
    return {
        "artifact": artifact.name,
        "version": artifact.version,
        "aliases": json.dumps(list(artifact.aliases)),
        "digest": artifact.digest,
        "entity": artifact.entity,
        "project": artifact.project,
        "collection": artifact.collection,
        "type": artifact.type,
        "metadata": json.dumps(artifact.metadata, sort_keys=True),
        "description": artifact.description,
    }


def _metadata(raw: Any) -> dict[str, Any]:
    """W&B sends metadata as a JSON string (older servers: an object)."""
    if isinstance(raw, str) and raw:
        try:
            raw = json.loads(raw, parse_constant=lambda name: None)  # NaN is not JSON
        except (ValueError, RecursionError):
            return {}
    if isinstance(raw, dict):
        return raw
    return {} if raw is None or raw == "" else {"value": raw}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value: Any) -> int:
    if _is_int(value):
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():  # Int64 as a string
        return int(value)
    return 0
