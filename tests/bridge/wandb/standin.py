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

The registry: collections of versions that the SDK's documents read and write
(``addAliases``, ``deleteAliases``, ``updateArtifact``), and helpers that change it as
W&B's UI would (:meth:`StandIn.link`, :meth:`StandIn.add_alias`, ...). Every change fires
the matching automations' webhooks (:mod:`tests.bridge.wandb.standin_hooks`) once, on a
background thread, to ``deliver_to``'s loopback base; ``drop_next``, ``hold`` and
``release``, and ``hooks_before_answer`` (a write's webhooks are answered before the
write is) are W&B's ways of losing, delaying and racing them.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, graphql_sync, parse

from tests.bridge.wandb.resolvers import Graph, Refused
from tests.bridge.wandb.schema import make_schema
from tests.bridge.wandb.standin_hooks import Sender, fired
from tests.bridge.wandb.standin_state import Change, Project, State


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
        self.sender = Sender(self.state)
        self.graph = Graph(self.state, self._fire)
        self.hooks_before_answer = False
        self.fail_next: deque[tuple[int, Any]] = deque()  # raw (status, body) answers
        # operationName -> (status, body), or a function of the request that returns one
        self.answers: dict[str, Any] = {}
        self.lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.standin = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> StandIn:
        self.sender.start()
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
        self.sender.stop()

    # -- webhooks ---------------------------------------------------------------------------
    def deliver_to(self, base_url: str) -> None:
        """Send webhooks to this base (scheme, host, port) instead of the integration's."""
        self.sender.base = base_url

    def drop_next(self, n: int = 1) -> None:
        self.sender.drop_next(n)

    def hold(self) -> None:
        self.sender.hold()

    def release(self) -> None:
        self.sender.release()

    def flush(self, timeout: float = 10.0) -> None:
        self.sender.flush(timeout)

    def _fire(self, changes: list[Change]) -> None:
        for change in changes:
            self.sender.fire(fired(self.state, change))

    # -- the registry as W&B's UI changes it ------------------------------------------------
    def link(
        self,
        project: Project | str,
        collection: str,
        metadata: dict[str, Any] | None = None,
        aliases: tuple[str, ...] | list[str] = (),
        author: str = "alice",
    ) -> dict[str, Any]:
        """Link a new version (LINK_MODEL, then ADD_ARTIFACT_ALIAS per alias); the version."""
        with self.lock:
            version, changes = self.state.link(
                self._project(project), collection, metadata, aliases, author
            )
            self._fire(changes)
        return version

    def add_alias(
        self, project: Project | str, collection: str, index: int, alias: str, author: str = "alice"
    ) -> None:
        with self.lock:
            self._fire(
                self.state.add_alias(self._project(project), collection, index, alias, author)
            )

    def remove_alias(
        self, project: Project | str, collection: str, index: int, alias: str, author: str = "alice"
    ) -> None:
        with self.lock:
            self.state.remove_alias(self._project(project), collection, index, alias, author)

    def add_tag(
        self, project: Project | str, collection: str, index: int, tag: str, author: str = "alice"
    ) -> None:
        with self.lock:
            self._fire(self.state.add_tag(self._project(project), collection, index, tag, author))

    def remove_tag(
        self, project: Project | str, collection: str, index: int, tag: str, author: str = "alice"
    ) -> None:
        with self.lock:
            self._fire(
                self.state.remove_tag(self._project(project), collection, index, tag, author)
            )

    def _project(self, project: Project | str) -> Project:
        """A project, or one named ``entity/name``."""
        if isinstance(project, Project):
            return project
        entity, _, name = project.partition("/")
        found = self.state.project(entity, name)
        if found is None:
            raise KeyError(f"no project {project}")
        return found

    # -- GraphQL ----------------------------------------------------------------------------
    def answer(self, auth: str | None, body: bytes) -> tuple[int, Any]:
        """The status and body for one POST /graphql (with ``hooks_before_answer``, after
        the webhooks the request fired are answered)."""
        answer = self._answer(auth, body)
        if self.hooks_before_answer:
            self.sender.flush()
        return answer

    def _answer(self, auth: str | None, body: bytes) -> tuple[int, Any]:
        with self.lock:
            if self.fail_next:
                return self.fail_next.popleft()
            expected = "Basic " + base64.b64encode(f"api:{self.api_key}".encode()).decode()
            if auth != expected:
                echoed = f" (got {auth})" if self.state.echo_key else ""
                return 401, {"errors": [{"message": f"user is not logged in{echoed}"}]}
            request = json.loads(body)
            name = request.get("operationName") or _operation_name(request.get("query", ""))
            self.state.operations.append(name)
            if name in self.answers:
                answer = self.answers[name]
                scripted: tuple[int, Any] = answer(request) if callable(answer) else answer
                return scripted
            result = graphql_sync(
                self.schema,
                request["query"],
                root_value=self.graph.root(),
                variable_values=request.get("variables"),
                operation_name=request.get("operationName") or None,
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


def _operation_name(query: str) -> str:
    """The name of a document's first operation (the SDK's wandb-core sends no
    ``operationName``), or "" when it has none or does not parse."""
    try:
        document = parse(query)
    except GraphQLError:
        return ""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            return definition.name.value if definition.name else ""
    return ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up is no error of the stand-in's; the default handler
        # prints a traceback, and fails when the test's stderr is gone.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


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
