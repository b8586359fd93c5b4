"""The notifications an outcome calls for, filled in with the W&B event behind it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from bridge.config.model import Config
from bridge.errors import BridgeError
from bridge.ids import new_id
from bridge.notify.links import web_origin
from bridge.notify.messages import Outcome, notices
from bridge.routing.routes import webhook_fields
from bridge.store import SqlStore
from bridge.store.models import NewDelivery

log = logging.getLogger(__name__)


class Announcer:
    def __init__(self, config: Config, store: SqlStore, clock: Callable[[], float]) -> None:
        self.notifiers = config.notify
        self.web = web_origin(config.github.api_url)  # where message links may point
        self.store = store
        self.clock = clock

    def wants(self, outcome: str) -> bool:
        return any(outcome in n.outcomes for n in self.notifiers)

    def notices(
        self,
        outcome: str,
        event_id: str,
        repository: str,
        delivery_id: str,
        route: str | None = None,
        **details: Any,
    ) -> list[NewDelivery]:
        """The notification deliveries for ``outcome`` of one delivery (none when no entry
        asks for it); the event is read once, for its W&B fields and, unless given, the
        delivery's route."""
        if not self.wants(outcome):
            return []
        try:
            event = self.store.get_event(event_id)
            body = json.loads(event.body)
        except (BridgeError, ValueError):  # a message without the model beats none
            log.warning("event %s: cannot read it for a notification", event_id)
            event, body = None, None
        fields = webhook_fields(body, event_id) if isinstance(body, dict) else {}
        if route is None:
            found = (d.route for d in event.deliveries if d.id == delivery_id) if event else ()
            route = next(iter(found), "")

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
            web=self.web,
            **details,
        )
        return notices(self.notifiers, o, lambda: new_id("ntf", self.clock()))
