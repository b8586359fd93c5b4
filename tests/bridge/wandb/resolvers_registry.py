"""The stand-in's registry resolvers: collections, their versions and memberships, and
the writes the SDK makes (``addAliases``, ``deleteAliases``, ``updateArtifact``).

Every write changes :class:`State` through its registry methods and hands the changes
to ``on_change`` (the stand-in fires webhooks from them). W&B's refusals: an unknown
artifact or membership, a bad alias or tag name, and a protected alias in a registry
for a user who is not its admin, each a GraphQL error; nothing is changed by a refused
write. Versions are listed oldest first (``order`` starting with ``-``: newest first),
paged by ``State.page_cap``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from tests.bridge.wandb.standin_state import Change, Collection, Project, State

ALIAS_RE = re.compile(r"^[^/:]{1,128}$")
TAG_RE = re.compile(r"^[-\w]+([ ]+[-\w]+)*$")
VERSION_RE = re.compile(r"^v\d+$")
REGISTRY_PREFIX = "wandb-registry-"


class Refused(Exception):
    """A refusal W&B's resolvers would raise; ``status`` is the HTTP status it answers."""

    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.status = status


def _id(kind: str, key: str) -> str:
    return base64.b64encode(f"{kind}:{key}".encode()).decode()


def window(total: int, after: str | None, first: int | None, cap: int) -> tuple[int, int, str]:
    """(start, end, cursor at end) of one page of ``total`` items; cursors are opaque."""
    start = int(base64.b64decode(after).decode()) if after else 0
    end = min(total, start + min(first or cap, cap))
    return start, end, base64.b64encode(str(end).encode()).decode()


