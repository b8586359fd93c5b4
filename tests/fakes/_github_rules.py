"""What the fake GitHub checks, as plain functions of the request: no state, no clock read.

Messages are GitHub's where GitHub's reference states them; the rest say plainly what the
fake (stricter than GitHub on purpose) expected.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, NoReturn, TypeGuard

from werkzeug.wrappers import Request, Response

DOCS = "https://docs.github.com/rest"
DISPATCH_DOCS = "https://docs.github.com/rest/repos/repos#create-a-repository-dispatch-event"
WORKFLOW_DISPATCH_DOCS = (
    "https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event"
)
RUNS_DOCS = "https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-repository"
RUN_DOCS = "https://docs.github.com/rest/actions/workflow-runs#get-a-workflow-run"
RATE_DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
APP_JWT_DOCS = (
    "https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app"
    "/generating-a-json-web-token-jwt-for-a-github-app"
)

ACCEPT = "application/vnd.github+json"
API_VERSION = "2022-11-28"
MAX_EVENT_TYPE = 100
MAX_PAYLOAD_PROPERTIES = 10
MAX_BODY_BYTES = 65_000  # GitHub says "under 64 KB"; bytes or characters is unconfirmed
MAX_JWT_LIFETIME = 600
MAX_JWT_IAT_SKEW = 60

NO_USER_AGENT = (
    "Request forbidden by administrative rules. Please make sure your request has a User-Agent"
    " header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required)."
    " Check https://developer.github.com for other possible causes."
)
BAD_EXP = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at"
    " which the assertion expires"
)
BAD_IAT = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion"
    " was issued"
)
FAR_EXP = "'Expiration time' claim ('exp') is too far in the future"
UNDECODABLE = "A JSON web token could not be decoded"


def error_body(message: str, documentation_url: str = DOCS, status: int = 0) -> dict[str, str]:
    """GitHub's error shape (recent GitHub adds ``status`` as a string)."""
    body = {"message": message, "documentation_url": documentation_url}
    if status:
        body["status"] = str(status)
    return body


class Reject(Exception):
    """The answer GitHub would give instead of going on."""

    def __init__(
        self,
        status: int,
        message: str,
        documentation_url: str = DOCS,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.documentation_url = documentation_url
        self.headers = dict(headers or {})

    def response(self) -> Response:
        response = json_response(
            self.status, error_body(self.message, self.documentation_url, self.status)
        )
        response.headers.update(self.headers)
        return response


def json_response(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")


def phrase(status: int) -> str:
    """The reason phrase of ``status`` ("Error" for a code HTTP does not name)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def presented_credential(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <t>`` or ``token <t>``, else None."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return None


def check_dispatch_headers(request: Request, documentation_url: str = DISPATCH_DOCS) -> None:
    """User-Agent (403, as GitHub), then the documented Accept, API version, Content-Type (400)."""
    check_read_headers(request, documentation_url)
    if request.mimetype != "application/json":
        got = request.headers.get("Content-Type")
        message = f"The Content-Type header must be 'application/json' (got {got!r})."
        raise Reject(400, message, documentation_url)


def check_read_headers(request: Request, documentation_url: str = RUNS_DOCS) -> None:
    """User-Agent (403, as GitHub), then the documented Accept and API version (400)."""
    if not request.headers.get("User-Agent", "").strip():
        raise Reject(403, NO_USER_AGENT)
    wanted = {"Accept": ACCEPT, "X-GitHub-Api-Version": API_VERSION}
    for name, value in wanted.items():
        got = request.headers.get(name)
        if (got or "").strip() != value:
            raise Reject(
                400,
                f"The {name} header must be {value!r} (got {got!r}): the fake GitHub insists on"
                " the documented request.",
                documentation_url,
            )


def not_accessible(permission: str, documentation_url: str = DOCS) -> Reject:
    """GitHub's 403 for a credential without ``permission`` (e.g. "actions=read")."""
    return Reject(
        403,
        "Resource not accessible by integration",
        documentation_url,
        {"X-Accepted-GitHub-Permissions": permission},
    )


def check_dispatch_body(raw: bytes) -> tuple[str, dict[str, Any]]:
    """Validate a dispatch body; return (event_type, client_payload or {})."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise Reject(400, "Problems parsing JSON", DISPATCH_DOCS) from None
    if not isinstance(body, dict):
        invalid(f"{short(body)} is not an object.")
    for key in body:
        if key not in ("event_type", "client_payload"):
            invalid(f"{json.dumps(key)} is not a permitted key.")
    if "event_type" not in body:
        invalid('"event_type" wasn\'t supplied.')
    event_type = body["event_type"]
    where = "For 'properties/event_type',"
    if not isinstance(event_type, str):
        invalid(f"{where} {short(event_type)} is not a string.")
    if not event_type:
        invalid(f'{where} "" is too short (minimum is 1 characters).')
    if len(event_type) > MAX_EVENT_TYPE:
        invalid(f"{where} {short(event_type)} is too long (maximum is 100 characters).")
    payload = body.get("client_payload", {})
    if not isinstance(payload, dict):
        invalid(f"For 'properties/client_payload', {short(payload)} is not an object.")
    if len(payload) > MAX_PAYLOAD_PROPERTIES:
        message = f"No more than 10 properties are allowed; {len(payload)} were supplied."
        raise Reject(422, message, DISPATCH_DOCS)
    if len(raw) >= MAX_BODY_BYTES:
        raise Reject(422, "client_payload is too large.", DISPATCH_DOCS)
    return event_type, payload


def check_jwt_claims(claims: dict[str, Any], *, app_id: int | None, now: float) -> None:
    """GitHub's checks of an App JWT's claims, against ``now`` (the signature is checked)."""
    exp, iat, iss = claims.get("exp"), claims.get("iat"), claims.get("iss")
    if not _is_number(exp) or exp <= now:
        raise Reject(401, BAD_EXP, APP_JWT_DOCS)
    if not _is_number(iat) or iat > now + MAX_JWT_IAT_SKEW:
        raise Reject(401, BAD_IAT, APP_JWT_DOCS)
    if exp - iat > MAX_JWT_LIFETIME:
        raise Reject(401, FAR_EXP, APP_JWT_DOCS)
    # GitHub takes iss as an int or a numeric string. Another app's id means another app's
    # key, so the signature could not have been verified: same message as a bad signature.
    if isinstance(iss, bool) or not isinstance(iss, int | str) or str(iss) != str(app_id):
        raise Reject(401, UNDECODABLE, APP_JWT_DOCS)


def invalid(detail: str, documentation_url: str = DISPATCH_DOCS) -> NoReturn:
    """GitHub's 422 for a body its schema refuses."""
    raise Reject(422, f"Invalid request.\n\n{detail}", documentation_url)


def short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
