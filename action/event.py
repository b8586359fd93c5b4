"""The triggering event: which artifact it names, and which W&B event it reports.

A ``repository_dispatch`` event file holds ``action`` (the dispatch's event type) and
``client_payload`` (the W&B payload template as rendered). The ``payload`` input replaces
the event's ``client_payload``, for workflows started another way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from action.errors import InputError

# W&B's backend says LINK_MODEL where its docs say LINK_ARTIFACT: one event, two names.
_SAME_EVENT = {"LINK_MODEL": "LINK_ARTIFACT"}


@dataclass(frozen=True)
class Trigger:
    """What the action needs from the event and the inputs."""

    payload: dict[str, Any]
    artifact: str
    event_type: str
    event_author: str


def canonical_event_type(value: str) -> str:
    """Upper-case, with W&B's two names for a link event folded into one."""
    upper = value.strip().upper()
    return _SAME_EVENT.get(upper, upper)


def event_type_matches(event_type: str, wanted: Iterable[str]) -> bool:
    """True when ``event_type`` is one of ``wanted`` (case-insensitive, links folded)."""
    mine = canonical_event_type(event_type)
    return any(canonical_event_type(w) == mine for w in wanted)


def load_event(path: str) -> dict[str, Any]:
    """The event JSON the runner wrote, or ``{}`` when there is none."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        raise InputError(
            f"cannot read the event file GITHUB_EVENT_PATH ({path}): {type(exc).__name__}.",
            fix="Run the action as a workflow step, or pass the `payload` input.",
        ) from exc
    return data if isinstance(data, dict) else {}


def parse_payload(text: str) -> dict[str, Any]:
    """The ``payload`` input: a JSON object (a GitHub-shaped body is unwrapped)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        why = f"{exc.msg} at position {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(
            f"input 'payload' is not valid JSON ({why or 'nested too deeply'}).",
            fix="Pass a JSON object, e.g. payload: ${{ toJSON(github.event.client_payload) }}.",
        ) from exc
    if not isinstance(data, dict):
        raise InputError(
            "input 'payload' must be a JSON object.",
            fix='Pass an object such as {"artifact_version_string": "team/proj/model:v3"}.',
        )
    return data


def read_trigger(event: Mapping[str, Any], payload_input: str, artifact_input: str) -> Trigger:
    """Combine the event and the inputs into what the action will fetch."""
    outer_type = event.get("action")
    payload: Any = event.get("client_payload")
    if payload_input:
        payload = parse_payload(payload_input)
        inner = payload.get("client_payload")
        if isinstance(inner, dict) and "event_type" in payload:
            outer_type, payload = payload["event_type"], inner
    if not isinstance(payload, dict):
        payload = {}
    artifact = artifact_input or _text(payload.get("artifact_version_string"))
    artifact = artifact or _text(payload.get("artifact_version"))
    event_type = _text(payload.get("event_type")) or _text(outer_type)
    return Trigger(
        payload=payload,
        artifact=artifact.strip(),
        event_type=event_type.strip(),
        event_author=_text(payload.get("event_author")).strip(),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