class Registry:
    """Registry nodes and writes over a :class:`State`; ``project_node`` builds a
    project's node (the automations' resolvers own it)."""

    def __init__(
        self,
        state: State,
        project_node: Callable[[str, str], dict[str, Any] | None],
        on_change: Callable[[list[Change]], None],
    ) -> None:
        self.s = state
        self.project_node = project_node
        self.on_change = on_change

    # -- nodes ----------------------------------------------------------------------------
    def collection(self, p: Project, c: Collection) -> dict[str, Any]:
        return {
            "__typename": c.typename,
            "id": c.id,
            "name": c.name,
            "description": None,
            "createdAt": "2025-01-01T00:00:00Z",
            "updatedAt": None,
            "project": lambda info: self.project_node(p.entity, p.name),
            "defaultArtifactType": self.artifact_type(p, c.type),
            "tags": {"edges": []},
            "artifacts": lambda info, after=None, first=None, order=None, filters=None: (
                self.versions(p, c, after, first, order, filters)
            ),
            "aliases": lambda info, after=None, first=None: self.aliases(p, c, after, first),
        }

    def artifact_type(self, p: Project, type_name: str) -> dict[str, Any]:
        def named(info: Any, name: str) -> dict[str, Any] | None:
            c = p.collections.get(name)
            return self.collection(p, c) if c and c.type == type_name else None

        return {
            "__typename": "ArtifactType",
            "id": _id("ArtifactType", type_name),
            "name": type_name,
            "artifactCollection": named,
            "artifactCollections": lambda info, after=None, first=None, filters=None, order=None: (
                self.collections(p, after, first, filters, type_name)
            ),
        }

    def project_type(self, p: Project, name: str) -> dict[str, Any] | None:
        """``project { artifactType(name) }``: null when no collection has that type."""
        if not any(c.type == name for c in p.collections.values()):
            return None
        return self.artifact_type(p, name)

    def collections(
        self,
        p: Project,
        after: str | None,
        first: int | None,
        filters: str | None,
        type_name: str | None = None,
    ) -> dict[str, Any]:
        """A project's collections (of one type), by pages; ``filters`` may name one."""
        wanted = json.loads(filters) if filters else {}
        unknown = set(wanted) - {"name"}
        if unknown:
            raise Refused(f"unsupported collection filter {sorted(unknown)}")
        found = [
            c
            for c in p.collections.values()
            if wanted.get("name", c.name) == c.name and type_name in (None, c.type)
        ]
        start, end, cursor = window(len(found), after, first, self.s.page_cap)
        return {
            "totalCount": len(found),
            "pageInfo": {"endCursor": cursor, "hasNextPage": end < len(found)},
            "edges": [{"node": self.collection(p, c), "cursor": cursor} for c in found[start:end]],
        }

    def versions(
        self,
        p: Project,
        c: Collection,
        after: str | None,
        first: int | None,
        order: str | None,
        filters: str | None,
    ) -> dict[str, Any]:
        wanted = json.loads(filters) if filters else {}
        unknown = set(wanted) - {"state"}
        if unknown:
            raise Refused(f"unsupported artifact filter {sorted(unknown)}")
        found = [v for v in c.versions if wanted.get("state", "COMMITTED") == "COMMITTED"]
        if order and order.startswith("-"):
            found.reverse()
        start, end, cursor = window(len(found), after, first, self.s.page_cap)
        return {
            "totalCount": len(found),
            "pageInfo": {"endCursor": cursor, "hasNextPage": end < len(found)},
            "edges": [
                {"node": self.artifact(p, c, v), "version": f"v{v['index']}", "cursor": cursor}
                for v in found[start:end]
            ],
        }

    def aliases(
        self, p: Project, c: Collection, after: str | None, first: int | None
    ) -> dict[str, Any]:
        found = [(v, a) for v in c.versions for a in v["aliases"]]
        start, end, cursor = window(len(found), after, first, self.s.page_cap)
        return {
            "pageInfo": {"endCursor": cursor, "hasNextPage": end < len(found)},
            "edges": [
                {"node": self.alias(p, c, v, a), "cursor": cursor} for v, a in found[start:end]
            ],
        }

    def alias(self, p: Project, c: Collection, v: dict[str, Any], alias: str) -> dict[str, Any]:
        return {
            "__typename": "ArtifactAlias",
            "id": _id("ArtifactAlias", f"{c.id}:{alias}"),
            "alias": alias,
            "artifactCollection": lambda info: self.collection(p, c),
        }

    def artifact(self, p: Project, c: Collection, v: dict[str, Any]) -> dict[str, Any]:
        # The source sequence: the collection itself, or for a registry (portfolio)
        # link a sequence of the same name (the stand-in keeps no separate source).
        source = {
            "__typename": "ArtifactSequence",
            "id": c.id if c.typename == "ArtifactSequence" else _id("ArtifactSequence", c.id),
            "name": c.name,
            "project": lambda info: self.project_node(p.entity, p.name),
        }
        return {
            "__typename": "Artifact",
            "id": v["artifact"],
            "artifactSequence": source,
            "versionIndex": v["index"],
            "artifactType": self.artifact_type(p, c.type),
            "description": v.get("description"),
            "metadata": json.dumps(v["metadata"]),
            "ttlDurationSeconds": -1,
            "ttlIsInherited": True,
            "tags": [{"__typename": "Tag", "id": _id("Tag", t), "name": t} for t in v["tags"]],
            "historyStep": None,
            "state": "COMMITTED",
            "size": 0,
            "digest": base64.b16encode(v["artifact"].encode()).decode().lower()[:32],
            "digestAlgorithm": "MANIFEST_MD5",
            "commitHash": None,
            "fileCount": 0,
            "createdAt": v["created_at"],
            "updatedAt": None,
            "aliases": [self.alias(p, c, v, a) for a in v["aliases"]],
        }

    def membership(self, p: Project, name: str) -> dict[str, Any] | None:
        """``collection:alias`` or ``collection:vN`` in a project, or None."""
        cname, _, alias = name.partition(":")
        c = p.collections.get(cname)
        if c is None:
            return None
        for v in c.versions:
            if alias in v["aliases"] or alias == f"v{v['index']}":
                aliases = [self.alias(p, c, v, a) for a in v["aliases"]]
                return {
                    "id": _id("Membership", f"{c.id}:{v['index']}"),
                    "versionIndex": v["index"],
                    "createdAt": v["created_at"],
                    "aliases": aliases,
                    "artifactCollection": self.collection(p, c),
                    "artifact": self.artifact(p, c, v),
                }
        return None

    def by_id(self, artifact_id: str) -> dict[str, Any] | None:
        found = self.s.find_artifact(artifact_id)
        return self.artifact(*found) if found else None

    def collection_by_id(self, collection_id: str) -> dict[str, Any] | None:
        for p in self.s.projects.values():
            for c in p.collections.values():
                if c.id == collection_id:
                    return self.collection(p, c)
        return None

    # -- writes ---------------------------------------------------------------------------
    def add_aliases(self, data: dict[str, Any]) -> dict[str, Any]:
        self.s.mutations.append("addAliases")
        targets = self._alias_targets(data, adding=True)
        changes: list[Change] = []
        for p, c, v, alias in targets:
            changes += self.s.add_alias(p, c.name, v["index"], alias, self.s.username)
        self.on_change(changes)
        return {"success": True}

    def delete_aliases(self, data: dict[str, Any]) -> dict[str, Any]:
        self.s.mutations.append("deleteAliases")
        for p, c, v, alias in self._alias_targets(data, adding=False):
            self.s.remove_alias(p, c.name, v["index"], alias, self.s.username)
        return {"success": True}

    def update_artifact(self, data: dict[str, Any]) -> dict[str, Any]:
        self.s.mutations.append("updateArtifact")
        p, c, v = self._artifact(data["artifactID"])
        adds = [t["tagName"] for t in data.get("tagsToAdd") or []]
        drops = [t["tagName"] for t in data.get("tagsToDelete") or []]
        for tag in adds + drops:
            if not TAG_RE.match(tag) or len(tag) > 128:
                raise Refused(f"invalid tag name {tag!r}")
        aliases = data.get("aliases")
        if aliases is not None:
            for a in aliases:
                if a["artifactCollectionName"] != c.name:
                    raise Refused(f"artifact is not in collection {a['artifactCollectionName']}")
            wanted = [a["alias"] for a in aliases]
            for alias in set(wanted) - set(v["aliases"]):
                self._check_alias(p, alias, adding=True)
            for alias in set(v["aliases"]) - set(wanted):
                self._check_alias(p, alias, adding=False)
        if data.get("description") is not None:
            v["description"] = data["description"]
        if data.get("metadata") is not None:
            v["metadata"] = json.loads(data["metadata"])
        changes: list[Change] = []
        if aliases is not None:
            for alias in [a for a in v["aliases"] if a not in wanted]:
                self.s.remove_alias(p, c.name, v["index"], alias, self.s.username)
            for alias in wanted:
                changes += self.s.add_alias(p, c.name, v["index"], alias, self.s.username)
        for tag in adds:
            changes += self.s.add_tag(p, c.name, v["index"], tag, self.s.username)
        for tag in drops:
            changes += self.s.remove_tag(p, c.name, v["index"], tag, self.s.username)
        self.on_change(changes)
        return {"artifact": self.artifact(p, c, v)}

    def _artifact(self, artifact_id: str) -> tuple[Project, Collection, dict[str, Any]]:
        found = self.s.find_artifact(artifact_id)
        if found is None:
            raise Refused(f"artifact {artifact_id} not found")
        return found

    def _alias_targets(
        self, data: dict[str, Any], adding: bool
    ) -> list[tuple[Project, Collection, dict[str, Any], str]]:
        """Every (project, collection, version, alias) a write names, all checked first."""
        p, c, v = self._artifact(data["artifactID"])
        targets = []
        for a in data["aliases"]:
            where = (a["entityName"], a["projectName"], a["artifactCollectionName"])
            if where != (p.entity, p.name, c.name):
                raise Refused(f"artifact membership not found in {'/'.join(where)}")
            self._check_alias(p, a["alias"], adding)
            targets.append((p, c, v, a["alias"]))
        return targets

    def _check_alias(self, p: Project, alias: str, adding: bool) -> None:
        """A name W&B takes (when added), and not protected from this user."""
        if adding and (not ALIAS_RE.match(alias) or VERSION_RE.match(alias)):
            raise Refused(f"invalid alias {alias!r}")
        protected = p.name.startswith(REGISTRY_PREFIX) and alias in self.s.protected_aliases
        if protected and not self.s.registry_admin:
            raise Refused(
                f"permission denied: only registry admins can add or remove the protected "
                f"alias {alias!r}"
            )
