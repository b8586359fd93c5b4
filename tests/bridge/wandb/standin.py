"""A stand-in for W&B's GraphQL API on loopback: stateful, strict, with failure modes.

``POST /graphql`` with HTTP Basic ``api:<key>`` (401 otherwise); documents are parsed,
validated and executed by graphql-core against :mod:`tests.bridge.wandb.schema`. State
(entities, projects and collections, webhook integrations, triggers, team secrets) lives
in :class:`State`, which tests read to check what a command did, not what it printed.

W&B's refusals, as its SDK and docs describe them: a duplicate automation name is HTTP
409, an unknown one on update 404; webhooks need a plan that has them; only admins may
create integrations and secrets; webhook URLs on localhost or an IP are refused; an
integration's secret references must name existing team secrets. Modes: ``legacy`` (an
old W&B Server: no ``Entity.triggers``, no feature list, no entity scope), ``secrets``
off (no secret store), ``webhooks_allowed`` off, ``admin`` off, ``echo_key`` (error
messages quote the credentials, to prove they are redacted); ``fail_next`` and
``answers`` (by operation name) replace W&B's answer outright.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import itertools
import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from graphql import graphql_sync

from tests.bridge.wandb.schema import make_schema

MODERN_FEATURES = frozenset(
    {
        "QUERY_AUTOMATIONS_ON_ENTITY",
        "AUTOMATION_SCOPE_ENTITY",
        "AUTOMATION_EVENT_ADD_ARTIFACT_TAG",
        "AUTOMATION_EVENT_UNLINK_ARTIFACT",
    }
)
NAME_RE = re.compile(r"^[-\w]+([ ]+[-\w]+)*$")


class Refused(Exception):
    """A refusal W&B's resolvers would raise; ``status`` is the HTTP status it answers."""

    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.status = status


def gid(kind: str, n: int) -> str:
    """A W&B-style node id: base64 of ``Kind:n``."""
    return base64.b64encode(f"{kind}:{n}".encode()).decode()


@dataclass
class Collection:
    id: str
    name: str
    typename: str  # ArtifactSequence, or ArtifactPortfolio in a registry
    versions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Project:
    id: str
    entity: str
    name: str
    collections: dict[str, Collection] = field(default_factory=dict)


@dataclass
class Webhook:
    id: str
    entity: str
    name: str
    url: str
    secret_ref: str | None
    token_ref: str | None
    kind: str = "GenericWebhookIntegration"


@dataclass
class Trigger:
    id: str
    name: str
    description: str | None
    enabled: bool
    scope_type: str
    scope_id: str
    event: str
    filter: str  # as W&B returns it: {"filter": <the filter>} as JSON text
    action: str  # GENERIC_WEBHOOK or NOTIFICATION
    integration_id: str
    payload: str | None
    created: str
    updated: str | None = None


@dataclass
class State:
    """Everything the stand-in holds, and every request it received."""

    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)  # by id
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # entity -> name -> value
    features: frozenset[str] = MODERN_FEATURES
    webhooks_allowed: bool = True
    admin: bool = True
    echo_key: bool = False
    page_cap: int = 50
    operations: list[str] = field(default_factory=list)  # operationName of each request
    mutations: list[str] = field(default_factory=list)  # the mutation fields executed
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self, kind: str) -> str:
        return gid(kind, next(self._ids))

    # -- seeding ------------------------------------------------------------------------
    def add_entity(self, name: str, org: str | None = None) -> None:
        self.entities[name] = {"id": self.next_id("Entity"), "org": org}
        self.secrets.setdefault(name, {})

    def add_project(
        self, entity: str, name: str, collections: dict[str, str] | None = None
    ) -> Project:
        project = Project(self.next_id("Project"), entity, name)
        for cname, typename in (collections or {}).items():
            project.collections[cname] = Collection(self.next_id(typename), cname, typename)
        self.projects[project.id] = project
        return project

    def add_version(
        self, project: Project, collection: str, aliases: list[str], metadata: dict[str, Any]
    ) -> None:
        versions = project.collections[collection].versions
        versions.append(
            {
                "index": len(versions),
                "aliases": aliases,
                "metadata": metadata,
                "artifact": self.next_id("Artifact"),
            }
        )

    # -- looking things up --------------------------------------------------------------
    def project(self, entity: str | None, name: str) -> Project | None:
        return next(
            (p for p in self.projects.values() if p.entity == entity and p.name == name), None
        )

    def scope_of(self, scope_type: str, scope_id: str) -> tuple[str, str, str] | None:
        """(owner entity, __typename, name) of a scope id, or None."""
        if scope_type == "ENTITY":
            for name, e in self.entities.items():
                if e["id"] == scope_id:
                    return name, "Entity", name
            return None
        for p in self.projects.values():
            if scope_type == "PROJECT" and p.id == scope_id:
                return p.entity, "Project", p.name
            for c in p.collections.values():
                if scope_type == "ARTIFACT_COLLECTION" and c.id == scope_id:
                    return p.entity, c.typename, c.name
        return None

    def owner(self, trigger: Trigger) -> str:
        found = self.scope_of(trigger.scope_type, trigger.scope_id)
        return found[0] if found else ""


