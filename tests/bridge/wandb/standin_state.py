"""What the W&B stand-in holds: entities, projects and collections, webhook integrations,
triggers (automations) and team secrets, plus every request it received.

Tests seed a :class:`State` and read it back to check what a command did in W&B.
"""

from __future__ import annotations

import base64
import itertools
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
    operations: list[str] = field(default_factory=list)  # operationName of each request
    mutations: list[str] = field(default_factory=list)  # the mutation fields executed
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
        self, project: Project, collection: str, aliases: list[str], metadata: dict[str, Any]
    ) -> None:
        versions = project.collections[collection].versions
        versions.append(
            {
                "index": len(versions),
                "aliases": aliases,
                "metadata": metadata,
                "artifact": self.next_id("Artifact"),
            }
        )

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
