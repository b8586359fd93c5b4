"""What the W&B stand-in holds: entities, projects and collections of versions, webhook
integrations, triggers (automations) and team secrets, plus every request it received
and every webhook it sent.

Tests seed a :class:`State` and read it back to check what a command did in W&B. The
registry changes (:meth:`State.link`, :meth:`State.add_alias`, ...) return the
:class:`Change` list W&B's automations see; the stand-in turns those into webhooks.
A version is a dict: ``index``, ``artifact`` (its id), ``aliases`` (unique within its
collection), ``tags``, ``metadata``, ``description``, ``created_at``, ``author``.
"""

from __future__ import annotations

import base64
import datetime
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MODERN_FEATURES = frozenset(
    {
        "QUERY_AUTOMATIONS_ON_ENTITY",
        "AUTOMATION_SCOPE_ENTITY",
        "AUTOMATION_EVENT_ADD_ARTIFACT_TAG",
        "AUTOMATION_EVENT_UNLINK_ARTIFACT",
    }
)


def gid(kind: str, n: int) -> str:
    """A W&B-style node id: base64 of ``Kind:n``."""
    return base64.b64encode(f"{kind}:{n}".encode()).decode()


@dataclass
class Collection:
    id: str
    name: str
    typename: str  # ArtifactSequence, or ArtifactPortfolio in a registry
    versions: list[dict[str, Any]] = field(default_factory=list)
    type: str = "model"  # the artifact type of its versions


@dataclass
class Project:
    id: str
    entity: str
    name: str
    collections: dict[str, Collection] = field(default_factory=dict)


@dataclass
class Webhook:
    id: str
    entity: str
    name: str
    url: str
    secret_ref: str | None
    token_ref: str | None
    kind: str = "GenericWebhookIntegration"


@dataclass
class Trigger:
    id: str
    name: str
    description: str | None
    enabled: bool
    scope_type: str
    scope_id: str
    event: str
    filter: str  # as W&B returns it: {"filter": <the filter>} as JSON text
    action: str  # GENERIC_WEBHOOK or NOTIFICATION
    integration_id: str
    payload: str | None
    created: str
    updated: str | None = None


@dataclass(frozen=True)
class Change:
    """One registry change, as W&B's automations see it (``event`` is W&B's event type)."""

    event: str  # LINK_MODEL, ADD_ARTIFACT_ALIAS, ADD_ARTIFACT_TAG, REMOVE_ARTIFACT_TAG
    project: Project
    collection: Collection
    version: dict[str, Any]
    author: str
    alias: str = ""
    tag: str = ""


@dataclass
class HookRecord:
    """One webhook W&B sent (or was about to): ``outcome`` is queued, held, sent, dropped
    or failed (no answer); ``status`` the HTTP status answered."""

    trigger: str
    url: str
    body: str
    headers: dict[str, str]
    outcome: str
    status: int | None = None
    answer: str | None = None  # the receiver's answer body