class Graph:
    """Resolves queries and mutations over a :class:`State` (dicts with ``__typename``)."""

    def __init__(self, state: State) -> None:
        self.s = state

    def root(self) -> dict[str, Any]:
        return {
            "serverInfo": {"features": self._features, "latestLocalVersionInfo": None},
            "entity": lambda info, name: self.entity(name),
            "project": lambda info, name, entityName=None: self.project(entityName, name),
            "viewer": None,
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
        return {
            "__typename": "Project",
            "id": p.id,
            "name": p.name,
            "entity": lambda info: self.entity(p.entity),
            "triggers": lambda info: [
                self.trigger(t)
                for t in self.s.triggers.values()
                if (found := self.s.scope_of(t.scope_type, t.scope_id))
                and t.scope_type != "ENTITY"
                and (t.scope_id == p.id or t.scope_id in {c.id for c in p.collections.values()})
                and found[0] == p.entity
            ],
            "artifactCollection": lambda info, name: self.collection(p, name),
            "artifactCollectionMembership": lambda info, name: self.membership(p, name),
            "artifact": lambda info, name: (self.membership(p, name) or {}).get("artifact"),
        }

    def collection(self, p: Project, name: str) -> dict[str, Any] | None:
        c = p.collections.get(name)
        if c is None:
            return None
        return {"__typename": c.typename, "id": c.id, "name": c.name, "project": None}

    def membership(self, p: Project, name: str) -> dict[str, Any] | None:
        cname, _, alias = name.partition(":")
        c = p.collections.get(cname)
        if c is None:
            return None
        for v in c.versions:
            if alias in v["aliases"] or alias == f"v{v['index']}":
                aliases = [{"id": gid("Alias", i), "alias": a} for i, a in enumerate(v["aliases"])]
                return {
                    "id": gid("Membership", v["index"]),
                    "versionIndex": v["index"],
                    "aliases": aliases,
                    "artifactCollection": self.collection(p, cname),
                    "artifact": {
                        "id": v["artifact"],
                        "versionIndex": v["index"],
                        "metadata": json.dumps(v["metadata"]),
                        "aliases": aliases,
                    },
                }
        return None

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


class StandIn:
    """The stand-in server; a context manager. ``url`` is its base URL, ``state`` its data."""

    def __init__(
        self,
        api_key: str,
        *,
        legacy: bool = False,
        secrets: bool = True,
        state: State | None = None,
    ) -> None:
        self.api_key = api_key
        self.state = state or State()
        if legacy:
            self.state.features = frozenset()
        self.schema = make_schema(legacy=legacy, secrets=secrets)
        self.graph = Graph(self.state)
        self.fail_next: deque[tuple[int, Any]] = deque()  # raw (status, body) answers
        self.answers: dict[str, tuple[int, Any]] = {}  # operationName -> (status, body)
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.standin = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> StandIn:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join()

    def answer(self, auth: str | None, body: bytes) -> tuple[int, Any]:
        """The status and body for one POST /graphql."""
        with self.lock:
            if self.fail_next:
                return self.fail_next.popleft()
            expected = "Basic " + base64.b64encode(f"api:{self.api_key}".encode()).decode()
            if auth != expected:
                echoed = f" (got {auth})" if self.state.echo_key else ""
                return 401, {"errors": [{"message": f"user is not logged in{echoed}"}]}
            request = json.loads(body)
            self.state.operations.append(request.get("operationName") or "")
            if request.get("operationName") in self.answers:
                return self.answers[request["operationName"]]
            result = graphql_sync(
                self.schema,
                request["query"],
                root_value=self.graph.root(),
                variable_values=request.get("variables"),
                operation_name=request.get("operationName"),
            )
            if not result.errors:
                return 200, {"data": result.data}
            # A document W&B's schema rejects is HTTP 400; a resolver's refusal has its own.
            status = 400 if result.data is None else 200
            messages = []
            for error in result.errors:
                original = error.original_error
                if isinstance(original, Refused):
                    status = original.status
                message = error.message
                if self.state.echo_key:
                    message += f" (request by api:{self.api_key})"
                messages.append({"message": message, "path": error.path})
            return status, {"errors": messages, "data": result.data}


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


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        standin: StandIn = self.server.standin  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/graphql":
            status, answer = 404, "404 page not found"
        else:
            status, answer = standin.answer(self.headers.get("Authorization"), body)
        data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "text/plain" if isinstance(answer, str) else "application/json"
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
