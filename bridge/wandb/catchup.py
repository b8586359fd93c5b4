"""Catch-up's core: what changed in a collection since the last pass, and the events
those changes make. Pure: no I/O, no clock.

A managed automation (a :class:`~bridge.wandb.watchers.Watcher`) watches a scope (a
collection, a project or registry, the whole entity) for one event. A pass reads the
collections of those scopes; what is in a collection now and was not at the last pass
(an *item*: a version linked, an alias or a tag on a version, see
:mod:`bridge.routing.changes`) is a change W&B would have sent a webhook for. Each change
an automation's event and filter take becomes the body W&B would have sent (that
automation's template, filled as W&B fills it), planned through that automation's route
only, exactly as the webhook would have been.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Collection as Collection_
from dataclasses import dataclass
from typing import Any

from bridge.config.model import Config
from bridge.errors import RequestRefused
from bridge.intake.accept import to_deliveries
from bridge.intake.checks import check_size, parse_object
from bridge.routing.changes import (
    ALIAS,
    ARTIFACT_PREFIX,
    EVENTS,
    KINDS,
    LINK,
    TAG,
    artifact_id,
    change_key,
    item,
)
from bridge.routing.changes import parse as parse_change
from bridge.routing.routes import plan_dispatches, webhook_fields
from bridge.states import Origin
from bridge.store.models import CaughtUp, CollectionSeen, NewEvent, PassResult, model_of
from bridge.wandb.event_filter import UnknownFilter, filter_matches
from bridge.wandb.render import fill
from bridge.wandb.watchers import Watcher

NewId = Callable[[str, float], str]  # bridge.ids.new_id


@dataclass(frozen=True)
class Version:
    """One version of a collection, as catch-up reads it."""

    artifact: str  # the artifact's id (W&B's GraphQL node id)
    version: str  # ``v<n>`` in this collection
    aliases: tuple[str, ...]  # its aliases in this collection
    tags: tuple[str, ...]
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class Collection:
    """A collection read whole: ``id`` is W&B's, the key of what the store remembers."""

    id: str
    entity: str
    project: str
    name: str
    versions: tuple[Version, ...]

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}"


@dataclass(frozen=True)
class Reading:
    """What one pass read: the collections read whole (by id), for each watcher's baseline
    key the ids of those it watches, the baselines whose scope was read whole, and what
    was not read whole, in words."""

    collections: Mapping[str, Collection]
    watched: Mapping[str, tuple[str, ...]]
    whole: frozenset[str]
    missed: tuple[str, ...] = ()


# -- a collection's items ------------------------------------------------------------------


def version_of(node: Mapping[str, Any], collection: str) -> Version:
    """A :class:`Version` from W&B's answer (``WandbApi.versions``): only the aliases
    of ``collection`` (an artifact's aliases span every collection it is in)."""
    aliases = []
    for a in node.get("aliases") or ():
        named = (a.get("artifactCollection") or {}).get("name")
        if a.get("alias") and named in (None, collection):
            aliases.append(str(a["alias"]))
    tags = [str(t["name"]) for t in node.get("tags") or () if t and t.get("name")]
    metadata = node.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            metadata = {}
    version = node.get("version") or f"v{node.get('versionIndex', '')}"
    return Version(
        artifact=str(node["id"]),
        version=str(version),
        aliases=tuple(aliases),
        tags=tuple(tags),
        metadata=metadata if isinstance(metadata, dict) else {},
    )


def items(collection: Collection) -> dict[str, tuple[Version, str, str]]:
    """Every item of ``collection``: its version, kind and alias or tag name."""
    found: dict[str, tuple[Version, str, str]] = {}
    for v in collection.versions:
        found[item(v.artifact, LINK)] = (v, LINK, "")
        for alias in v.aliases:
            found[item(v.artifact, ALIAS, alias)] = (v, ALIAS, alias)
        for tag in v.tags:
            found[item(v.artifact, TAG, tag)] = (v, TAG, tag)
    return found


# -- the events of a pass ------------------------------------------------------------------


def version_values(event: str, c: Collection, v: Version, name: str) -> dict[str, Any]:
    """W&B's template variables for ``event`` on version ``v`` of ``c``; ``name`` is the
    alias or tag added. Who made the change is not in the registry: ``event_author`` is
    empty."""
    alias = name if event == EVENTS[ALIAS] else ""
    return {
        "event_type": event,
        "event_author": "",
        "entity_name": c.entity,
        "project_name": c.project,
        "artifact_collection_name": c.name,
        "artifact_version": ARTIFACT_PREFIX + v.artifact,
        "artifact_version_string": f"{c.path}:{alias or v.version}",
        "alias": alias,
        "tag": name if event == EVENTS[TAG] else "",
        "artifact_metadata": dict(v.metadata),
    }


def template_text(payload: Any) -> str:
    """An automation's payload template as the text W&B fills."""
    return payload if isinstance(payload, str) else json.dumps(payload, indent=2)


