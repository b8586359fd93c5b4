"""Read what W&B holds for the config's entity, and give the routes' scopes W&B's ids.

The one place ``plan``, ``apply``, ``list`` and ``delete`` learn W&B's state: the
entity (first, so a bad key or an unknown entity fails before anything else), the
server's features, the webhook integrations, the automations (the entity's, and the
organization's when its registries live in another entity) and the team secrets' names.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.config.model import Config, WandbConfig
from bridge.wandb.api import WandbApi
from bridge.wandb.model import Automation, Integration, Scope, ScopeRef, Skipped, Target
from bridge.wandb.wanted import wanted

REGISTRY_PREFIX = "wandb-registry-"


@dataclass(frozen=True)
class Survey:
    """W&B's state and the routes' automations with resolved scopes."""

    entity: Scope
    integrations: list[Integration]
    automations: list[Automation]
    secret_names: frozenset[str] | None
    targets: list[Target]
    skipped: list[Skipped]


def read_automations(api: WandbApi) -> list[Automation]:
    """The automations of the entity and of its organization's entity, once each."""
    found = {a.id: a for a in api.automations()}
    org = api.org_entity()
    if org != api.entity:
        for automation in api.automations(org):
            found.setdefault(automation.id, automation)
    return sorted(found.values(), key=lambda a: a.name)


def survey(api: WandbApi, config: Config, wb: WandbConfig) -> Survey:
    """Everything ``plan`` compares, read from W&B (reads only; changes nothing)."""
    entity = api.entity_scope()
    wants, skipped = wanted(config, wb, api.features())
    targets = []
    resolved: dict[ScopeRef, Scope | None] = {}
    for w in wants:
        if w.scope not in resolved:
            resolved[w.scope] = _resolve(api, entity, w.scope)
        scope = resolved[w.scope]
        if scope is None:
            owner = _owner(api, w.scope)
            skipped.append(
                Skipped(
                    w.route,
                    f"W&B has no {w.scope.words(owner)} in entity {owner}; check project_name "
                    "and artifact_collection_name in the route's when: (a registry is the "
                    "project wandb-registry-<name>)",
                )
            )
            continue
        targets.append(Target(w, scope))
    return Survey(
        entity=entity,
        integrations=api.integrations(),
        automations=read_automations(api),
        secret_names=api.secret_names() if wb.secret_name or wb.access_token_name else None,
        targets=targets,
        skipped=skipped,
    )


def _owner(api: WandbApi, ref: ScopeRef) -> str:
    """The entity that holds ``ref``'s project: registries live in the organization's."""
    if ref.project and ref.project.startswith(REGISTRY_PREFIX):
        return api.org_entity()
    return api.entity


def _resolve(api: WandbApi, entity: Scope, ref: ScopeRef) -> Scope | None:
    if ref.type == "ENTITY" or ref.project is None:
        return entity
    owner = _owner(api, ref)
    if ref.type == "ARTIFACT_COLLECTION" and ref.collection is not None:
        return api.collection_scope(owner, ref.project, ref.collection)
    return api.project_scope(owner, ref.project)
