"""Write-back: the aliases and tags a route adds to its W&B artifact version when the run
its dispatch started concludes.

A concluded run becomes a ``wandb`` delivery (:class:`WriteBacks`, called where the run's
notices are made, in the same commit); a worker sends it with :class:`WandbWriter`:
``addAliases`` and ``updateArtifact(tagsToAdd)``, the mutations W&B's SDK sends. W&B then
fires ADD_ARTIFACT_ALIAS / ADD_ARTIFACT_TAG for that write, possibly before it answers;
so each alias and tag is noted in the store (committed) before the write is sent, and
intake drops a webhook that names one of them (:func:`bridge.routing.changes.echo_items`):
the bridge never dispatches its own write, whatever the routes say.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from bridge import logs
from bridge.config.model import Route, WriteBack
from bridge.errors import (
    DeliveryError,
    NotFound,
    PermanentDeliveryError,
    StoreUnavailable,
    TransientDeliveryError,
    WandbError,
)
from bridge.ids import new_id
from bridge.routing.changes import ALIAS, TAG, artifact_id, item
from bridge.routing.routes import webhook_fields
from bridge.routing.templates import as_text, render
from bridge.states import DeliveryKind
from bridge.store import SqlStore
from bridge.store.models import Claimed, NewDelivery
from bridge.wandb.api import WandbApi
from bridge.wandb.state import REGISTRY_PREFIX

log = logging.getLogger(__name__)
# How long the bridge takes an alias or tag webhook for the echo of its own write: W&B
# fires it within seconds, and a webhook an hour late is not W&B's normal delay.
ECHO_WINDOW = 3600.0


@dataclass(frozen=True)
class Write:
    """One write-back: the version (its artifact id when the event gave it, and its
    ``entity/project/collection:version`` coordinates) and the names to add to it."""

    artifact_id: str | None
    entity: str
    project: str
    collection: str
    version: str  # vN or an alias, as the event named it; "" when it did not
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """``entity/project/collection:version``, as ``events show`` names the target."""
        where = f"{self.entity}/{self.project}/{self.collection}"
        return f"{where}:{self.version}" if self.version else where

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Write:
        value = json.loads(text)
        return cls(
            value["artifact_id"],
            value["entity"],
            value["project"],
            value["collection"],
            value["version"],
            tuple(value["aliases"]),
            tuple(value["tags"]),
        )

    def echoes(self, artifact: str) -> list[str]:
        """The items intake recognises this write's webhooks by."""
        return [item(artifact, ALIAS, a) for a in self.aliases] + [
            item(artifact, TAG, t) for t in self.tags
        ]


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    return value.strip() if isinstance(value, str) else ""


def version_of(fields: Mapping[str, Any]) -> Write | None:
    """The version an event's fields name (no names yet), or None when they name none:
    coordinates from ``artifact_version_string``, else from ``entity_name``,
    ``project_name`` and ``artifact_collection_name``; the artifact id from
    ``artifact_version``. Without an id, the version is looked up by name."""
    artifact = artifact_id(fields.get("artifact_version"))
    path, _, version = _text(fields, "artifact_version_string").rpartition(":")
    parts = path.split("/")
    if len(parts) != 3 or not all(parts):
        parts = [_text(fields, k) for k in ("entity_name", "project_name")]
        parts.append(_text(fields, "artifact_collection_name"))
    if not all(parts) or not (artifact or version):
        return None
    return Write(artifact, parts[0], parts[1], parts[2], version)


def names(templates: Sequence[str], fields: Mapping[str, Any]) -> tuple[str, ...]:
    """``templates`` rendered with the event's fields: blanks dropped, each name once."""
    rendered = (as_text(render(t, fields)).strip() for t in templates)
    return tuple(dict.fromkeys(n for n in rendered if n))


def plan(write_back: WriteBack, fields: Mapping[str, Any]) -> Write | None:
    """What ``write_back`` adds for an event with ``fields``; None when the event names
    no version, or every name rendered blank."""
    version = version_of(fields)
    aliases, tags = names(write_back.aliases, fields), names(write_back.tags, fields)
    if version is None or not (aliases or tags):
        return None
    return replace(version, aliases=aliases, tags=tags)


