"""What W&B holds (integrations, automations, scopes) and what the routes want, as values.

Plain frozen dataclasses shared by the pure modules (``wanted``, ``plan``) and the I/O
ones (``api``, ``state``, ``apply``). Names follow W&B's wire values: a scope type is
``PROJECT``, ``ARTIFACT_COLLECTION`` or ``ENTITY``; the link event is ``LINK_MODEL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WEBHOOK_ACTION = "GenericWebhookTriggeredAction"  # the __typename of a webhook action
# Server features (W&B's feature flags) this package asks about.
ENTITY_SCOPE = "AUTOMATION_SCOPE_ENTITY"  # automations can watch a whole entity
ENTITY_TRIGGERS = "QUERY_AUTOMATIONS_ON_ENTITY"  # Entity.triggers lists them
# A trigger's scope __typename -> the scope type W&B's inputs take.
SCOPE_TYPES = {
    "Project": "PROJECT",
    "ArtifactSequence": "ARTIFACT_COLLECTION",
    "ArtifactPortfolio": "ARTIFACT_COLLECTION",
    "Entity": "ENTITY",
}


@dataclass(frozen=True)
class Integration:
    """A W&B webhook integration (team settings -> Webhooks)."""

    id: str
    name: str
    url: str


@dataclass(frozen=True)
class Scope:
    """Where an automation watches: ``type`` and the GraphQL ``id`` of that object."""

    type: str
    id: str
    name: str

    def words(self) -> str:
        kind = {"PROJECT": "project", "ARTIFACT_COLLECTION": "collection"}
        return f"{kind.get(self.type, 'entity')} {self.name}"


@dataclass(frozen=True)
class Automation:
    """An automation (W&B's ``Trigger``) as W&B returns it.

    ``filter`` and ``payload`` are JSON values (W&B stores them as text; they compare as
    values, never as text), or the raw text when it is not JSON. ``action`` is the
    action's __typename; ``integration`` is set for webhook actions only.
    """

    id: str
    name: str
    description: str
    enabled: bool
    scope: Scope | None
    event: str
    filter: Any
    action: str
    integration: Integration | None = None
    payload: Any = None


@dataclass(frozen=True)
class ScopeRef:
    """A scope by name, before W&B gives its id: the whole entity, a project (a registry is
    the project ``wandb-registry-<name>``) or one collection in a project."""

    type: str
    project: str | None = None
    collection: str | None = None

    def words(self, entity: str) -> str:
        if self.type == "ARTIFACT_COLLECTION":
            return f"collection {self.project}/{self.collection}"
        if self.type == "PROJECT":
            return f"project {self.project}"
        return f"entity {entity}"


@dataclass(frozen=True)
class Wanted:
    """One automation a route calls for. ``notes`` says what of the route W&B cannot
    filter on (the bridge's own routing still checks it when the webhook arrives)."""

    name: str
    route: str
    event: str
    scope: ScopeRef
    filter: Any
    payload: dict[str, str]
    description: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """A route (or part of one) that no W&B automation can express: why, and the fix."""

    route: str
    reason: str


@dataclass(frozen=True)
class Target:
    """A wanted automation with its scope resolved to W&B's id."""

    wanted: Wanted
    scope: Scope
