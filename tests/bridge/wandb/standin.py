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
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from graphql import graphql_sync

from tests.bridge.wandb.resolvers import Graph, Refused
from tests.bridge.wandb.schema import make_schema
from tests.bridge.wandb.standin_state import State


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
        # operationName -> (status, body), or a function of the request that returns one
        self.answers: dict[str, Any] = {}
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
                answer = self.answers[request["operationName"]]
                return answer(request) if callable(answer) else answer
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
