"""From the bridge's routes, the W&B automations they call for. Pure: no I/O.

One automation per route, event and scope. W&B can trigger on an event type, filter on
``alias`` and ``tag``, and watch one collection, one project (a registry is the project
``wandb-registry-<name>``) or the whole entity. What W&B cannot filter on, the bridge's
route still checks when the webhook arrives, so an automation may be broader than its
route (each such condition is listed in ``Wanted.notes``). A route that no automation
can serve is returned as :class:`Skipped` with the reason and the fix, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from bridge.config.model import Config, Route, WandbConfig
from bridge.routing.limits import EVENT_ID_KEY, ROUTE_KEY
from bridge.routing.routes import WANDB_FIELDS
from bridge.routing.templates import variables
from bridge.wandb.filters import FILTERABLE, condition, event_filter, is_glob
from bridge.wandb.model import ENTITY_SCOPE, ScopeRef, Skipped, Wanted

MARKER = "Managed by wandb-github-bridge"
MAX_NAME = 255  # W&B's limit on an automation's name
# What a pattern (or no event_type at all) stands for: the registry's two events.
PATTERN_EVENTS = {
    "LINK_ARTIFACT": "LINK_MODEL",
    "LINK_MODEL": "LINK_MODEL",
    "ADD_ARTIFACT_ALIAS": "ADD_ARTIFACT_ALIAS",
}
# Artifact events a route may name exactly, and the server feature each needs (if any).
ARTIFACT_EVENTS = {
    "LINK_MODEL": None,
    "ADD_ARTIFACT_ALIAS": None,
    "CREATE_ARTIFACT": None,
    "UNLINK_ARTIFACT": "AUTOMATION_EVENT_UNLINK_ARTIFACT",
    "ADD_ARTIFACT_TAG": "AUTOMATION_EVENT_ADD_ARTIFACT_TAG",
    "REMOVE_ARTIFACT_TAG": "AUTOMATION_EVENT_REMOVE_ARTIFACT_TAG",
}
OTHER_WANDB_EVENTS = frozenset(
    {
        "UPDATE_ARTIFACT_ALIAS",
        "ADD_COLLECTION_TAG",
        "REMOVE_COLLECTION_TAG",
        "RUN_METRIC",
        "RUN_METRIC_CHANGE",
        "RUN_METRIC_ZSCORE",
        "RUN_STATE",
    }
)
# Besides the route's own variables, what the packaged action reads from a dispatch, and
# what names the change (so that a webhook and catch-up of one change are one dispatch).
ACTION_FIELDS = ("event_type", "event_author", "artifact_version", "artifact_version_string")
CHANGE_FIELDS = ("project_name", "artifact_collection_name", "alias", "tag")


def wanted(
    config: Config, wb: WandbConfig, features: Iterable[str]
) -> tuple[list[Wanted], list[Skipped]]:
    """Every automation the routes call for, and every route (or part) none can serve."""
    have = frozenset(features)
    found: list[Wanted] = []
    skipped: list[Skipped] = []
    names: set[str] = set()
    for route in config.routes:
        made, why = _route(route, wb, have)
        skipped += [Skipped(route.name, reason) for reason in why]
        for w in made:
            if w.name in names:
                skipped.append(
                    Skipped(
                        route.name,
                        f"a second route is named {route.name!r}; give each "
                        "route its own name (it names the automation)",
                    )
                )
                continue
            names.add(w.name)
            found.append(w)
    return found, skipped


def _route(
    route: Route, wb: WandbConfig, features: frozenset[str]
) -> tuple[list[Wanted], list[str]]:
    if route.sources is not None and not any(fnmatchcase(wb.source, s) for s in route.sources):
        return [], [
            f"listens to sources {', '.join(route.sources)} only, not {wb.source!r} (wandb.source, "
            "where the W&B webhook posts); no automation for it"
        ]
    when = dict(route.when)
    notes: list[str] = []
    events, why = _events(when.get("event_type", ("*",)), features, notes)
    if not events:
        return [], why
    conditions = []
    for field in FILTERABLE:
        if field in when:
            cond = condition(field, when[field])
            if cond is None:
                return [], [
                    *why,
                    f"{field} {'/'.join(when[field])}: a pattern W&B's filter "
                    "cannot express; use * and ? (and closed [...]) only",
                ]
            conditions.append(cond)
    scopes, scope_notes = _scopes(when)
    notes += scope_notes
    for key, globs in when.items():
        handled = ("event_type", "project_name", "artifact_collection_name", EVENT_ID_KEY)
        if key not in (*handled, *FILTERABLE):
            notes.append(
                f"{key} {'/'.join(globs)}: W&B cannot filter on it; the route "
                "checks it when the webhook arrives"
            )
    if scopes[0].type == "ENTITY" and ENTITY_SCOPE not in features:
        return [], [
            *why,
            "names no exact project_name, and this W&B cannot watch a whole "
            "entity; add project_name: <project> (a registry: wandb-registry-<name>) "
            "to the route's when:",
        ]
    made = []
    for event in events:
        for scope in scopes:
            if event == "CREATE_ARTIFACT" and scope.type != "ARTIFACT_COLLECTION":
                why.append(
                    "CREATE_ARTIFACT: W&B fires it for one collection only; give "
                    "exact project_name and artifact_collection_name"
                )
                continue
            suffix = [event] if len(events) > 1 else []
            suffix += [scope.words(wb.entity)] if len(scopes) > 1 else []
            name = f"{wb.integration}: {route.name}" + (f" ({', '.join(suffix)})" if suffix else "")
            if len(name) > MAX_NAME:
                why.append(
                    f"the automation's name would be {len(name)} characters; W&B allows "
                    f"{MAX_NAME}: shorten the route's name"
                )
                continue
            made.append(
                Wanted(
                    name=name,
                    route=route.name,
                    event=event,
                    scope=scope,
                    filter=event_filter(conditions),
                    payload=payload_template(route),
                    description=description(route),
                    notes=tuple(notes),
                )
            )
    return made, why


def _events(
    values: tuple[str, ...], features: frozenset[str], notes: list[str]
) -> tuple[list[str], list[str]]:
    """W&B's event types for a route's ``event_type`` globs, and why some have none."""
    events: list[str] = []
    why: list[str] = []
    for value in values:
        if is_glob(value):
            hits = [wire for name, wire in PATTERN_EVENTS.items() if fnmatchcase(name, value)]
        elif value in PATTERN_EVENTS or value in ARTIFACT_EVENTS:
            hits = [PATTERN_EVENTS.get(value, value)]
        elif value in OTHER_WANDB_EVENTS:
            why.append(
                f"event_type {value}: needs conditions a route cannot state (or W&B "
                "advises against it); create that automation in W&B's UI"
            )
            continue
        else:
            notes.append(
                f"event_type {value} is not a W&B event (a GitHub-shaped body's, "
                "perhaps); no automation sends it"
            )
            continue
        for event in hits:
            flag = ARTIFACT_EVENTS.get(event)
            if flag and flag not in features:
                why.append(
                    f"event_type {value}: this W&B server cannot trigger on it (it lacks "
                    f"{flag}); upgrade W&B Server, or drop it from the route"
                )
            elif event not in events:
                events.append(event)
    if not events and not why:
        why.append(
            f"event_type {'/'.join(values)} names no W&B artifact event (LINK_ARTIFACT, "
            "ADD_ARTIFACT_ALIAS, CREATE_ARTIFACT, ...); nothing for W&B to trigger on"
        )
    return events, why


def _scopes(when: dict[str, tuple[str, ...]]) -> tuple[list[ScopeRef], list[str]]:
    """Where W&B should watch, narrowest first, and the conditions it cannot narrow to."""
    projects = when.get("project_name", ())
    collections = when.get("artifact_collection_name", ())
    exact = bool(projects) and not any(is_glob(p) for p in projects)
    notes = []
    if projects and not exact:
        notes.append(
            f"project_name {'/'.join(projects)}: a pattern, so W&B watches the "
            "whole entity; the route checks the project when the webhook arrives"
        )
    if not exact:
        if collections:
            notes.append(
                f"artifact_collection_name {'/'.join(collections)}: the route checks "
                "it when the webhook arrives (W&B needs an exact project_name to "
                "watch one collection)"
            )
        return [ScopeRef("ENTITY")], notes
    if collections and not any(is_glob(c) for c in collections):
        return [ScopeRef("ARTIFACT_COLLECTION", p, c) for p in projects for c in collections], notes
    if collections:
        notes.append(
            f"artifact_collection_name {'/'.join(collections)}: a pattern, so W&B "
            "watches the project; the route checks the collection when the webhook "
            "arrives"
        )
    return [ScopeRef("PROJECT", p) for p in projects], notes


def payload_template(route: Route) -> dict[str, str]:
    """W&B's payload template for ``route``: a flat body that names the route
    (``bridge_route``, so that only this route takes the webhook), with the variables the
    route reads (its ``when:`` keys and its templates'), those the action reads and those
    that name the change; with the default ``client_payload``, every W&B field it would
    copy."""
    names = set(ACTION_FIELDS) | set(CHANGE_FIELDS) | {k for k, _ in route.when}
    if route.workflow is not None:
        names |= variables(route.workflow.ref) | variables(route.workflow.inputs)
    elif route.dispatch is not None:
        d = route.dispatch
        names |= variables(d.event_type) | variables(d.client_payload)
        if d.client_payload is None:
            names |= set(WANDB_FIELDS)
    names.discard(EVENT_ID_KEY)
    ordered = [f for f in WANDB_FIELDS if f in names] + sorted(names - set(WANDB_FIELDS))
    return {ROUTE_KEY: route.name, **{name: "${" + name + "}" for name in ordered}}


def description(route: Route) -> str:
    """The automation's description: the managed marker first, then what it is for."""
    return (
        f"{MARKER} for route {route.name!r} (to {route.repository}). "
        "`wandb-bridge wandb apply` undoes changes made here: edit the bridge's config instead."
    )
