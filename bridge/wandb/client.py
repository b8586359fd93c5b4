"""W&B's GraphQL API over HTTP: one POST per operation, every failure translated here.

``POST {base_url}/graphql`` with HTTP Basic ``api:<API key>``. Whatever goes wrong
(no connection, a refused key, GraphQL ``errors`` even at HTTP 200, a body that is not
W&B's) becomes one :class:`~bridge.errors.WandbError` whose message names the cause and
the fix. The key never appears in a message: W&B's own words are redacted first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import requests

from bridge import http
from bridge.config.secrets import Redactor, Secret
from bridge.errors import OutboundError, WandbError
from bridge.text import printable

MAX_MESSAGE = 300
# One GraphQL answer: a page of automations, versions or files is well under this.
ANSWER_CAP = 16 * 1024 * 1024


class GraphQL:
    """A GraphQL client for one W&B host and API key; ``session`` is injectable for tests."""

    def __init__(
        self,
        base_url: str,
        api_key: Secret,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        secrets: Iterable[Secret] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._session = session or http.new_session(2)
        self._timeout = timeout
        self._redact = Redactor([api_key, *secrets])

    def close(self) -> None:
        self._session.close()

    def execute(
        self, what: str, operation: str, query: str, variables: Mapping[str, Any], fix: str
    ) -> dict[str, Any]:
        """The ``data`` of W&B's answer. ``what`` ("list automations") and ``fix`` (what to
        do when W&B refuses) complete the message of the WandbError raised otherwise."""
        try:
            reply = http.fetch(
                self._session,
                "POST",
                f"{self.base_url}/graphql",
                timeout=self._timeout,
                cap=ANSWER_CAP,
                json={"query": query, "variables": dict(variables), "operationName": operation},
                auth=("api", self._key.value),
            )
        except OutboundError as exc:
            if exc.timed_out:
                raise WandbError(
                    f"W&B at {self.base_url} did not answer within {self._timeout:g} s "
                    f"({what}); try again later, or check wandb.base_url"
                ) from exc
            raise WandbError(
                f"cannot reach W&B at {self.base_url} ({exc.message}, {what}); check "
                "wandb.base_url and this machine's network"
            ) from exc
        if not reply.complete:
            raise WandbError(
                f"W&B's answer is larger than {ANSWER_CAP} bytes ({what}); the bridge does not "
                "read it. Check that wandb.base_url is W&B's API URL",
                reply.status,
            )
        return self._data(reply, what, fix)

    def _data(self, resp: http.Reply, what: str, fix: str) -> dict[str, Any]:
        status = resp.status
        # W&B's rate limit and outages may say when to come back
        wait = (
            http.retry_not_before(resp.headers, time.time())
            if status == 429 or status >= 500
            else None
        )
        if status == 401:
            raise WandbError(
                f"W&B at {self.base_url} refused the API key (401 Unauthorized, {what}); set "
                f"wandb.api_key ({self._key.origin}) to a valid key of a member of the entity",
                status,
            )
        if 300 <= status < 400:
            where = self._clean(resp.headers.get("Location", "elsewhere"))
            raise WandbError(
                f"W&B at {self.base_url} redirects to {where} ({status}, {what}); set "
                "wandb.base_url to W&B's API URL (https://api.wandb.ai for W&B's cloud)",
                status,
            )
        try:
            body = resp.json()
        except ValueError:
            body = None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            message = "; ".join(self._clean(_message(e)) for e in errors[:3])
            reason = f"{status} " if status != 200 else ""
            raise WandbError(
                f"W&B refused to {what} ({reason}{message}); {fix}",
                status,
                graphql=True,
                not_before=wait,
            )
        if status == 429:
            raise WandbError(
                f"W&B is rate-limiting this API key (429, {what}); wait a minute and try again",
                status,
                not_before=wait,
            )
        if status >= 500:
            raise WandbError(
                f"W&B at {self.base_url} failed (HTTP {status}, {what}); try again later",
                status,
                not_before=wait,
            )
        data = body.get("data") if isinstance(body, dict) else None
        if status != 200 or not isinstance(data, dict):
            raise WandbError(
                f"W&B at {self.base_url} gave no GraphQL answer (HTTP {status}, {what}); check "
                "that wandb.base_url is W&B's API URL (https://api.wandb.ai for W&B's cloud)",
                status,
            )
        return data

    def _clean(self, text: str) -> str:
        text = printable(self._redact(text))
        return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _message(error: Any) -> str:
    """A GraphQL error's message, whole: ``_clean`` redacts it, then cuts it."""
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        return str(error["message"])
    return json.dumps(error)
