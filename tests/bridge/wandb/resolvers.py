"""The stand-in's resolvers: W&B's queries and mutations over a :class:`State` (the
registry's in :mod:`tests.bridge.wandb.resolvers_registry`).

Nodes are dicts with ``__typename`` (graphql-core resolves unions and interfaces by it);
fields that take arguments are callables. Mutations check their input as W&B does and
raise :class:`Refused` with the HTTP status W&B answers (409 for a duplicate name, 404
for an unknown id), and record themselves in ``State.mutations``.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tests.bridge.wandb.resolvers_registry import Refused, Registry
from tests.bridge.wandb.standin_state import Change, State, Trigger, Webhook, gid

__all__ = ["Graph", "Refused"]

NAME_RE = re.compile(r"^[-\w]+([ ]+[-\w]+)*$")


class Graph:
    """Resolves queries and mutations over a :class:`State` (dicts with ``__typename``);
    the registry's writes hand their changes to ``on_change``."""

    def __init__(
        self, state: State, on_change: Callable[[list[Change]], None] = lambda changes: None
    ) -> None:
        self.s = state
        self.registry = Registry(state, self.project, on_change)

    def root(self) -> dict[str, Any]:
        return {
            "serverInfo": {"features": self._features, "latestLocalVersionInfo": None},
            "entity": lambda info, name: self.entity(name),
            "project": lambda info, name, entityName=None: self.project(entityName, name),
            "viewer": {
                "__typename": "User",
                "id": gid("User", 1),
                "username": self.s.username,
                "entity": self.s.username,
                "email": None,
                "organizations": [],
                "flags": None,
                "teams": {"edges": [{"node": self.entity(name)} for name in self.s.entities]},
                "projects": None,
            },
            "artifact": lambda info, id: self.registry.by_id(id),
            "artifactCollection": lambda info, id: self.registry.collection_by_id(id),
            "addAliases": lambda info, input: self.registry.add_aliases(input),
            "deleteAliases": lambda info, input: self.registry.delete_aliases(input),
            "updateArtifact": lambda info, input: self.registry.update_artifact(input),
            "createFilterTrigger": lambda info, input: self.create_trigger(input),
            "updateFilterTrigger": lambda info, input: self.update_trigger(input),
            "deleteTrigger": lambda info, input: self.delete_trigger(input),
            "createGenericWebhookIntegration": lambda info, input: self.create_webhook(input),
            "insertSecret": lambda info, input: self.insert_secret(input),
        }

    def _features(self, info: Any) -> list[dict[str, Any]]:
        return [{"name": f, "isEnabled": True} for f in sorted(self.s.features)]

    # -- nodes ----------------------------------------------------------------------------
    def entity(self, name: str) -> dict[str, Any] | None:
        e = self.s.entities.get(name)
        if e is None:
            return None
        org = e["org"]
        return {
            "__typename": "Entity",
            "id": e["id"],
            "name": name,
            "entityType": "ORGANIZATION" if org is None and name.endswith("-org") else "TEAM",
            "user": None,
            "organization": None
            if org is None
            else {
                "id": gid("Organization", 1),
                "name": org,
                "orgEntity": lambda info: self.entity(org),
            },
            "projects": lambda info, after=None, first=None, order=None: self._page(
                [self.project(name, p.name) for p in self.s.projects.values() if p.entity == name],
                after,
                first,
            ),
            "triggers": lambda info, after=None, first=None, order=None, filters=None: self._page(
                [
                    self.trigger(t)
                    for t in self.s.triggers.values()
                    if self.s.owner(t) == name and _filtered(t, filters)
                ],
                after,
                first,
            ),
            "integrations": lambda info, after=None, first=None: self._page(
                [self.webhook(w) for w in self.s.webhooks.values() if w.entity == name],
                after,
                first,
            ),
            "secrets": lambda info: [
                {"name": k, "createdAt": "2025-01-01T00:00:00Z"}
                for k in sorted(self.s.secrets.get(name, {}))
            ],
        }

    def project(self, entity: str | None, name: str) -> dict[str, Any] | None:
        p = self.s.project(entity, name)
        if p is None:
            return None
        registry = self.registry
        return {
            "__typename": "Project",
            "id": p.id,
            "internalId": p.id,
            "name": p.name,
            "entity": lambda info: self.entity(p.entity),
            "readOnly": False,
            "triggers": lambda info: [
                self.trigger(t)
                for t in self.s.triggers.values()
                if (found := self.s.scope_of(t.scope_type, t.scope_id))
                and t.scope_type != "ENTITY"
                and (t.scope_id == p.id or t.scope_id in {c.id for c in p.collections.values()})
                and found[0] == p.entity
            ],
            "artifactType": lambda info, name: registry.project_type(p, name),
            "artifactCollections": lambda info, after=None, first=None, filters=None, order=None: (
                registry.collections(p, after, first, filters)
            ),
            "artifactCollection": lambda info, name: (
                registry.collection(p, p.collections[name]) if name in p.collections else None
            ),
            "artifactCollectionMembership": lambda info, name: registry.membership(p, name),
            "artifact": lambda info, name: (registry.membership(p, name) or {}).get("artifact"),
        }

    def webhook(self, w: Webhook) -> dict[str, Any]:
        if w.kind == "SlackIntegration":
            return {"__typename": w.kind, "id": w.id, "teamName": w.name, "channelName": w.url}
        return {
            "__typename": w.kind,
            "id": w.id,
            "name": w.name,
            "urlEndpoint": w.url,
            "createdAt": "2025-01-01T00:00:00Z",
        }

    def trigger(self, t: Trigger) -> dict[str, Any]:
        _, typename, name = self.s.scope_of(t.scope_type, t.scope_id) or ("", "Project", "?")
        hook = self.webhook(self.s.webhooks[t.integration_id])
        if t.action == "GENERIC_WEBHOOK":
            action = {
                "__typename": "GenericWebhookTriggeredAction",
                "integration": hook,
                "requestPayload": t.payload,
            }
        else:
            action = {
                "__typename": "NotificationTriggeredAction",
                "integration": hook,
                "title": "t",
                "message": "m",
                "severity": "INFO",
            }
        return {
            "__typename": "Trigger",
            "id": t.id,
            "createdAt": t.created,
            "updatedAt": t.updated,
            "name": t.name,
            "description": t.description,
            "enabled": t.enabled,
            "scope": {"__typename": typename, "id": t.scope_id, "name": name, "entityType": "TEAM"},
            "triggeringCondition": {
                "__typename": "FilterEventTriggeringCondition",
                "eventType": t.event,
                "filter": t.filter,
            },
            "triggeredAction": action,
        }

    def _page(self, nodes: list[Any], after: str | None, first: int | None) -> dict[str, Any]:
        start = int(base64.b64decode(after).decode()) if after else 0
        count = min(first or self.s.page_cap, self.s.page_cap)
        page = nodes[start : start + count]
        end = start + len(page)
        cursor = base64.b64encode(str(end).encode()).decode()
        return {
            "edges": [{"node": n, "cursor": cursor} for n in page],
            "pageInfo": {"endCursor": cursor, "hasNextPage": end < len(nodes)},
        }

    # -- mutations ------------------------------------------------------------------------
    def create_trigger(self, data: dict[str, Any]) -> dict[str, Any]:
        self.s.mutations.append("createFilterTrigger")
        checked = self._check_trigger(data, None)
        now = _now()
        t = Trigger(id=self.s.next_id("Trigger"), created=now, **checked)
        self.s.triggers[t.id] = t
        return {"trigger": self.trigger(t)}

    def update_trigger(self, data: dict[str, Any]) -> dict[str, Any]:
        self.s.mutations.append("updateFilterTrigger")
        t = self.s.triggers.get(data["id"])
        if t is None:
            raise Refused("trigger not found", 404)
        checked = self._check_trigger(data, t)
        for k, v in checked.items():
            setattr(t, k, v)
        t.updated = _now()
        return {"trigger": self.trigger(t)}

    def _check_trigger(self, data: dict[str, Any], old: Trigger | None) -> dict[str, Any]:
        def pick(key: str, attr: str) -> Any:
            if data.get(key) is not None or old is None:
                return data.get(key)
            return getattr(old, attr)

        name = pick("name", "name")
        if not name or len(name) > 255:
            raise Refused("invalid trigger name: 1 to 255 characters")
        scope_type, scope_id = pick("scopeType", "scope_type"), pick("scopeID", "scope_id")
        if scope_type == "ENTITY" and "AUTOMATION_SCOPE_ENTITY" not in self.s.features:
            raise Refused("invalid scope type ENTITY")
        found = self.s.scope_of(scope_type, scope_id)
        if found is None:
            raise Refused(f"scope {scope_id} of type {scope_type} not found")
        owner = found[0]
        for other in self.s.triggers.values():
            if other is not old and other.name == name and self.s.owner(other) == owner:
                raise Refused(f"a trigger named {name} already exists", 409)
        event = pick("triggeringEventType", "event")
        if event == "CREATE_ARTIFACT" and scope_type != "ARTIFACT_COLLECTION":
            raise Refused("CREATE_ARTIFACT is only supported on artifact collection scopes")
        if event.startswith("RUN_") and scope_type == "ARTIFACT_COLLECTION":
            raise Refused("run events are not supported on artifact collection scopes")
        flag = {
            "ADD_ARTIFACT_TAG": "AUTOMATION_EVENT_ADD_ARTIFACT_TAG",
            "UNLINK_ARTIFACT": "AUTOMATION_EVENT_UNLINK_ARTIFACT",
        }.get(event)
        if flag and flag not in self.s.features:
            raise Refused(f"unsupported event type {event}")
        event_filter = old.filter if old else None
        if data.get("eventFilter") is not None:
            if not isinstance(json.loads(data["eventFilter"]), dict):
                raise Refused("eventFilter must be a JSON object")
            event_filter = json.dumps({"filter": json.loads(data["eventFilter"])})
        if event_filter is None:
            raise Refused("eventFilter is required")
        action = pick("triggeredActionType", "action")
        config = data.get("triggeredActionConfig")
        integration_id, payload = (old.integration_id, old.payload) if old else (None, None)
        if config is not None:
            hook = config.get("genericWebhookActionInput")
            if action != "GENERIC_WEBHOOK" or hook is None:
                raise Refused(
                    "GENERIC_WEBHOOK needs triggeredActionConfig.genericWebhookActionInput"
                )
            integration_id, payload = hook["integrationID"], hook.get("requestPayload")
        if integration_id not in self.s.webhooks:
            raise Refused(f"integration {integration_id} not found")
        if action == "GENERIC_WEBHOOK" and not self.s.webhooks_allowed:
            raise Refused("Webhook automations are not available on your plan; upgrade to Pro")
        return {
            "name": name,
            "description": pick("description", "description"),
            "enabled": pick("enabled", "enabled"),
            "scope_type": scope_type,
            "scope_id": scope_id,
            "event": event,
            "filter": event_filter,
            "action": action,
            "integration_id": integration_id,
            "payload": payload,
        }

    def delete_trigger(self, data: dict[str, Any]) -> dict[str, Any]:
        self.s.mutations.append("deleteTrigger")
        if self.s.triggers.pop(data["triggerID"], None) is None:
            raise Refused("trigger not found", 404)
        return {"success": True}

    def create_webhook(self, data: dict[str, Any]) -> dict[str, Any]:
        self.s.mutations.append("createGenericWebhookIntegration")
        entity = data["entityName"]
        if entity not in self.s.entities:
            raise Refused(f"entity {entity} not found")
        if not self.s.admin:
            raise Refused("permission denied: only team admins can add webhooks")
        if not self.s.webhooks_allowed:
            raise Refused("Webhooks are not available on your plan; upgrade to Pro or Enterprise")
        name = data["name"]
        if len(name) > 64 or not NAME_RE.match(name):
            raise Refused(f"invalid integration name {name!r}")
        host = urlsplit(data["urlEndpoint"]).hostname or ""
        if host == "localhost" or _is_ip(host):
            raise Refused("url endpoint must not be localhost or an IP address")
        for ref in ("secretRef", "accessTokenRef"):
            if data.get(ref) and data[ref] not in self.s.secrets.get(entity, {}):
                raise Refused(f"secret {data[ref]} not found in {entity}")
        w = Webhook(
            self.s.next_id("Integration"),
            entity,
            name,
            data["urlEndpoint"],
            data.get("secretRef"),
            data.get("accessTokenRef"),
        )
        self.s.webhooks[w.id] = w
        return {"integration": self.webhook(w)}

    def insert_secret(self, data: dict[str, Any]) -> dict[str, Any]:
        self.s.mutations.append("insertSecret")
        if not self.s.admin:
            raise Refused("permission denied: only team admins can manage secrets")
        entity = data["entityName"]
        if entity not in self.s.entities:
            raise Refused(f"entity {entity} not found")
        self.s.secrets[entity][data["secretName"]] = data["secretValue"]
        return {"success": True}


def _filtered(t: Trigger, filters: str | None) -> bool:
    wanted = json.loads(filters) if filters else {}
    return all(getattr(t, k, None) == v for k, v in wanted.items())


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()
