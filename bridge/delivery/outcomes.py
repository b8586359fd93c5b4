"""The notifications an outcome calls for, filled in with the W&B event behind it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from bridge.config.model import Config
from bridge.errors import BridgeError
from bridge.ids import new_id
from bridge.notify.messages import Outcome, notices
from bridge.routing.routes import webhook_fields
from bridge.store import SqlStore
from bridge.store.models import NewDelivery

log = logging.getLogger(__name__)


class Announcer:
    def __init__(self, config: Config, store: SqlStore, clock: Callable[[], float]) -> None:
        self.notifiers = config.notify
        self.store = store
        self.clock = clock

    def wants(self, outcome: str) -> bool:
        return any(outcome in n.outcomes for n in self.notifiers)

    def notices(
        self, outcome: str, event_id: str, repository: str, route: str, **details: Any
    ) -> list[NewDelivery]:
        """The notification deliveries for ``outcome`` (none when no entry asks for it)."""
        if not self.wants(outcome):
            return []
        fields = self._fields(event_id)

        def text(name: str) -> str | None:
            value = fields.get(name)
            return value if isinstance(value, str) and value else None

        o = Outcome(
            outcome,
            event_id,
            repository,
            route,
            model=text("artifact_version_string"),
            event_type=text("event_type"),
            author=text("event_author"),
            **details,
        )
        return notices(self.notifiers, o, lambda: new_id("ntf", self.clock()))

    def route_of(self, event_id: str, delivery_id: str) -> str:
        """The route that made a delivery ('' when it cannot be read)."""
        try:
            event = self.store.get_event(event_id)
        except BridgeError:
            return ""
        return next((d.route for d in event.deliveries if d.id == delivery_id), "")

    def _fields(self, event_id: str) -> dict[str, Any]:
        try:
            body = json.loads(self.store.get_event(event_id).body)
        except (BridgeError, ValueError):  # a message without the model beats none
            log.warning("event %s: cannot read its body for a notification", event_id)
            return {}
        return webhook_fields(body, event_id) if isinstance(body, dict) else {}
