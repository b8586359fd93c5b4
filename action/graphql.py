"""A minimal GraphQL client for W&B's API: ``POST {base}/graphql`` with Basic auth.

An answer with an ``errors`` list is a failure even at HTTP 200. "Cannot query field"
errors (the server's schema is older than the query) become
:class:`~action.errors.UnsupportedFieldError` so that callers can fall back.
"""

from __future__ import annotations

import re
from typing import Any

import requests

from action.errors import ApiError, AuthenticationError, UnsupportedFieldError
from action.http import RetryPolicy, Sleep, request_once, retrying

_MISSING_FIELD = re.compile(r"Cannot query field \W?(\w+)\W? on type \W?(\w+)")
KEY_FIX = (
    "Check the `api-key` input (or the WANDB_API_KEY secret): it must be a current W&B "
    "API key of a user who can read the artifact, for the W&B host in `base-url`."
)


class GraphQLClient:
    """Sends queries to one W&B host with one API key."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        api_key: str,
        *,
        sleep: Sleep,
        policy: RetryPolicy,
    ) -> None:
        self.base_url = base_url
        self._session = session
        self._auth = ("api", api_key)
        self._sleep = sleep
        self._policy = policy

    def execute(self, operation: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Run one operation and return its ``data``; raise on any error."""
        url = f"{self.base_url}/graphql"
        payload = {"operationName": operation, "query": query, "variables": variables}
        response = retrying(
            lambda: request_once(self._session, "POST", url, json=payload, auth=self._auth),
            url=url,
            what=f"W&B API request {operation}",
            error=ApiError,
            fix=f"W&B at {self.base_url} is unavailable; re-run the job later.",
            sleep=self._sleep,
            policy=self._policy,
        )
        with response:
            status = response.status_code
            if status == 401:
                raise AuthenticationError(
                    f"W&B at {self.base_url} rejected the API key (HTTP 401).", fix=KEY_FIX
                )
            try:
                body = response.json()
            except (ValueError, RecursionError):
                body = None
        if status == 403:
            raise AuthenticationError(
                f"W&B at {self.base_url} refused {operation} (HTTP 403): the key's user "
                "lacks access.",
                fix=KEY_FIX,
            )
        if not isinstance(body, dict):
            raise ApiError(
                f"W&B at {self.base_url} answered {operation} with HTTP {status} and no "
                "GraphQL response.",
                fix="Check `base-url`: it must be the W&B host (e.g. https://api.wandb.ai).",
            )
        errors = body.get("errors")
        if errors:
            raise _graphql_error(operation, errors)
        if status != 200 or not isinstance(body.get("data"), dict):
            raise ApiError(
                f"W&B answered {operation} with HTTP {status} and no data.",
                fix="Re-run the job; if it persists, check the W&B server's status.",
            )
        data: dict[str, Any] = body["data"]
        return data


def _graphql_error(operation: str, errors: Any) -> ApiError:
    messages = [
        e["message"] if isinstance(e, dict) and isinstance(e.get("message"), str) else "?"
        for e in (errors if isinstance(errors, list) else [errors])
    ]
    for message in messages:
        found = _MISSING_FIELD.search(message)
        if found:
            return UnsupportedFieldError(
                f"W&B does not know the field {found.group(1)} on {found.group(2)}.",
                field=found.group(1),
                fix="Upgrade W&B Server, or report the version to the action's maintainers.",
            )
    text = "; ".join(m[:300] for m in messages[:3])
    return ApiError(
        f"W&B answered {operation} with an error: {text}",
        fix="Check the artifact reference and the key's permissions.",
    )