def plan_pass(
    config: Config,
    source: str,
    watching: Sequence[Watcher],
    reading: Reading,
    seen: Mapping[str, set[str]],
    baselined: set[str],
    now: float,
    new_id: NewId,
    recorded: Collection_[str] = (),
    read_at: float = float("inf"),
) -> tuple[PassResult, list[str]]:
    """What a pass records, and a line for each change it cannot dispatch (its body
    would be refused): the diff of each collection read whole with ``seen``, and the
    events of the changes that watchers of a baselined scope take.

    ``recorded`` holds the change keys the store has for these collections (dispatched
    by a webhook or a pass): those whose alias, tag or version is gone now are dropped
    (as of ``read_at``, when the reading began), so putting it back is a new change,
    also when no pass saw it there (a webhook announced it, and it left before the next
    pass)."""
    collections = []
    removed_changes: list[str] = []
    found: list[CaughtUp] = []
    notes: list[str] = []
    taken: set[tuple[str, str]] = set()
    for cid in sorted(reading.collections):
        c = reading.collections[cid]
        now_items = items(c)
        before = seen.get(cid, set())
        added = sorted(set(now_items) - before)
        removed = sorted(before - set(now_items))
        if added or removed:
            collections.append(CollectionSeen(cid, tuple(added), tuple(removed)))
        removed_changes += [_removed_change(c, x) for x in removed]
        removed_changes += sorted(_gone(recorded, f"{c.project}/{c.name}", now_items))
        eyes = [
            w
            for w in watching
            if w.automation.enabled
            and w.baseline in baselined
            and cid in reading.watched.get(w.baseline, ())
        ]
        for x in added:
            version, kind, name = now_items[x]
            for w in eyes:
                made = _caught_up(config, source, w, c, version, kind, name, now, new_id, notes)
                if made is not None and (made.route, made.change) not in taken:
                    taken.add((made.route, made.change))
                    found.append(made)
    result = PassResult(
        baselines=tuple(sorted(reading.whole - baselined)),
        collections=tuple(collections),
        removed_changes=tuple(dict.fromkeys(removed_changes)),
        caught_up=tuple(found),
        read_at=read_at,
    )
    return result, notes


def _gone(recorded: Iterable[str], collection: str, present: Mapping[str, Any]) -> set[str]:
    """The recorded changes of ``collection`` whose item is not ``present``."""
    gone = set()
    for change in recorded:
        parsed = parse_change(change)
        if parsed is not None and parsed[0] == collection and parsed[2] not in present:
            gone.add(change)
    return gone


def _removed_change(c: Collection, x: str) -> str:
    artifact, kind, name = x.split("|", 2)
    return change_key(EVENTS[kind], c.project, c.name, artifact, name)


def _caught_up(
    config: Config,
    source: str,
    w: Watcher,
    c: Collection,
    v: Version,
    kind: str,
    name: str,
    now: float,
    new_id: NewId,
    notes: list[str],
) -> CaughtUp | None:
    """The event W&B would have sent through ``w`` for this item, or None when the
    automation would not fire or the route would not dispatch it."""
    a = w.automation
    if KINDS.get(a.event) != kind:
        return None
    what = f"{c.path}:{v.version} {a.event} {name}".rstrip()
    if artifact_id(ARTIFACT_PREFIX + v.artifact) is None:  # its webhook could name no change
        notes.append(f"{what}: W&B's artifact id {v.artifact!r} is not one the bridge reads")
        return None
    try:
        if not filter_matches(a.filter, {ALIAS: {"alias": name}, TAG: {"tag": name}}.get(kind, {})):
            return None
    except UnknownFilter as exc:
        notes.append(f"{what}: automation {a.name!r} has a filter catch-up cannot read ({exc})")
        return None
    event = EVENTS[kind]
    body, _ = fill(template_text(a.payload), version_values(event, c, v, name))
    data = body.encode("utf-8")
    event_id = new_id("evt", now)
    route = next(r for r in config.routes if r.name == w.route)
    try:
        check_size(len(data), config.max_body_bytes)
        fields = webhook_fields(parse_object(data), event_id)
        planned = plan_dispatches([route], source, fields)
    except RequestRefused as exc:
        notes.append(f"{what}: route {w.route!r} would refuse it ({exc}); not dispatched")
        return None
    if not planned:
        return None  # the route's own conditions (when:) do not take it
    deliveries = to_deliveries(planned, now, new_id)
    return CaughtUp(
        event=NewEvent(
            event_id,
            source,
            f"/webhooks/{source}",
            now,
            data,
            hashlib.sha256(data).hexdigest(),
            origin=Origin.CATCH_UP,
            model=model_of(fields),
        ),
        deliveries=deliveries,
        route=w.route,
        change=change_key(event, c.project, c.name, v.artifact, name),
        echoes=() if kind == LINK else (item(v.artifact, kind, name),),
    )