class WriteBacks:
    """The write-back deliveries a concluded run calls for, from its route's config."""

    def __init__(self, routes: Sequence[Route], store: SqlStore, clock: Callable[[], float]):
        self.routes = {r.name: dict(r.write_back) for r in routes if r.write_back}
        self.store = store
        self.clock = clock

    def deliveries(self, outcome: str, event_id: str, delivery_id: str) -> list[NewDelivery]:
        """The ``wandb`` delivery for ``outcome`` (``run_succeeded``/``run_failed``) of the
        dispatch ``delivery_id``; none when its route writes nothing back for it."""
        if not any(outcome in wb for wb in self.routes.values()):
            return []  # the usual case: no event to read
        try:
            event = self.store.get_event(event_id)
            body = json.loads(event.body)
        except (NotFound, ValueError):
            log.warning("event %s: cannot read it for a write-back to W&B", event_id)
            return []
        route = next((d.route for d in event.deliveries if d.id == delivery_id), "")
        write_back = self.routes.get(route, {}).get(outcome)
        if write_back is None:
            return []
        fields = webhook_fields(body, event_id) if isinstance(body, dict) else {}
        write = plan(write_back, fields)
        if write is None:
            log.warning(
                "no write-back: the event names no W&B artifact version "
                "(artifact_version_string or artifact_version), or every alias and tag "
                "rendered blank",
                extra=logs.fields(event=event_id, route=route, outcome=outcome),
            )
            return []
        write_id = new_id("wbk", self.clock())
        kind = DeliveryKind.WANDB
        return [NewDelivery(write_id, route, write.name, outcome, write.to_json(), kind=kind)]


class WandbWriter:
    """Sends ``wandb`` deliveries with the process's one W&B client."""

    def __init__(self, api: WandbApi, store: SqlStore, clock: Callable[[], float]) -> None:
        self.api = api
        self.store = store
        self.clock = clock

    def send(self, claimed: Claimed) -> int:
        """Add the write's aliases and tags; 200, or a DeliveryError."""
        try:
            write = Write.from_json(claimed.client_payload)
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentDeliveryError("the stored write-back cannot be read") from exc
        try:
            artifact = write.artifact_id or self._resolve(write)
            try:  # committed before W&B hears of it: its webhook may come before its answer
                self.store.note_echoes(write.echoes(artifact), self.clock() + ECHO_WINDOW)
            except StoreUnavailable as exc:
                raise TransientDeliveryError(
                    f"cannot note the write-back in the store before sending it ({exc})"
                ) from exc
            if write.aliases:
                coordinates = (self._owner(write), write.project, write.collection)
                self.api.add_aliases(artifact, *coordinates, list(write.aliases))
            if write.tags:
                self.api.add_tags(artifact, list(write.tags))
        except WandbError as exc:
            raise classify(exc) from exc
        return 200

    def _resolve(self, write: Write) -> str:
        """The artifact id of a version the event named only by name."""
        name = f"{write.collection}:{write.version}"
        found = self.api.artifact_version(self._owner(write), write.project, name)
        if not found or not isinstance(found.get("id"), str):
            raise PermanentDeliveryError(
                f"W&B has no artifact version {write.name} (deleted since, or not visible "
                "to the API key's user)",
                404,
            )
        return str(found["id"])

    def _owner(self, write: Write) -> str:
        """The entity that holds the version: a registry (``wandb-registry-*``) lives in
        the organization's entity, whichever entity the webhook named."""
        if write.project.startswith(REGISTRY_PREFIX):
            return self.api.org_entity()
        return write.entity


def classify(exc: WandbError) -> DeliveryError:
    """W&B's failure as a delivery error: no answer, a rate limit or an outage is
    retried; a refusal (GraphQL errors, 401, 403, no such version) is final."""
    status = exc.status
    if status is None or status in (408, 429) or status >= 500:
        return TransientDeliveryError(str(exc), status, exc.not_before)
    return PermanentDeliveryError(str(exc), status)