@dataclass
class State:
    """Everything the stand-in holds, and every request it received."""

    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)  # by id
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # entity -> name -> value
    features: frozenset[str] = MODERN_FEATURES
    webhooks_allowed: bool = True
    admin: bool = True
    echo_key: bool = False
    page_cap: int = 50
    protected_aliases: set[str] = field(default_factory=set)  # in registries
    registry_admin: bool = False  # may the API key's user touch protected aliases
    username: str = "wandb-bridge"  # the API key's user: the author of its changes
    link_event_name: str = "LINK_MODEL"  # what ${event_type} says for a link
    operations: list[str] = field(default_factory=list)  # operationName of each request
    mutations: list[str] = field(default_factory=list)  # the mutation fields executed
    webhooks_sent: list[HookRecord] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self, kind: str) -> str:
        return gid(kind, next(self._ids))

    # -- seeding ------------------------------------------------------------------------
    def add_entity(self, name: str, org: str | None = None) -> None:
        self.entities[name] = {"id": self.next_id("Entity"), "org": org}
        self.secrets.setdefault(name, {})

    def add_project(
        self, entity: str, name: str, collections: dict[str, str] | None = None
    ) -> Project:
        project = Project(self.next_id("Project"), entity, name)
        for cname, typename in (collections or {}).items():
            project.collections[cname] = Collection(self.next_id(typename), cname, typename)
        self.projects[project.id] = project
        return project

    def add_version(
        self,
        project: Project,
        collection: str,
        aliases: list[str],
        metadata: dict[str, Any],
        author: str = "alice",
    ) -> dict[str, Any]:
        """A new version, seeded as it is (no alias moves, no change for automations)."""
        versions = project.collections[collection].versions
        version = {
            "index": len(versions),
            "artifact": self.next_id("Artifact"),
            "aliases": list(aliases),
            "tags": [],
            "metadata": dict(metadata),
            "description": None,
            "created_at": _now(),
            "author": author,
        }
        versions.append(version)
        return version

    # -- registry changes (each returns what W&B's automations see) ----------------------
    def link(
        self,
        project: Project,
        collection: str,
        metadata: dict[str, Any] | None = None,
        aliases: Iterable[str] = (),
        author: str = "alice",
    ) -> tuple[dict[str, Any], list[Change]]:
        """Link a new version: a LINK_MODEL change, then one ADD_ARTIFACT_ALIAS per alias
        (moved from the collection's other versions)."""
        version = self.add_version(project, collection, [], metadata or {}, author)
        c = project.collections[collection]
        changes = [Change("LINK_MODEL", project, c, version, author)]
        for alias in aliases:
            changes += self.add_alias(project, collection, version["index"], alias, author)
        return version, changes

    def add_alias(
        self, project: Project, collection: str, index: int, alias: str, author: str = "alice"
    ) -> list[Change]:
        c = project.collections[collection]
        version = c.versions[index]
        if alias in version["aliases"]:
            return []
        for other in c.versions:  # an alias names one version of a collection
            if alias in other["aliases"]:
                other["aliases"].remove(alias)
        version["aliases"].append(alias)
        return [Change("ADD_ARTIFACT_ALIAS", project, c, version, author, alias=alias)]

    def remove_alias(
        self, project: Project, collection: str, index: int, alias: str, author: str = "alice"
    ) -> list[Change]:
        """W&B has no automation event for a removed alias."""
        version = project.collections[collection].versions[index]
        if alias in version["aliases"]:
            version["aliases"].remove(alias)
        return []

    def add_tag(
        self, project: Project, collection: str, index: int, tag: str, author: str = "alice"
    ) -> list[Change]:
        c = project.collections[collection]
        version = c.versions[index]
        if tag in version["tags"]:
            return []
        version["tags"].append(tag)
        return [Change("ADD_ARTIFACT_TAG", project, c, version, author, tag=tag)]

    def remove_tag(
        self, project: Project, collection: str, index: int, tag: str, author: str = "alice"
    ) -> list[Change]:
        c = project.collections[collection]
        version = c.versions[index]
        if tag not in version["tags"]:
            return []
        version["tags"].remove(tag)
        return [Change("REMOVE_ARTIFACT_TAG", project, c, version, author, tag=tag)]

    # -- looking things up --------------------------------------------------------------
    def project(self, entity: str | None, name: str) -> Project | None:
        return next(
            (p for p in self.projects.values() if p.entity == entity and p.name == name), None
        )

    def scope_of(self, scope_type: str, scope_id: str) -> tuple[str, str, str] | None:
        """(owner entity, __typename, name) of a scope id, or None."""
        if scope_type == "ENTITY":
            for name, e in self.entities.items():
                if e["id"] == scope_id:
                    return name, "Entity", name
            return None
        for p in self.projects.values():
            if scope_type == "PROJECT" and p.id == scope_id:
                return p.entity, "Project", p.name
            for c in p.collections.values():
                if scope_type == "ARTIFACT_COLLECTION" and c.id == scope_id:
                    return p.entity, c.typename, c.name
        return None

    def owner(self, trigger: Trigger) -> str:
        found = self.scope_of(trigger.scope_type, trigger.scope_id)
        return found[0] if found else ""

    def find_artifact(self, artifact_id: str) -> tuple[Project, Collection, dict[str, Any]] | None:
        """The project, collection and version of an artifact id, or None."""
        for p in self.projects.values():
            for c in p.collections.values():
                for v in c.versions:
                    if v["artifact"] == artifact_id:
                        return p, c, v
        return None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()
