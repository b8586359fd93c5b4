"""GitHub's limits on a repository dispatch, and the dispatch body built within them.

GitHub refuses an ``event_type`` outside 1-100 characters, a ``client_payload`` that is
not an object or has more than 10 top-level keys, and a body of 64 KB or more. Checking
at intake refuses a bad dispatch before anything is stored, instead of it going dead
later. Builds and checks bodies; sends nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.errors import RequestRefused
from bridge.states import DeliveryKind

MAX_EVENT_TYPE = 100
MAX_PAYLOAD_KEYS = 10
MAX_BODY_BYTES = 65_000  # under 64 KB whether GitHub counts bytes or characters
EVENT_ID_KEY = "bridge_event_id"
# In a managed automation's payload template: the route it was made for (only that one
# takes its webhooks).
ROUTE_KEY = "bridge_route"
# A workflow dispatch: at most 25 inputs, 65,535 characters in all, each a plain value.
MAX_INPUTS = 25
MAX_INPUTS_CHARS = 65_535


@dataclass(frozen=True)
class PlannedDispatch:
    """One dispatch to send: to ``repository``, produced by ``route`` (or passthrough).

    A ``workflow`` one runs ``workflow`` on ``ref`` with ``client_payload`` as its inputs;
    its ``event_type`` is empty."""

    repository: str
    event_type: str
    client_payload: Mapping[str, Any]
    route: str
    payload_json: str  # ``client_payload`` as stored and sent
    kind: str = DeliveryKind.DISPATCH
    workflow: str | None = None
    ref: str | None = None


def json_text(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is: how payloads are stored and sent."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def body_of(event_type: str, payload_json: str) -> bytes:
    """The exact JSON body sent to GitHub (compact, UTF-8), from the encoded payload."""
    return f'{{"event_type":{json_text(event_type)},"client_payload":{payload_json}}}'.encode()


def check_dispatch(event_type: Any, client_payload: Any, where: str) -> None:
    """Raise 422 ``invalid_dispatch`` naming the GitHub limit that ``where`` breaks."""

    def refuse(why: str) -> RequestRefused:
        return RequestRefused(422, "invalid_dispatch", f"{where}: {why}")

    if not isinstance(event_type, str) or not 1 <= len(event_type) <= MAX_EVENT_TYPE:
        raise refuse(f"event_type must be a string of 1 to {MAX_EVENT_TYPE} characters")
    if not isinstance(client_payload, Mapping):
        raise refuse("client_payload must be a JSON object")
    if len(client_payload) > MAX_PAYLOAD_KEYS:
        raise refuse(
            f"client_payload has {len(client_payload)} top-level keys; GitHub allows at most "
            f"{MAX_PAYLOAD_KEYS} (nest the rest under one key)"
        )
    size = len(body_of(event_type, json_text(client_payload)))
    if size >= MAX_BODY_BYTES:
        raise refuse(
            f"the dispatch would be {size} bytes; GitHub takes less than 64 KB "
            f"(keep it under {MAX_BODY_BYTES} bytes)"
        )


def plan(
    repository: str, event_type: Any, client_payload: Any, route: str, event_id: str, where: str
) -> PlannedDispatch:
    """Check a dispatch against GitHub's limits, then add the bridge's event id if it fits.

    The id lets a workflow recognise a repeat. A payload that already has 10 keys, or
    that the id would push over the size limit, is sent without it: the caller's data
    wins over our bookkeeping.
    """
    check_dispatch(event_type, client_payload, where)
    payload = dict(client_payload)
    if EVENT_ID_KEY not in payload and len(payload) < MAX_PAYLOAD_KEYS:
        with_id = {**payload, EVENT_ID_KEY: event_id}
        if len(body_of(event_type, json_text(with_id))) < MAX_BODY_BYTES:
            payload = with_id
    return PlannedDispatch(repository, event_type, payload, route, json_text(payload))


def workflow_inputs_problem(inputs: Mapping[str, Any]) -> str | None:
    """What breaks GitHub's limits on workflow inputs, or None. Templates count as their
    text: a value that depends on the event is checked again once rendered."""
    if len(inputs) > MAX_INPUTS:
        return f"has {len(inputs)} inputs; GitHub takes at most {MAX_INPUTS}"
    for name, value in inputs.items():
        if not isinstance(value, str | int | float | bool) or value is None:
            return f"input {name!r} must be a string, number or boolean, not {type(value).__name__}"
    size = len(json_text(dict(inputs)))
    if size > MAX_INPUTS_CHARS:
        return f"the inputs are {size} characters; GitHub takes at most {MAX_INPUTS_CHARS}"
    return None


def plan_workflow(
    repository: str, workflow: str, ref: Any, inputs: Any, route: str, where: str
) -> PlannedDispatch:
    """Check a rendered workflow dispatch against GitHub's limits (422 if it breaks one)."""
    if not isinstance(ref, str) or not ref.strip() or len(ref) > 255:
        raise RequestRefused(
            422, "invalid_dispatch", f"{where}: ref rendered to {ref!r}, not a branch or tag"
        )
    if not isinstance(inputs, Mapping):
        raise RequestRefused(422, "invalid_dispatch", f"{where}: inputs must be an object")
    problem = workflow_inputs_problem(inputs)
    if problem:
        raise RequestRefused(422, "invalid_dispatch", f"{where}: {problem}")
    payload = dict(inputs)
    return PlannedDispatch(
        repository, "", payload, route, json_text(payload), DeliveryKind.WORKFLOW, workflow, ref
    )
