"""What a repository dispatch may contain (GitHub's limits) and how one is built.

GitHub refuses an ``event_type`` outside 1-100 characters, a ``client_payload`` that is
not an object or has more than 10 top-level keys, and a body of 64 KB or more (bytes or
characters is unconfirmed, so we stay under 65,000 bytes). Checking here means a bad
dispatch is refused at intake, before anything is stored, instead of going dead later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.errors import RequestRefused

MAX_EVENT_TYPE = 100
MAX_PAYLOAD_KEYS = 10
MAX_BODY_BYTES = 65_000
EVENT_ID_KEY = "bridge_event_id"

# One encoder for every dispatch (json.dumps with options builds a new one per call).
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class PlannedDispatch:
    """One dispatch to send: to ``repository``, produced by ``route`` (or passthrough)."""

    repository: str
    event_type: str
    client_payload: Mapping[str, Any]
    route: str
    payload_json: str  # ``client_payload`` as stored and sent (encode_payload)


def encode_payload(client_payload: Mapping[str, Any]) -> str:
    """``client_payload`` as compact JSON text, keys in their order."""
    return _JSON.encode(client_payload)


def body_of(event_type: str, payload_json: str) -> bytes:
    """The exact JSON body sent to GitHub (compact, UTF-8), from the encoded payload."""
    return f'{{"event_type":{_JSON.encode(event_type)},"client_payload":{payload_json}}}'.encode()


def encode_body(event_type: str, client_payload: Mapping[str, Any]) -> bytes:
    """The exact JSON body sent to GitHub (compact, UTF-8)."""
    return body_of(event_type, encode_payload(client_payload))


def check_dispatch(event_type: Any, client_payload: Any, where: str) -> str:
    """Raise 422 ``invalid_dispatch`` naming the limit that ``where`` breaks; else the
    payload's JSON (:func:`encode_payload`), encoded once for the check and the store."""

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
    payload_json = encode_payload(client_payload)
    size = len(body_of(event_type, payload_json))
    if size >= MAX_BODY_BYTES:
        raise refuse(
            f"the dispatch would be {size} bytes; GitHub takes less than 64 KB "
            f"(keep it under {MAX_BODY_BYTES} bytes)"
        )
    return payload_json


def with_event_id(
    event_type: str, client_payload: Mapping[str, Any], event_id: str
) -> tuple[dict[str, Any], str]:
    """Add the bridge's event id, so a workflow can recognise a repeat, when there is room.

    Returns the payload and its JSON. A payload that already uses all 10 keys, or that
    the id would push over the size limit, is sent as it is: the caller's data wins over
    our bookkeeping.
    """
    payload = dict(client_payload)
    if EVENT_ID_KEY in payload or len(payload) >= MAX_PAYLOAD_KEYS:
        return payload, encode_payload(payload)
    payload[EVENT_ID_KEY] = event_id
    payload_json = encode_payload(payload)
    if len(body_of(event_type, payload_json)) >= MAX_BODY_BYTES:
        return dict(client_payload), encode_payload(client_payload)
    return payload, payload_json
