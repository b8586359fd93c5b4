"""Which routes a W&B webhook matches, and the dispatches they produce. Pure functions.

Fields are W&B's payload variable names, read from a flat body or from the
``client_payload`` of a GitHub-shaped one. ``alias`` falls back to the part of
``artifact_version_string`` after its last ``:``. LINK_ARTIFACT and LINK_MODEL are one
event wherever event types are matched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from bridge.config.model import Route
from bridge.routing.limits import (
    EVENT_ID_KEY,
    ROUTE_KEY,
    PlannedDispatch,
    plan,
    plan_workflow,
)
from bridge.routing.templates import as_text, render

# W&B's payload variables, in the order a default payload lists them.
WANDB_FIELDS = (
    "event_type",
    "event_author",
    "entity_name",
    "project_name",
    "artifact_collection_name",
    "artifact_version",
    "artifact_version_string",
    "alias",
    "tag",
)
LINK_EVENTS = frozenset({"LINK_ARTIFACT", "LINK_MODEL"})
METADATA_PREFIX = "artifact_metadata."


def is_known_field(name: str) -> bool:
    """A W&B payload variable (or ``artifact_metadata.<KEY>``), or the bridge's event id:
    the only names a route's ``when:`` or a template may use."""
    if name.startswith(METADATA_PREFIX):
        return len(name) > len(METADATA_PREFIX)
    return name in WANDB_FIELDS or name == EVENT_ID_KEY


def is_github_shaped(body: Mapping[str, Any]) -> bool:
    return "event_type" in body and isinstance(body.get("client_payload"), Mapping)


def webhook_fields(body: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    """The fields routes and templates see for ``body``."""
    if is_github_shaped(body):
        fields = {"event_type": body["event_type"], **body["client_payload"]}
    else:
        fields = dict(body)
    if not fields.get("alias"):
        version = fields.get("artifact_version_string")
        if isinstance(version, str) and ":" in version:
            fields["alias"] = version.rsplit(":", 1)[1]
    fields[EVENT_ID_KEY] = event_id
    return fields


def value_matches(name: str, value: Any, globs: Iterable[str]) -> bool:
    """Does the field ``name`` with ``value`` match any of ``globs`` (case-sensitive)?"""
    texts = {as_text(value)}
    if name == "event_type" and texts & LINK_EVENTS:
        texts |= LINK_EVENTS
    return any(fnmatchcase(text, glob) for text in texts for glob in globs)


def route_matches(route: Route, source: str, fields: Mapping[str, Any]) -> bool:
    """Does ``route`` take this event? A managed automation's webhook names its route
    (``bridge_route``): only that route takes it, and only when its conditions hold."""
    if ROUTE_KEY in fields and fields[ROUTE_KEY] != route.name:
        return False
    if route.sources is not None and not any(fnmatchcase(source, s) for s in route.sources):
        return False
    return all(value_matches(k, fields.get(k), globs) for k, globs in route.when)


def unknown_route(routes: Iterable[Route], fields: Mapping[str, Any]) -> str | None:
    """The route a managed webhook names when the config has no route of that name."""
    named = fields.get(ROUTE_KEY)
    if ROUTE_KEY not in fields or any(r.name == named for r in routes):
        return None
    return as_text(named)


def default_payload(fields: Mapping[str, Any]) -> dict[str, Any]:
    """W&B's fields that are present and non-empty (at most 9 keys)."""
    return {k: fields[k] for k in WANDB_FIELDS if fields.get(k) not in (None, "")}


def plan_dispatches(
    routes: Iterable[Route], source: str, fields: Mapping[str, Any]
) -> list[PlannedDispatch]:
    """The dispatches of every route that matches; 422 if one would break GitHub's limits."""
    planned = []
    for route in routes:
        if not route_matches(route, source, fields):
            continue
        where = f"route {route.name!r}"
        if route.workflow is not None:
            w = route.workflow
            inputs = {} if w.inputs is None else render(w.inputs, fields)
            planned.append(
                plan_workflow(
                    w.repository, w.file, as_text(render(w.ref, fields)), inputs, route.name, where
                )
            )
            continue
        d = route.dispatch
        assert d is not None
        event_type = as_text(render(d.event_type, fields))
        if d.client_payload is None:
            payload = default_payload(fields)
        else:
            payload = render(d.client_payload, fields)
        planned.append(
            plan(
                d.repository,
                event_type,
                payload,
                route.name,
                fields[EVENT_ID_KEY],
                where,
            )
        )
    return planned
