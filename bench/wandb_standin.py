"""A W&B stand-in for the catch-up benchmark: ``POST /graphql`` on loopback.

It answers the GraphQL operations a catch-up pass sends, recognised by
``operationName`` (``ServerFeaturesQuery``, ``GetEntityAutomations``, ``OrgEntity``,
``EntityProjects``, ``ProjectArtifactCollections``, ``ProjectArtifacts``) with the JSON
shapes W&B answers, 50 items a page, each after ``latency`` seconds (W&B seen from a
server). Any other operation is answered 400. It holds one registry (a project of the
organization's entity) of collections of versions, and the automations given to it;
:meth:`WandbStandIn.add_alias` changes the registry as W&B's UI does and sends the
webhook the automations fire (signed, with the access token) or drops it. It records
each request (operation, start, end). It is served by :mod:`harness.loopback`; nothing
here listens beyond 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request as HttpRequest
from werkzeug.wrappers import Response

from bridge.signature import sign
from harness.loopback import LoopbackServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

PAGE = 50  # W&B's most items a page
FEATURES = ("QUERY_AUTOMATIONS_ON_ENTITY", "AUTOMATION_SCOPE_ENTITY")
ARTIFACT_PREFIX = "wandb-artifact://_id/"
_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")


def gid(kind: str, n: int) -> str:
    """A W&B-style node id: base64 of ``Kind:n``."""
    return base64.b64encode(f"{kind}:{n}".encode()).decode()


@dataclass
class Version:
    index: int
    artifact: str
    aliases: list[str]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Automation:
    """A webhook automation on the registry (PROJECT scope), as ``wandb apply`` makes it."""

    name: str
    description: str
    event: str
    filter: Any
    payload: Mapping[str, Any]
    integration: str  # the webhook integration's name
    url: str  # its URL


@dataclass(frozen=True)
class Request:
    operation: str
    started: float  # time.time()
    ended: float


@dataclass
class Hook:
    """A webhook W&B fired: sent (with the bridge's status) or dropped."""

    body: bytes
    sent: bool
    status: int | None = None


@dataclass
class Registry:
    entity: str
    name: str
    id: str
    collections: dict[str, tuple[str, list[Version]]] = field(default_factory=dict)


class WandbStandIn:
    """The stand-in server; a context manager. ``url`` is its base URL."""

    def __init__(
        self,
        api_key: str,
        *,
        entity: str,
        org: str,
        registry: str,
        collections: int,
        versions: int,
        latency: float = 0.05,
    ) -> None:
        self.api_key = api_key
        self.entity = entity
        self.org = org
        self.latency = latency
        self.lock = threading.Lock()
        self._ids = 0
        self.registry = Registry(org, registry, self._next("Project"))
        for c in range(collections):
            name = f"model-{c:03}"
            made = [
                Version(n, self._next("Artifact"), ["latest"] if n == versions - 1 else [], {})
                for n in range(versions)
            ]
            self.registry.collections[name] = (self._next("ArtifactPortfolio"), made)
        self.automations: list[Automation] = []
        self.requests: list[Request] = []
        self.hooks: list[Hook] = []
        self.deliver_to = ""  # the bridge's base URL, where webhooks go
        self.webhook_secret = ""
        self.webhook_token = ""
        self._server = LoopbackServer(partial(_wsgi, self), "wandb-stand-in")

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> WandbStandIn:
        self._server.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self._server.stop()

    def _next(self, kind: str) -> str:
        self._ids += 1
        return gid(kind, self._ids)

    # -- the registry, as W&B's UI changes it ------------------------------------------

    def add_alias(self, collection: str, index: int, alias: str, *, deliver: bool) -> float:
        """Put ``alias`` on version ``index`` (moving it off the others), then send the
        webhook of each automation on ADD_ARTIFACT_ALIAS (``deliver``) or drop it.
        Returns when the change was made (``time.time()``)."""
        with self.lock:
            _, versions = self.registry.collections[collection]
            for v in versions:
                if alias in v.aliases:
                    v.aliases.remove(alias)
            version = versions[index]
            version.aliases.append(alias)
            changed_at = time.time()
            hooks = [
                self._body(a, collection, version, alias)
                for a in self.automations
                if a.event == "ADD_ARTIFACT_ALIAS" and _alias_matches(a.filter, alias)
            ]
        for body in hooks:
            hook = Hook(body, deliver)
            if deliver:
                hook.status = self._send(body)
            with self.lock:
                self.hooks.append(hook)
        return changed_at

    def _body(self, a: Automation, collection: str, v: Version, alias: str) -> bytes:
        """The automation's template filled as W&B fills it."""
        r = self.registry
        values = {
            "event_type": "ADD_ARTIFACT_ALIAS",
            "event_author": "bench-user",
            "entity_name": r.entity,
            "project_name": r.name,
            "artifact_collection_name": collection,
            "artifact_version": ARTIFACT_PREFIX + v.artifact,
            "artifact_version_string": f"{r.entity}/{r.name}/{collection}:{alias}",
            "alias": alias,
            "tag": "",
        }
        return json.dumps({k: _fill(t, values) for k, t in a.payload.items()}).encode()

    def _send(self, body: bytes) -> int:
        request = urllib.request.Request(
            f"{self.deliver_to}/webhooks/wandb",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.webhook_token}",
                "X-Wandb-Signature": sign(self.webhook_secret, body),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()
            return int(resp.status)

    # -- GraphQL ------------------------------------------------------------------------

    def answer(self, auth: str | None, body: bytes) -> tuple[int, Any]:
        started = time.time()
        if self.latency > 0:
            time.sleep(self.latency)
        request = json.loads(body)
        operation = str(request.get("operationName") or "")
        expected = "Basic " + base64.b64encode(f"api:{self.api_key}".encode()).decode()
        with self.lock:
            self.requests.append(Request(operation, started, time.time()))
            if auth != expected:
                return 401, {"errors": [{"message": "user is not logged in"}]}
            variables = request.get("variables") or {}
            answer = self._data(operation, variables)
        if answer is None:
            return 400, {"errors": [{"message": f"the stand-in has no {operation!r}"}]}
        return 200, {"data": answer}

    def _data(self, operation: str, v: Mapping[str, Any]) -> dict[str, Any] | None:
        r = self.registry
        if operation == "ServerFeaturesQuery":
            return {"serverInfo": {"features": [{"name": f, "isEnabled": True} for f in FEATURES]}}
        if operation == "OrgEntity":
            return {"entity": {"organization": {"orgEntity": {"name": self.org}}}}
        if operation == "GetEntityAutomations":
            mine = [self._trigger(a) for a in self.automations] if v["entity"] == r.entity else []
            return {"entity": {"triggers": _page(mine, v)}}
        if operation == "EntityProjects":
            names = [{"name": r.name}] if v["entity"] == r.entity else []
            return {"entity": {"projects": _page(names, v)}}
        if (v.get("entity"), v.get("project")) != (r.entity, r.name):
            return {"project": None} if operation.startswith("Project") else None
        if operation == "ProjectArtifactCollections":
            nodes = [
                {"__typename": "ArtifactPortfolio", "id": cid, "name": name}
                for name, (cid, _) in r.collections.items()
            ]
            return {"project": {"artifactCollections": _page(nodes, v)}}
        if operation == "ProjectArtifacts":
            name = v["collection"]
            if name not in r.collections:
                return {"project": {"artifactCollection": None}}
            cid, versions = r.collections[name]
            edges = _page([_version(x, name) for x in versions], v)
            node = {"__typename": "ArtifactPortfolio", "id": cid, "name": name, "artifacts": edges}
            return {"project": {"artifactCollection": node}}
        return None

    def _trigger(self, a: Automation) -> dict[str, Any]:
        r = self.registry
        return {
            "id": gid("Trigger", self.automations.index(a) + 1),
            "name": a.name,
            "description": a.description,
            "enabled": True,
            "scope": {"__typename": "Project", "id": r.id, "name": r.name},
            "triggeringCondition": {
                "__typename": "FilterEventTriggeringCondition",
                "eventType": a.event,
                "filter": json.dumps({"filter": json.dumps(a.filter)}),  # as W&B returns it
            },
            "triggeredAction": {
                "__typename": "GenericWebhookTriggeredAction",
                "requestPayload": json.dumps(dict(a.payload), indent=2),
                "integration": {
                    "__typename": "GenericWebhookIntegration",
                    "id": gid("Integration", 1),
                    "name": a.integration,
                    "urlEndpoint": a.url,
                },
            },
        }


def _version(v: Version, collection: str) -> dict[str, Any]:
    """An edge of ``artifacts``: the version's name in the collection, and its node."""
    return {
        "version": f"v{v.index}",
        "node": {
            "id": v.artifact,
            "versionIndex": v.index,
            "createdAt": "2026-01-01T00:00:00Z",
            "metadata": json.dumps(v.metadata),
            "tags": [],
            "aliases": [
                {"alias": a, "artifactCollection": {"name": collection}} for a in v.aliases
            ],
        },
    }


def _page(items: list[dict[str, Any]], variables: Mapping[str, Any]) -> dict[str, Any]:
    """One page of a connection: ``first`` items (50 at most) after the ``after`` cursor.
    ``_version`` gives its edges whole; other items are wrapped as ``{"node": ...}``."""
    start = int(variables.get("cursor") or 0)
    count = min(int(variables.get("perPage") or PAGE), PAGE)
    end = min(start + count, len(items))
    edges = [x if "node" in x else {"node": x} for x in items[start:end]]
    return {"pageInfo": {"endCursor": str(end), "hasNextPage": end < len(items)}, "edges": edges}


def _fill(template: Any, values: Mapping[str, str]) -> Any:
    """W&B's filling of one template value: variables replaced, unknown ones empty."""
    if not isinstance(template, str):
        return template
    return _VARIABLE.sub(lambda m: values.get(m.group(1), ""), template)


def _alias_matches(f: Any, alias: str) -> bool:
    """W&B's filter on an alias event, for the ``$or``/``$and``/``$eq``/``$in`` that
    ``wandb apply`` writes; a condition on anything but ``alias`` does not narrow it."""
    if not isinstance(f, Mapping):
        return True
    if "$or" in f:
        return not f["$or"] or any(_alias_matches(x, alias) for x in f["$or"])
    if "$and" in f:
        return all(_alias_matches(x, alias) for x in f["$and"])
    cond = f.get("alias")
    if isinstance(cond, Mapping):
        if "$eq" in cond:
            return bool(alias == cond["$eq"])
        if "$in" in cond:
            return alias in cond["$in"]
        return True
    return cond is None or alias == cond


def _wsgi(standin: WandbStandIn, environ: WSGIEnvironment, start_response: StartResponse
          ) -> Iterable[bytes]:  # fmt: skip
    """Answer one request: ``POST /graphql``, else 404."""
    request = HttpRequest(environ)
    if request.method != "POST" or request.path != "/graphql":
        status, answer = 404, {"errors": [{"message": "not found"}]}
    else:
        status, answer = standin.answer(request.headers.get("Authorization"), request.get_data())
    response = Response(json.dumps(answer), status, content_type="application/json")
    return response(environ, start_response)
