"""The subset of W&B's GraphQL schema the action uses, resolved over a :class:`Store`.

Queries are parsed, validated and executed by graphql-core, as a real GraphQL server
does: a field the schema lacks is refused with "Cannot query field ... on type ...".
The *legacy* schema drops the membership fields, as older W&B Server versions lack them.
It also answers what the ``wandb`` SDK's ``wandb artifact get`` asks (its login check,
server features, and the artifact fields it reads), so that the benchmark can run it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from graphql import GraphQLSchema, build_schema

from harness.fake_wandb.store import FakeArtifact, Membership, Store, StoredFile

SDL = """
scalar JSONString
scalar Int64
enum ArtifactState { PENDING COMMITTED DELETED }

type Query {
  project(name: String!, entityName: String): Project
  artifact(id: ID!): Artifact
  entity(name: String!): Entity
  viewer: User  # the wandb SDK's login check
  serverInfo: ServerInfo
}
type ServerInfo { features: [ServerFeature!]! }
type ServerFeature { name: String! isEnabled: Boolean! }
type Tag { id: ID! name: String! }
type User {
  id: ID!
  entity: String
  username: String
  email: String
  flags: JSONString
  teams: EntityConnection
}
type EntityConnection { edges: [EntityEdge!]! }
type EntityEdge { node: Entity }
type Entity { id: ID! name: String! organization: Organization }
type Organization { id: ID! name: String! orgEntity: Entity }
type Project {
  id: ID!
  internalId: ID!
  name: String!
  entity: Entity!
  artifact(name: String!): Artifact
  artifactCollection(name: String!): ArtifactCollection
  artifactCollectionMembership(name: String!): ArtifactCollectionMembership  # modern
}
interface ArtifactCollection {
  id: ID!
  name: String!
  project: Project
  artifactMembership(aliasName: String!): ArtifactCollectionMembership  # modern
}
type ArtifactPortfolio implements ArtifactCollection {
  id: ID!
  name: String!
  project: Project
  artifactMembership(aliasName: String!): ArtifactCollectionMembership  # modern
}
type ArtifactSequence implements ArtifactCollection {
  id: ID!
  name: String!
  project: Project
  artifactMembership(aliasName: String!): ArtifactCollectionMembership  # modern
}
type ArtifactType { id: ID! name: String! }
type ArtifactAlias { id: ID! alias: String! artifactCollection: ArtifactCollection }
type ArtifactCollectionMembership {
  id: ID!
  createdAt: String
  versionIndex: Int
  aliases: [ArtifactAlias!]!
  artifactCollection: ArtifactCollection
  artifact: Artifact
  files(after: String, first: Int): FileConnection!
}
type Artifact {
  id: ID!
  versionIndex: Int
  state: ArtifactState!
  digest: String!
  size: Int64!
  fileCount: Int64!
  description: String
  metadata: JSONString
  artifactType: ArtifactType!
  artifactSequence: ArtifactSequence!
  aliases: [ArtifactAlias!]!
  currentManifest: ArtifactManifest
  ttlDurationSeconds: Int64
  ttlIsInherited: Boolean
  tags: [Tag!]!
  historyStep: Int64
  commitHash: String
  createdAt: String
  updatedAt: String
  files(after: String, first: Int): FileConnection!
}
type ArtifactManifest { id: ID! file: File! }
type File { id: ID! name: String! directUrl: String! sizeBytes: Int64 }
type FileConnection { pageInfo: PageInfo! edges: [FileEdge!]! }
type FileEdge { node: File cursor: String! }
type PageInfo { endCursor: String hasNextPage: Boolean! }
"""


def make_schema(*, legacy: bool) -> GraphQLSchema:
    sdl = re.sub(r"^.*# modern\n", "", SDL, flags=re.MULTILINE) if legacy else SDL
    schema = build_schema(sdl)
    collection = schema.type_map["ArtifactCollection"]
    collection.resolve_type = lambda node, *_: getattr(  # type: ignore[attr-defined]
        node, "typename", "ArtifactSequence"
    )
    return schema


class Context:
    """What resolvers need from the server: the store and URL signing."""

    def __init__(
        self,
        store: Store,
        file_url: Callable[[StoredFile], str],
        manifest_url: Callable[[FakeArtifact], str],
        page_size: int,
    ) -> None:
        self.store = store
        self.file_url = file_url
        self.manifest_url = manifest_url
        self.page_size = page_size


def _entity(name: str) -> dict[str, Any]:
    return {"id": f"entity:{name}", "name": name, "organization": None}


def _project(ctx: Context, entity: str, name: str) -> ProjectNode:
    return ProjectNode(ctx, entity, name)


def _aliases(names: list[str]) -> list[dict[str, str]]:
    return [{"id": f"alias:{a}", "alias": a} for a in names]


class Root:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def project(self, info: Any, name: str, entityName: str | None = None) -> ProjectNode | None:
        if entityName and self.ctx.store.has_project(entityName, name):
            return _project(self.ctx, entityName, name)
        return None

    def artifact(self, info: Any, id: str) -> ArtifactNode | None:
        found = self.ctx.store.by_id(id)
        return ArtifactNode(self.ctx, found) if found else None

    def serverInfo(self, info: Any) -> dict[str, Any]:
        return {"features": []}

    def viewer(self, info: Any) -> dict[str, Any]:
        return {
            "id": "user:1",
            "entity": "acme",
            "username": "bench",
            "email": None,
            "flags": "{}",
            "teams": {"edges": []},
        }

    def entity(self, info: Any, name: str) -> dict[str, Any] | None:
        if not any(m.entity == name for m in self.ctx.store.memberships()) and name not in {
            org for _, org in self.ctx.store.org_of.values()
        } | set(self.ctx.store.org_of):
            return None
        node = _entity(name)
        if name in self.ctx.store.org_of:
            org_name, org_entity = self.ctx.store.org_of[name]
            node["organization"] = {
                "id": f"org:{org_name}",
                "name": org_name,
                "orgEntity": _entity(org_entity),
            }
        return node


class ProjectNode:
    def __init__(self, ctx: Context, entity: str, name: str) -> None:
        self.ctx, self.name, self._entity = ctx, name, entity
        self.id = self.internalId = f"project:{entity}/{name}"
        self.entity = _entity(entity)

    def _find(self, name: str) -> tuple[FakeArtifact, Membership] | None:
        collection, _, alias = name.partition(":")
        return self.ctx.store.find(self._entity, self.name, collection, alias or "latest")

    def artifactCollectionMembership(self, info: Any, name: str) -> MembershipNode | None:
        found = self._find(name)
        return MembershipNode(self.ctx, *found) if found else None

    def artifact(self, info: Any, name: str) -> ArtifactNode | None:
        found = self._find(name)
        return ArtifactNode(self.ctx, found[0]) if found else None

    def artifactCollection(self, info: Any, name: str) -> CollectionNode | None:
        if self.ctx.store.has_collection(self._entity, self.name, name):
            return CollectionNode(self.ctx, self._entity, self.name, name)
        return None


class CollectionNode:
    def __init__(self, ctx: Context, entity: str, project: str, name: str) -> None:
        self.ctx, self.name, self._where = ctx, name, (entity, project)
        self.id = f"collection:{entity}/{project}/{name}"
        source = any(
            (a.source.entity, a.source.project, a.source.collection) == (entity, project, name)
            for a in ctx.store.artifacts
        )
        self.typename = "ArtifactSequence" if source else "ArtifactPortfolio"
        self.project = _project(ctx, entity, project)

    def artifactMembership(self, info: Any, aliasName: str) -> MembershipNode | None:
        found = self.ctx.store.find(*self._where, self.name, aliasName)
        return MembershipNode(self.ctx, *found) if found else None


def _files(
    ctx: Context, artifact: FakeArtifact, after: str | None, first: int | None
) -> dict[str, Any]:
    stored = artifact.stored
    start = int(base64.b64decode(after).decode()) if after else 0
    count = min(first or ctx.page_size, ctx.page_size)
    page = stored[start : start + count]
    edges = [
        {
            "cursor": base64.b64encode(str(start + n + 1).encode()).decode(),
            "node": {
                "id": f"file:{f.path}",
                "name": f.path,
                "directUrl": ctx.file_url(f),
                "sizeBytes": f.size,
            },
        }
        for n, f in enumerate(page)
    ]
    end = start + len(page)
    return {
        "edges": edges,
        "pageInfo": {
            "endCursor": base64.b64encode(str(end).encode()).decode() if page else after,
            "hasNextPage": end < len(stored),
        },
    }


class MembershipNode:
    def __init__(self, ctx: Context, artifact: FakeArtifact, membership: Membership) -> None:
        self.ctx, self._artifact = ctx, artifact
        self.id = f"membership:{artifact.id}:{membership.collection}"
        self.versionIndex = membership.version_index
        self.createdAt = "2026-01-01T00:00:00"
        self.aliases = _aliases(membership.aliases)
        self.artifactCollection = CollectionNode(
            ctx, membership.entity, membership.project, membership.collection
        )
        self.artifact = ArtifactNode(ctx, artifact)

    def files(
        self, info: Any, after: str | None = None, first: int | None = None
    ) -> dict[str, Any]:
        return _files(self.ctx, self._artifact, after, first)


class ArtifactNode:
    def __init__(self, ctx: Context, artifact: FakeArtifact) -> None:
        self.ctx, self._artifact = ctx, artifact
        source = artifact.source
        self.id = artifact.id
        self.versionIndex = source.version_index
        self.state = artifact.state
        self.digest = artifact.digest
        self.size = artifact.size
        self.fileCount = len(artifact.files)
        self.description = artifact.description
        self.metadata = json.dumps(artifact.metadata)
        self.artifactType = {"id": f"type:{artifact.type}", "name": artifact.type}
        self.artifactSequence = {
            "id": f"sequence:{source.collection}",
            "name": source.collection,
            "project": _project(ctx, source.entity, source.project),
        }
        self.aliases = _aliases(source.aliases)
        self.ttlDurationSeconds, self.ttlIsInherited, self.tags = -1, True, []
        self.historyStep, self.commitHash = None, None
        self.createdAt = self.updatedAt = "2026-01-01T00:00:00"

    def currentManifest(self, info: Any) -> dict[str, Any]:
        url = self.ctx.manifest_url(self._artifact)
        return {
            "id": f"manifest:{self.id}",
            "file": {
                "id": "manifest",
                "name": "wandb_manifest.json",
                "directUrl": url,
                "sizeBytes": None,
            },
        }

    def files(
        self, info: Any, after: str | None = None, first: int | None = None
    ) -> dict[str, Any]:
        return _files(self.ctx, self._artifact, after, first)
