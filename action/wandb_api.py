"""W&B's artifact API, as far as the action needs it: resolve, manifest, file URLs."""

from __future__ import annotations

from typing import Any

from action import queries
from action.artifact import Artifact, dig, parse_artifact, text
from action.errors import ApiError, ArtifactStateError, NotFoundError, UnsupportedFieldError
from action.graphql import GraphQLClient
from action.refs import IdRef, NameRef

FILES_PER_PAGE = 5000


class WandbApi:
    """Resolves references and lists files; remembers when the server is an older one."""

    def __init__(self, client: GraphQLClient) -> None:
        self._client = client
        self._legacy = False

    @property
    def base_url(self) -> str:
        return self._client.base_url

    def resolve(self, ref: NameRef | IdRef) -> Artifact:
        """The committed artifact ``ref`` names; raise when missing or not committed."""
        artifact = self._by_id(ref) if isinstance(ref, IdRef) else self._by_name(ref)
        if artifact.state != "COMMITTED":
            raise ArtifactStateError(
                f"artifact {artifact.name} is {artifact.state or 'in an unknown state'}, "
                "not COMMITTED, so its files are not all uploaded.",
                fix="Wait for the run that logs it to finish (or log it again), then re-run.",
            )
        return artifact

    def _by_id(self, ref: IdRef) -> Artifact:
        data = self._client.execute("ArtifactById", queries.ARTIFACT_BY_ID, {"id": ref.id})
        node = data.get("artifact")
        if not isinstance(node, dict):
            raise NotFoundError(
                f"W&B at {self.base_url} has no artifact with id {ref.id!r} ({ref}), "
                "or the API key cannot see it.",
                fix="Check the payload's artifact_version, the `base-url`, and that the key's "
                "user can read the project.",
            )
        seq = dig(node, "artifactSequence")
        return parse_artifact(
            node,
            entity=text(seq, "project", "entity", "name"),
            project=text(seq, "project", "name"),
            collection=text(seq, "name"),
            version_index=node.get("versionIndex"),
            aliases=node.get("aliases"),
        )

    def _by_name(self, ref: NameRef) -> Artifact:
        entity = self._org_entity(ref.entity) if ref.is_registry else ref.entity
        names = {"entityName": entity, "projectName": ref.project}
        name = f"{ref.collection}:{ref.alias}"
        if not self._legacy:
            try:
                data = self._client.execute(
                    "ArtifactMembership", queries.ARTIFACT_MEMBERSHIP, {**names, "name": name}
                )
            except UnsupportedFieldError:
                self._legacy = True
            else:
                member = self._project(data, ref, entity).get("artifactCollectionMembership")
                if not isinstance(member, dict) or not isinstance(member.get("artifact"), dict):
                    raise self._missing(ref, entity)
                coll = dig(member, "artifactCollection")
                return parse_artifact(
                    member["artifact"],
                    entity=text(coll, "project", "entity", "name") or entity,
                    project=text(coll, "project", "name") or ref.project,
                    collection=text(coll, "name") or ref.collection,
                    version_index=member.get("versionIndex"),
                    aliases=member.get("aliases"),
                )
        data = self._client.execute(
            "ArtifactByName", queries.ARTIFACT_BY_NAME, {**names, "name": name}
        )
        node = self._project(data, ref, entity).get("artifact")
        if not isinstance(node, dict):
            raise self._missing(ref, entity)
        return parse_artifact(
            node,
            entity=entity,
            project=ref.project,
            collection=ref.collection,
            version_index=node.get("versionIndex"),
            aliases=node.get("aliases"),
        )

    def _org_entity(self, entity: str) -> str:
        """Registry projects live under the organization's entity; map a team to it."""
        try:
            data = self._client.execute("OrgEntity", queries.ORG_ENTITY, {"entityName": entity})
        except UnsupportedFieldError:
            return entity
        return text(data, "entity", "organization", "orgEntity", "name") or entity

    def _project(self, data: dict[str, Any], ref: NameRef, entity: str) -> dict[str, Any]:
        project = data.get("project")
        if not isinstance(project, dict):
            raise NotFoundError(
                f"W&B project {entity}/{ref.project} was not found at {self.base_url} "
                f"(looking up {ref}), or the API key cannot see it.",
                fix="Check the entity and project in the artifact reference and that the "
                "key's user is a member of the team (registry: has access to the registry).",
            )
        return project

    def _missing(self, ref: NameRef, entity: str) -> NotFoundError:
        return NotFoundError(
            f"artifact {ref.collection}:{ref.alias} was not found in W&B project "
            f"{entity}/{ref.project} at {self.base_url}.",
            fix="Check the collection name and the alias or version (vN) in the reference.",
        )

    def manifest_url(self, artifact: Artifact) -> str:
        data = self._client.execute("ArtifactManifest", queries.MANIFEST, {"id": artifact.id})
        url = text(data, "artifact", "currentManifest", "file", "directUrl")
        if not url:
            raise ApiError(
                f"W&B returned no manifest for {artifact.name}.",
                fix="The version may be corrupt; log it again or contact W&B support.",
            )
        return url

    def file_urls(self, artifact: Artifact) -> dict[str, str]:
        """Every stored file's pre-signed ``directUrl``, by manifest path (paged)."""
        if not self._legacy:
            variables = {
                "entityName": artifact.entity,
                "projectName": artifact.project,
                "collectionName": artifact.collection,
                "alias": artifact.version,
            }
            where = ("project", "artifactCollection", "artifactMembership", "files")
            try:
                return self._pages("MembershipFileUrls", queries.MEMBERSHIP_FILES, variables, where)
            except UnsupportedFieldError:
                self._legacy = True
        path = ("artifact", "files")
        return self._pages("ArtifactFileUrls", queries.ARTIFACT_FILES, {"id": artifact.id}, path)

    def _pages(
        self, operation: str, query: str, variables: dict[str, Any], path: tuple[str, ...]
    ) -> dict[str, str]:
        urls: dict[str, str] = {}
        cursor: str | None = None
        seen: set[str | None] = set()
        while True:
            page_vars = {**variables, "cursor": cursor, "perPage": FILES_PER_PAGE}
            conn = dig(self._client.execute(operation, query, page_vars), *path)
            if not isinstance(conn, dict):
                raise ApiError(
                    f"W&B returned no file list ({operation}).",
                    fix="Check that the key's user can read the artifact's collection.",
                )
            for edge in conn.get("edges") or []:
                name, url = text(edge, "node", "name"), text(edge, "node", "directUrl")
                if name and url:
                    urls[name] = url
            seen.add(cursor)
            cursor = text(conn, "pageInfo", "endCursor") or None
            if not dig(conn, "pageInfo", "hasNextPage"):
                return urls
            if cursor in seen:
                raise ApiError(
                    f"W&B's file list ({operation}) does not advance past cursor {cursor!r}.",
                    fix="Re-run the job; report it to W&B if it persists.",
                )
