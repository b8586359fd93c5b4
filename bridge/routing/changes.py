"""One registry change, named the same way by a webhook and by catch-up. Pure functions.

A change is an event type on one artifact version in one collection, with the alias or
tag it added: ``LINK_MODEL|<project>/<collection>|<artifact id>|`` or
``ADD_ARTIFACT_ALIAS|<project>/<collection>|<artifact id>|production``. The bridge
dispatches a change once per route, whether its webhook or catch-up saw it first. The
entity is left out: a registry's webhook may name the team or the organization, while
the artifact's id is unique across W&B.

An *item* is what catch-up remembers of a collection (a version linked, an alias or a
tag on a version), and what the bridge notes of its own write-backs to recognise their
webhooks: ``<artifact id>|alias|production``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ARTIFACT_PREFIX = "wandb-artifact://_id/"
LINK, ALIAS, TAG = "link", "alias", "tag"  # the kinds of item
# The event a kind of item fires, and back (LINK_ARTIFACT is LINK_MODEL's other name).
EVENTS = {LINK: "LINK_MODEL", ALIAS: "ADD_ARTIFACT_ALIAS", TAG: "ADD_ARTIFACT_TAG"}
KINDS = {**{e: k for k, e in EVENTS.items()}, "LINK_ARTIFACT": LINK}


def artifact_id(version: Any) -> str | None:
    """The artifact's id in ``wandb-artifact://_id/<id>`` (W&B's GraphQL node id)."""
    if isinstance(version, str) and version.startswith(ARTIFACT_PREFIX):
        found = version[len(ARTIFACT_PREFIX) :]
        if found and found.isprintable() and "|" not in found and "/" not in found:
            return found
    return None


def item(artifact: str, kind: str, name: str = "") -> str:
    return f"{artifact}|{kind}|{name if kind != LINK else ''}"


def change_key(event_type: str, project: str, collection: str, artifact: str, name: str) -> str:
    kind = KINDS.get(event_type)
    event = EVENTS[kind] if kind else event_type
    return f"{event}|{project}/{collection}|{artifact}|{name if kind != LINK else ''}"


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    return value if isinstance(value, str) else ""


def _named(fields: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(kind, artifact id, alias or tag) of an artifact event's fields, else None."""
    kind = KINDS.get(_text(fields, "event_type"))
    artifact = artifact_id(fields.get("artifact_version"))
    if kind is None or artifact is None:
        return None
    name = {ALIAS: _text(fields, "alias"), TAG: _text(fields, "tag")}.get(kind, "")
    if kind != LINK and not name:
        return None
    return kind, artifact, name


def webhook_change(fields: Mapping[str, Any]) -> str | None:
    """The change a webhook's fields describe; None when they lack a part of it."""
    named = _named(fields)
    project, collection = _text(fields, "project_name"), _text(fields, "artifact_collection_name")
    if named is None or not project or not collection:
        return None
    kind, artifact, name = named
    return change_key(EVENTS[kind], project, collection, artifact, name)


def echo_items(fields: Mapping[str, Any]) -> list[str]:
    """The alias or tag an ADD_ARTIFACT_ALIAS / ADD_ARTIFACT_TAG webhook says was added,
    as an item (none for other events): a write-back of the bridge's own is noted so."""
    named = _named(fields)
    if named is None or named[0] == LINK:
        return []
    kind, artifact, name = named
    return [item(artifact, kind, name)]


def parse(change: str) -> tuple[str, str, str] | None:
    """(``project/collection``, artifact id, item) of a change key; None for another
    text."""
    parts = change.split("|")
    kind = KINDS.get(parts[0]) if len(parts) == 4 else None
    if kind is None:
        return None
    _, collection, artifact, name = parts
    return collection, artifact, item(artifact, kind, name)
