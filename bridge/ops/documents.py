"""Events and deliveries as JSON documents, for the admin API and ``events show``."""

from __future__ import annotations

import json
import time
from typing import Any

from bridge.states import GITHUB_KINDS, DeliveryKind, DeliveryState, RunState
from bridge.store.models import Attempt, Delivery, Event, Run, target_name

# How documents name each kind of delivery, and the key of the payload it sends.
KINDS: dict[str, str] = {
    DeliveryKind.DISPATCH: "repository_dispatch",
    DeliveryKind.WORKFLOW: "workflow_dispatch",
    DeliveryKind.NOTIFY: "notification",
    DeliveryKind.WANDB: "wandb_write_back",
}
PAYLOAD_KEYS: dict[str, str] = {
    DeliveryKind.WORKFLOW: "inputs",
    DeliveryKind.NOTIFY: "message",
    DeliveryKind.WANDB: "write_back",
}


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def attempt_json(a: Attempt) -> dict[str, Any]:
    return {
        "attempt": a.attempt,
        "started_at": iso(a.started_at),
        "finished_at": iso(a.finished_at),
        "status": a.status,
        "outcome": a.outcome,
        "response": a.response,
        "wait_seconds": a.wait,
    }


def run_json(r: Run) -> dict[str, Any]:
    return {
        "id": r.run_id,
        "url": r.html_url,
        "workflow": r.workflow,
        "status": r.status,
        "conclusion": r.conclusion,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
        "following": r.state == RunState.FOLLOWING,
        "gave_up": r.state == RunState.UNKNOWN,
    }


def delivery_json(d: Delivery, detail: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": d.id,
        "kind": KINDS.get(d.kind, d.kind),
        "target": target_name(d.kind, d.repository, d.workflow, d.ref, d.notifier),
        "route": d.route,
        "event_type": d.event_type,
        "state": d.state,
        "attempts": d.attempts,
        "next_attempt_at": iso(d.due_at) if d.state == DeliveryState.QUEUED else None,
        "created_at": iso(d.created_at),
        "finished_at": iso(d.finished_at),
        "last_status": d.last_status,
        "last_error": d.last_error,
    }
    if d.kind in GITHUB_KINDS:
        out["runs_search"] = d.watch  # searching, done, no_run (None: not followed)
        out["runs"] = [run_json(r) for r in d.runs]
    if detail:
        key = PAYLOAD_KEYS.get(d.kind, "client_payload")
        out[key] = json.loads(d.client_payload)
        out["history"] = [attempt_json(a) for a in d.history]
    return out


def event_json(e: Event, detail: bool) -> dict[str, Any]:
    """``detail`` adds the raw body, the payloads sent and every attempt."""
    out: dict[str, Any] = {
        "id": e.id,
        "source": e.source,
        "endpoint": e.endpoint,
        "received_at": iso(e.received_at),
        "origin": e.origin,  # webhook, or catch_up: the bridge found it in the registry
        "deliveries": [delivery_json(d, detail) for d in e.deliveries],
    }
    if detail:
        out["body"] = e.body.decode("utf-8", errors="replace")
    return out
