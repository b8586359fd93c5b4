"""The stand-in's webhooks: which automations a registry change fires, the body and
headers W&B sends, and a sender thread that posts them one at a time, in order.

A change fires every enabled GENERIC_WEBHOOK trigger whose scope covers its collection
(the collection itself, its project, or the project's entity), whose event type is the
change's and whose filter (W&B's ``$or``/``$and`` with ``$eq``, ``$ne``, ``$in``,
``$nin``, ``$regex`` on ``alias`` and ``tag``) matches. The body is the trigger's
payload template with each ``${var}`` replaced by its value escaped for a JSON string
(unknown variables become empty). It is signed as W&B signs: ``X-Wandb-Signature`` is
the base64 HMAC-SHA256 of the body keyed with the team secret the integration names, and
``Authorization: Bearer`` carries the access token's secret when there is one. W&B sends
each webhook once: an error or a refusal is recorded, never retried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.bridge.wandb.standin_state import Change, HookRecord, State, Trigger

_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class Outgoing:
    """One webhook to send, and its record in ``State.webhooks_sent``."""

    url: str
    body: bytes
    headers: dict[str, str]
    record: HookRecord


def variables(state: State, change: Change) -> dict[str, Any]:
    """The template variables W&B fills in for a change."""
    p, c, v = change.project, change.collection, change.version
    link = change.event == "LINK_MODEL"
    return {
        "event_type": state.link_event_name if link else change.event,
        "event_author": change.author,
        "entity_name": p.entity,
        "project_name": p.name,
        "artifact_collection_name": c.name,
        "artifact_version": f"wandb-artifact://_id/{v['artifact']}",
        "artifact_version_string": (
            f"{p.entity}/{p.name}/{c.name}:{change.alias or 'v' + str(v['index'])}"
        ),
        "alias": change.alias,
        "tag": change.tag,
        **{f"artifact_metadata.{k}": value for k, value in v["metadata"].items()},
    }


def render(template: str, values: dict[str, Any]) -> str:
    """``${var}`` -> its value escaped for a JSON string; unknown or blank -> empty."""

    def one(match: re.Match[str]) -> str:
        value = values.get(match.group(1).strip())
        if value is None or value == "":
            return ""
        text = value if isinstance(value, str) else json.dumps(value)
        return json.dumps(text)[1:-1]

    return _VARIABLE.sub(one, template)


def matches(event_filter: Any, values: dict[str, Any]) -> bool:
    """Whether W&B's MongoDB-like filter holds for these variables (empty: always)."""
    if not isinstance(event_filter, dict):
        return False
    for key, operand in event_filter.items():
        if key == "$or":
            if operand and not any(matches(f, values) for f in operand):
                return False
        elif key == "$and":
            if not all(matches(f, values) for f in operand):
                return False
        elif not _holds(values.get(key, ""), operand):
            return False
    return True


def _holds(value: str, condition: Any) -> bool:
    if not isinstance(condition, dict):
        return bool(value == condition)
    return all(_op(op, value, operand) for op, operand in condition.items())


def _op(op: str, value: str, operand: Any) -> bool:
    if op == "$eq":
        return bool(value == operand)
    if op == "$ne":
        return bool(value != operand)
    if op == "$in":
        return value in operand
    if op == "$nin":
        return value not in operand
    if op == "$regex":
        return re.search(operand, value) is not None  # unanchored, as MongoDB's
    return False  # an operator the stand-in does not know matches nothing


def fired(state: State, change: Change) -> list[Outgoing]:
    """The webhooks one change sends, in the order the triggers were made."""
    values = variables(state, change)
    out = []
    for t in state.triggers.values():
        if not _covers(state, t, change) or t.event != change.event:
            continue
        if not matches(json.loads(t.filter).get("filter", {}), values):
            continue
        hook = state.webhooks[t.integration_id]
        body = render(t.payload or "", values).encode()
        secrets = state.secrets.get(hook.entity, {})
        headers = {"Content-Type": "application/json"}
        if hook.secret_ref and hook.secret_ref in secrets:
            digest = hmac.new(secrets[hook.secret_ref].encode(), body, hashlib.sha256).digest()
            headers["X-Wandb-Signature"] = base64.b64encode(digest).decode()
        if hook.token_ref and hook.token_ref in secrets:
            headers["Authorization"] = f"Bearer {secrets[hook.token_ref]}"
        record = HookRecord(t.name, hook.url, body.decode(), headers, "queued")
        out.append(Outgoing(hook.url, body, headers, record))
    return out


def _covers(state: State, t: Trigger, change: Change) -> bool:
    if not t.enabled or t.action != "GENERIC_WEBHOOK":
        return False
    if t.scope_type == "ARTIFACT_COLLECTION":
        return t.scope_id == change.collection.id
    if t.scope_type == "PROJECT":
        return t.scope_id == change.project.id
    entity = state.entities.get(change.project.entity)
    return t.scope_type == "ENTITY" and entity is not None and t.scope_id == entity["id"]


class Sender:
    """Posts webhooks on one background thread, in the order they were fired.

    ``drop_next(n)`` loses the next n (recorded as dropped), ``hold()`` keeps them queued
    until ``release()``, ``deliver_to(base)`` sends to ``base`` instead of the
    integration URL's scheme, host and port (W&B refuses loopback URLs), and
    ``flush(timeout)`` waits until nothing sendable is left.
    """

    def __init__(self, state: State) -> None:
        self.state = state
        self.base: str | None = None
        self._queue: deque[Outgoing] = deque()
        self._held = False
        self._drop = 0
        self._busy = False
        self._stopped = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join()

    def fire(self, outgoing: list[Outgoing]) -> None:
        with self._cond:
            for o in outgoing:
                self.state.webhooks_sent.append(o.record)
                if self._drop:
                    self._drop -= 1
                    o.record.outcome = "dropped"
                    continue
                o.record.outcome = "held" if self._held else "queued"
                self._queue.append(o)
            self._cond.notify_all()

    def drop_next(self, n: int) -> None:
        with self._cond:
            self._drop += n

    def hold(self) -> None:
        with self._cond:
            self._held = True

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every webhook not held is sent; TimeoutError when it takes longer."""
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._stopped or (not self._busy and (self._held or not self._queue)),
                timeout,
            )
        if not done:
            raise TimeoutError(f"webhooks still queued after {timeout}s")

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopped or (self._queue and not self._held))
                if self._stopped:
                    return
                o = self._queue.popleft()
                self._busy = True
            self._send(o)
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _send(self, o: Outgoing) -> None:
        url = o.url
        if self.base:
            parts = urlsplit(o.url)
            url = self.base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        o.record.url = url
        try:
            answer = requests.post(url, data=o.body, headers=o.headers, timeout=10)
        except requests.RequestException:
            o.record.outcome = "failed"
            return
        o.record.outcome, o.record.status = "sent", answer.status_code
        o.record.answer = answer.text
