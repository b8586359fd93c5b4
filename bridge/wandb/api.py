"""The W&B operations ``wandb-bridge wandb`` uses, with their answers as values.

The automation operations W&B's SDK sends (list, create, update, delete automations;
list and create webhook integrations), plus the scope, secret and artifact look-ups
around them (documents in :mod:`bridge.wandb.queries`). Listings are paged to the end;
a server without ``Entity.triggers`` is walked project by project, as the SDK does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from bridge.errors import WandbError
from bridge.wandb.client import GraphQL
from bridge.wandb.model import (
    ENTITY_SCOPE,
    ENTITY_TRIGGERS,
    SCOPE_TYPES,
    Automation,
    Integration,
    Scope,
    Target,
)
from bridge.wandb.queries import (
    ADD_ALIASES,
    AUTOMATIONS,
    AUTOMATIONS_LEGACY,
    COLLECTION,
    COLLECTION_VERSIONS,
    CREATE,
    CREATE_INTEGRATION,
    DELETE,
    ENTITY,
    ENTITY_PROJECTS,
    FEATURES,
    INSERT_SECRET,
    INTEGRATIONS,
    ORG_ENTITY,
    PROJECT,
    PROJECT_COLLECTIONS,
    SECRETS,
    TRIGGER,
    UPDATE,
    UPDATE_ARTIFACT,
    VERSION,
    VERSION_LEGACY,
)

PER_PAGE = 50
MAX_PAGES = 1000  # a server that never ends a listing must not keep us forever

ADMIN_FIX = "use the API key of an admin of that W&B team"
WRITE_FIX = (
    "use the API key of a user who may edit that collection (a protected alias in a "
    "registry needs a registry admin)"
)

P = ParamSpec("P")
R = TypeVar("R")


def reads_answer(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Translate a field missing from W&B's answer, or of another type, into a WandbError
    naming it: a proxy, or an older or newer W&B, can answer otherwise than expected."""

    def decorate(read: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(read)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return read(*args, **kwargs)
            except (KeyError, TypeError, AttributeError) as exc:
                wrong = (
                    f"it has no field {exc.args[0]!r}"
                    if isinstance(exc, KeyError)
                    else f"a field has another type ({exc})"
                )
                raise WandbError(
                    f"W&B's answer ({what}) is not what the bridge expects: {wrong}; check "
                    "that wandb.base_url is W&B's API URL, and report it if it is"
                ) from exc

        return wrapper

    return decorate


def refused(exc: WandbError) -> bool:
    """W&B answered this request on its merits (GraphQL errors: an unknown field, no
    access), not with a rate limit or an outage, which it may word as GraphQL errors too."""
    return exc.graphql and exc.status != 429 and (exc.status or 0) < 500


class WandbApi:
    """The operations on one entity; remembers the server's features once asked."""

    def __init__(self, gql: GraphQL, entity: str) -> None:
        self.gql = gql
        self.entity = entity
        self._features: frozenset[str] | None = None
        self._org: str | None = None

    # -- reading ---------------------------------------------------------------------------

    @reads_answer("list its features")
    def features(self) -> frozenset[str]:
        """The server's enabled feature flags; none on a server too old to list them."""
        if self._features is None:
            try:
                data = self.gql.execute(
                    "list its features", "ServerFeaturesQuery", FEATURES, {}, ""
                )
                found = (data.get("serverInfo") or {}).get("features") or []
                self._features = frozenset(f["name"] for f in found if f.get("isEnabled"))
            except WandbError as exc:
                if not refused(exc):
                    raise
                self._features = frozenset()
        return self._features

    @reads_answer("look up the entity")
    def entity_scope(self) -> Scope:
        """The entity itself; fails with the fix when W&B has no such entity for this key."""
        data = self._run("look up the entity", "EntityInfo", ENTITY, {"entity": self.entity})
        node = data.get("entity")
        if not node:
            raise WandbError(
                f"W&B has no entity {self.entity!r} that this API key can see; set "
                "wandb.entity to the team's name (as in https://wandb.ai/<entity>), and use a "
                "key of one of its members"
            )
        return Scope("ENTITY", node["id"], node["name"])

    def org_entity(self) -> str:
        """The entity that holds the organization's registries (``wandb-registry-*``)."""
        if self._org is None:
            self._org = self._read_org_entity()
        return self._org

    @reads_answer("look up the organization")
    def _read_org_entity(self) -> str:
        variables = {"entity": self.entity}
        try:
            data = self._run("look up the organization", "OrgEntity", ORG_ENTITY, variables)
        except WandbError as exc:
            if not refused(exc):
                raise
            return self.entity  # a server without organizations: registries are the entity's
        org = ((data.get("entity") or {}).get("organization") or {}).get("orgEntity") or {}
        return str(org.get("name") or self.entity)

    @reads_answer("look up a project")
    def project_scope(self, entity: str, project: str) -> Scope | None:
        variables = {"entity": entity, "project": project}
        node = self._run("look up a project", "ProjectScope", PROJECT, variables).get("project")
        return Scope("PROJECT", node["id"], node["name"]) if node else None

    @reads_answer("look up a collection")
    def collection_scope(self, entity: str, project: str, collection: str) -> Scope | None:
        variables = {"entity": entity, "project": project, "collection": collection}
        data = self._run("look up a collection", "CollectionScope", COLLECTION, variables)
        node = (data.get("project") or {}).get("artifactCollection")
        if not node:
            return None
        return Scope("ARTIFACT_COLLECTION", node["id"], f"{project}/{node['name']}")

    @reads_answer("list webhook integrations")
    def integrations(self) -> list[Integration]:
        """The entity's webhook integrations (other kinds are left out)."""
        found = []
        for node in self._pages(
            "list webhook integrations", "IntegrationsByEntity", INTEGRATIONS, ("integrations",)
        ):
            if node and node.get("__typename") == "GenericWebhookIntegration":
                found.append(Integration(node["id"], node["name"], node["urlEndpoint"]))
        return found

    @reads_answer("list automations")
    def automations(self, entity: str | None = None) -> list[Automation]:
        """Every automation of ``entity`` (default: ours; another one this key cannot see
        has none). Servers without ``Entity.triggers`` are walked project by project, as
        W&B's SDK does there."""
        if ENTITY_TRIGGERS in self.features():
            nodes = self._pages(
                "list automations",
                "GetEntityAutomations",
                self._with_trigger(AUTOMATIONS),
                ("triggers",),
                entity,
            )
        else:
            nodes = (
                trigger
                for project in self._pages(
                    "list automations",
                    "GetEntityAutomationsLegacy",
                    self._with_trigger(AUTOMATIONS_LEGACY),
                    ("projects",),
                    entity,
                )
                for trigger in (project or {}).get("triggers") or ()
            )
        return [parse_automation(node) for node in nodes if node]

    @reads_answer("list team secrets")
    def secret_names(self) -> frozenset[str] | None:
        """The names of the team's secrets; None when this W&B does not list them."""
        try:
            data = self.gql.execute(
                "list team secrets", "EntitySecrets", SECRETS, {"entity": self.entity}, ADMIN_FIX
            )
        except WandbError as exc:
            if exc.graphql:
                return None
            raise
        secrets = (data.get("entity") or {}).get("secrets")
        if secrets is None:
            return None
        return frozenset(s["name"] for s in secrets if s and s.get("name"))

    @reads_answer("look up the artifact")
    def artifact_version(self, entity: str, project: str, name: str) -> dict[str, Any] | None:
        """``versionIndex``, ``aliases``, the artifact's ``id`` and ``metadata`` of
        ``collection:alias`` in ``entity/project``; None when W&B has no such version."""
        variables = {"entity": entity, "project": project, "name": name}
        try:
            data = self._run("look up the artifact", "ArtifactVersion", VERSION, variables)
            node = (data.get("project") or {}).get("artifactCollectionMembership")
            if node:
                return {**(node.get("artifact") or {}), **node}
            return None
        except WandbError as exc:
            if not exc.graphql:
                raise
        # Older W&B Server has no membership field; the artifact by name answers there.
        data = self._run("look up the artifact", "ArtifactVersionLegacy", VERSION_LEGACY, variables)
        node = (data.get("project") or {}).get("artifact")
        return dict(node) if node else None

    # -- the registry, for catch-up --------------------------------------------------------

    @reads_answer("list projects")
    def project_names(self, entity: str) -> list[str] | None:
        """The names of ``entity``'s projects; None when this key sees no such entity."""
        edges = self._connection(
            "list projects",
            "EntityProjects",
            ENTITY_PROJECTS,
            {"entity": entity},
            ("entity", "projects"),
        )
        return None if edges is None else [str(e["node"]["name"]) for e in edges]

    @reads_answer("list a project's collections")
    def collections(self, entity: str, project: str) -> list[tuple[str, str]] | None:
        """``(id, name)`` of each collection of ``entity/project``; None: no such project."""
        variables = {"entity": entity, "project": project}
        edges = self._connection(
            "list a project's collections",
            "ProjectArtifactCollections",
            PROJECT_COLLECTIONS,
            variables,
            ("project", "artifactCollections"),
        )
        return (
            None
            if edges is None
            else [(str(e["node"]["id"]), str(e["node"]["name"])) for e in edges]
        )

    @reads_answer("list a collection's versions")
    def versions(self, entity: str, project: str, collection: str) -> list[dict[str, Any]] | None:
        """Every version of a collection: the artifact's ``id``, ``versionIndex``,
        ``metadata``, ``tags`` and ``aliases``, and ``version`` (``v<n>`` in this
        collection); None when W&B has no such collection."""
        variables = {"entity": entity, "project": project, "collection": collection}
        edges = self._connection(
            "list a collection's versions",
            "ProjectArtifacts",
            COLLECTION_VERSIONS,
            variables,
            ("project", "artifactCollection", "artifacts"),
        )
        return None if edges is None else [{**e["node"], "version": e["version"]} for e in edges]

    # -- writing ---------------------------------------------------------------------------

    @reads_answer("create the webhook integration")
    def create_integration(
        self, name: str, url: str, secret: str | None, token: str | None
    ) -> Integration:
        payload = {
            "entityName": self.entity,
            "name": name,
            "urlEndpoint": url,
            "secretRef": secret,
            "accessTokenRef": token,
        }
        data = self.gql.execute(
            f"create the webhook integration {name!r}",
            "CreateGenericWebhookIntegration",
            CREATE_INTEGRATION,
            {"input": payload},
            "webhooks need a W&B Pro or Enterprise plan and the API key of a team admin; the "
            "team secrets named by wandb.secret_name and wandb.access_token_name must exist",
        )
        node = (data.get("createGenericWebhookIntegration") or {}).get("integration") or {}
        if not node.get("id"):
            raise WandbError(
                f"W&B did not return the webhook integration {name!r} it created; "
                "run `wandb-bridge wandb list` to see whether it exists"
            )
        return Integration(node["id"], node.get("name", name), node.get("urlEndpoint", url))

    def create_automation(self, target: Target, integration_id: str) -> None:
        name = target.wanted.name
        self.gql.execute(
            f"create the automation {name!r}",
            "CreateAutomation",
            self._with_trigger(CREATE),
            {"input": trigger_input(target, integration_id)},
            "webhook automations need a W&B Pro or Enterprise plan and the API key of an admin "
            "of the team or registry",
        )

    def update_automation(self, automation_id: str, target: Target, integration_id: str) -> None:
        # W&B takes the whole input on update, not a patch (as its SDK sends it).
        name = target.wanted.name
        self.gql.execute(
            f"update the automation {name!r}",
            "UpdateAutomation",
            self._with_trigger(UPDATE),
            {"input": {"id": automation_id, **trigger_input(target, integration_id)}},
            "run `wandb-bridge wandb plan` again: it may have been changed or deleted meanwhile",
        )

    @reads_answer("delete the automation")
    def delete_automation(self, automation: Automation) -> None:
        data = self.gql.execute(
            f"delete the automation {automation.name!r}",
            "DeleteAutomation",
            DELETE,
            {"id": automation.id},
            ADMIN_FIX,
        )
        if not (data.get("deleteTrigger") or {}).get("success"):
            raise WandbError(
                f"W&B did not delete the automation {automation.name!r}; "
                "run `wandb-bridge wandb list` to see whether it is still there"
            )

    @reads_answer("store the team secret")
    def insert_secret(self, name: str, value: str) -> None:
        """Store a team secret (W&B's web app's ``insertSecret``; admins only)."""
        data = self.gql.execute(
            f"store the team secret {name}",
            "InsertSecret",
            INSERT_SECRET,
            {"entity": self.entity, "name": name, "value": value},
            "only team admins may store secrets (and, on W&B Server, only with its secret store "
            "enabled); create it in W&B (Team settings -> Team secrets) instead",
        )
        if not (data.get("insertSecret") or {}).get("success"):
            raise WandbError(
                f"W&B did not store the team secret {name}; create it in W&B "
                "(Team settings -> Team secrets)"
            )

    @reads_answer("add aliases")
    def add_aliases(
        self, artifact_id: str, entity: str, project: str, collection: str, aliases: list[str]
    ) -> None:
        """Add ``aliases`` to the artifact version ``artifact_id`` in that collection."""
        where = f"{entity}/{project}/{collection}"
        each = {"entityName": entity, "projectName": project, "artifactCollectionName": collection}
        data = self.gql.execute(
            f"add the aliases {', '.join(aliases)} in {where}",
            "AddAliases",
            ADD_ALIASES,
            {
                "input": {
                    "artifactID": artifact_id,
                    "aliases": [{"alias": a, **each} for a in aliases],
                }
            },
            WRITE_FIX,
        )
        if not (data.get("result") or {}).get("success"):
            raise WandbError(f"W&B did not add the aliases {', '.join(aliases)} in {where}", 200)

    @reads_answer("add tags")
    def add_tags(self, artifact_id: str, tags: list[str]) -> None:
        """Add ``tags`` to the artifact ``artifact_id`` (W&B keeps tags per artifact)."""
        data = self.gql.execute(
            f"add the tags {', '.join(tags)}",
            "UpdateArtifact",
            UPDATE_ARTIFACT,
            {"input": {"artifactID": artifact_id, "tagsToAdd": [{"tagName": t} for t in tags]}},
            WRITE_FIX,
        )
        if not (data.get("result") or {}).get("artifact"):
            raise WandbError(f"W&B did not add the tags {', '.join(tags)}: no such artifact", 200)

    # -- helpers ---------------------------------------------------------------------------

    def _run(
        self, what: str, operation: str, query: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        return self.gql.execute(what, operation, query, variables, "check wandb.entity")

    def _with_trigger(self, document: str) -> str:
        entity = "... on Entity { id name }" if ENTITY_SCOPE in self.features() else ""
        return document + TRIGGER.replace("ENTITY_SCOPE", entity)

    def _connection(
        self,
        what: str,
        operation: str,
        query: str,
        variables: dict[str, Any],
        path: tuple[str, ...],
    ) -> list[Any] | None:
        """Every edge of the paged connection at ``path`` in the answer (the last key is
        the connection); None when an object on the way is missing (no such project)."""
        cursor: str | None = None
        seen: set[str] = set()
        edges: list[Any] = []
        for _ in range(MAX_PAGES):
            node: Any = self._run(
                what, operation, query, {**variables, "cursor": cursor, "perPage": PER_PAGE}
            )
            for key in path:
                node = node[key]
                if node is None:
                    return None
                if not isinstance(node, dict):
                    raise TypeError(f"{key} is {type(node).__name__}, not an object")
            edges += [edge for edge in node.get("edges") or () if edge and edge.get("node")]
            cursor = _next_cursor(node, seen, what)
            if cursor is None:
                return edges
        raise _endless(what)

    def _pages(
        self,
        what: str,
        operation: str,
        query: str,
        path: tuple[str, ...],
        entity: str | None = None,
    ) -> Iterator[Any]:
        """The nodes of a paged connection under ``entity { <path> }``, every page.

        A listing that does not end (more pages after MAX_PAGES, or a cursor seen before)
        is an error: a plan made from part of a listing would create or delete wrongly."""
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            variables = {"entity": entity or self.entity, "cursor": cursor, "perPage": PER_PAGE}
            node: Any = self._run(what, operation, query, variables).get("entity")
            if node is None and entity not in (None, self.entity):
                return  # the organization's entity, out of this key's sight: nothing to list
            if node is None:
                raise WandbError(
                    f"W&B has no entity {variables['entity']!r} that this API key can see; set "
                    "wandb.entity to the team's name, and use a key of one of its members"
                )
            for key in path:
                node = node[key]
                if not isinstance(node, dict):
                    raise TypeError(f"{key} is {type(node).__name__}, not an object")
            for edge in node.get("edges") or ():
                yield (edge or {}).get("node")
            cursor = _next_cursor(node, seen, what)
            if cursor is None:
                return
        raise _endless(what)


def _next_cursor(connection: dict[str, Any], seen: set[str], what: str) -> str | None:
    """The cursor of a listing's next page (None: it was the last); a next page without
    a new cursor is a listing that does not end."""
    page = connection.get("pageInfo") or {}
    if not page.get("hasNextPage"):
        return None
    cursor = page.get("endCursor")
    if not isinstance(cursor, str) or not cursor or cursor in seen:
        raise WandbError(
            f"W&B's listing does not end ({what}): it offers a next page "
            "without a new cursor; try again later, and report it to W&B if it stays"
        )
    seen.add(cursor)
    return cursor


def _endless(what: str) -> WandbError:
    return WandbError(
        f"W&B's listing does not end ({what}): more than {MAX_PAGES * PER_PAGE} items, "
        "the most the bridge reads; try again later, and report it to W&B if it stays"
    )


def trigger_input(target: Target, integration_id: str) -> dict[str, Any]:
    """``CreateFilterTriggerInput`` for ``target``: the filter and the payload template
    travel as JSON text; the filter is not wrapped in ``{"filter": ...}`` on the way in."""
    w = target.wanted
    return {
        "name": w.name,
        "description": w.description,
        "enabled": True,
        "scopeType": target.scope.type,
        "scopeID": target.scope.id,
        "triggeringEventType": w.event,
        "eventFilter": json.dumps(w.filter, separators=(",", ":")),
        "triggeredActionType": "GENERIC_WEBHOOK",
        "triggeredActionConfig": {
            "genericWebhookActionInput": {
                "integrationID": integration_id,
                "requestPayload": json.dumps(w.payload, indent=2),
            }
        },
    }


def parse_automation(node: dict[str, Any]) -> Automation:
    """An :class:`Automation` from a ``BridgeTrigger`` node."""
    scope_node = node.get("scope") or {}
    scope_type = SCOPE_TYPES.get(scope_node.get("__typename", ""))
    scope = None
    if scope_type:
        scope = Scope(scope_type, str(scope_node.get("id", "")), str(scope_node.get("name", "")))
    event = node.get("triggeringCondition") or {}
    action = node.get("triggeredAction") or {}
    hook = action.get("integration") or {}
    integration = None
    if hook.get("__typename") == "GenericWebhookIntegration" and hook.get("id"):
        integration = Integration(hook["id"], hook.get("name", ""), hook.get("urlEndpoint", ""))
    return Automation(
        id=node["id"],
        name=node.get("name") or "",
        description=node.get("description") or "",
        enabled=bool(node.get("enabled")),
        scope=scope,
        event=event.get("eventType") or event.get("__typename") or "",
        filter=saved_filter(event.get("filter")),
        action=action.get("__typename") or "",
        integration=integration,
        payload=_json(action.get("requestPayload")),
    )


def saved_filter(text: Any) -> Any:
    """A saved trigger's filter as a value: W&B wraps it once more as ``{"filter": ...}``,
    sometimes with the inner filter itself as JSON text."""
    value = _json(text)
    if isinstance(value, dict) and set(value) == {"filter"}:
        value = _json(value["filter"])
    return value


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
