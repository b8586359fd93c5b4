"""What the console's templates show, from store records: pure functions, no Flask.

Outcome words, times in UTC, the filters to and from a query string, the config as
text with every secret as ``***``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from bridge.config.model import Config
from bridge.config.secrets import Redactor, Secret
from bridge.errors import RequestRefused
from bridge.ops.documents import KINDS
from bridge.states import (
    GITHUB_KINDS,
    SUCCESS_CONCLUSIONS,
    DeliveryKind,
    DeliveryState,
    Origin,
    RunFilter,
    RunState,
    WatchState,
)
from bridge.store.models import Delivery, Event, EventFilter, Run, target_name

FILTER_NAMES = ("state", "run", "repository", "route", "q")
MAX_TEXT_FILTER = 300  # characters of a repository, route or search
_EVENT_ID = re.compile(r"evt_[A-Za-z0-9_-]{1,100}")
# What a person reads for each ``run`` filter, in the order the form offers them.
RUN_WORDS = {
    RunFilter.SUCCEEDED: "success",
    RunFilter.FAILED: "failure",
    RunFilter.RUNNING: "running",
    RunFilter.NO_RUN: "no run started",
    RunFilter.UNKNOWN: "unknown",
}


_KIND_WORDS: dict[str, str] = {
    DeliveryKind.DISPATCH: "repository_dispatch",
    DeliveryKind.WORKFLOW: "workflow_dispatch",
    DeliveryKind.NOTIFY: "Notification",
    DeliveryKind.WANDB: "Write-back",
}


def utc(t: float | None) -> str:
    """``2026-12-05 19:07:39 UTC``; empty for no time."""
    return "" if t is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def iso(t: float | None) -> str:
    """The machine-readable form for ``<time datetime=...>``."""
    return "" if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def seconds(wait: float | None) -> str:
    """A wait as a person reads it: ``250 ms``, ``45 s``, ``12 min``, ``2.5 h``."""
    if wait is None:
        return ""
    if wait < 1:
        return f"{wait * 1000:.0f} ms"
    if wait < 120:
        return f"{wait:.0f} s"
    if wait < 7200:
        return f"{wait / 60:.0f} min"
    return f"{wait / 3600:.1f} h"


def run_outcome(run: Run) -> str:
    """One run's outcome in words."""
    if run.state == RunState.FOLLOWING:
        return "running"
    if run.state == RunState.CONCLUDED:
        return "success" if run.conclusion in SUCCESS_CONCLUSIONS else "failure"
    return "unknown"


def delivery_outcome(d: Delivery) -> str | None:
    """What became of the runs a dispatch started, in words; None when nobody followed
    them (not delivered yet, a notification, following turned off)."""
    if d.kind not in GITHUB_KINDS:
        return None
    if d.runs:
        words = {run_outcome(r) for r in d.runs}
        for word in ("failure", "running", "unknown", "success"):  # the worst one shows
            if word in words:
                return word
    if d.watch == WatchState.NO_RUN:
        return "no run started"
    if d.watch == WatchState.SEARCHING:
        return "running"  # dispatched; its run is being looked for
    if d.watch is not None:
        return "unknown"
    return None


def event_outcome(e: Event) -> str:
    """What became of the runs an event's dispatches started, in words (each outcome
    once, the worst first); empty while nothing is known."""
    found = [o for d in e.deliveries if (o := delivery_outcome(d)) is not None]
    order = ("failure", "unknown", "no run started", "running", "success")
    return ", ".join(o for o in order if o in found)


def origin_words(origin: str) -> str:
    return "found by catch-up of the W&B registry" if origin == Origin.CATCH_UP else "a webhook"


def kind_words(d: Delivery) -> str:
    """A delivery's kind as a heading says it."""
    return _KIND_WORDS.get(d.kind, d.kind)


def target(d: Delivery) -> str:
    return target_name(d.kind, d.repository, d.workflow, d.ref, d.notifier)


def kind(d: Delivery) -> str:
    return KINDS.get(d.kind, d.kind)


def pretty_json(text: str) -> str:
    """JSON text indented for reading; other text as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def body_text(body: bytes) -> str:
    return pretty_json(body.decode("utf-8", errors="replace"))


def filters_from(args: Mapping[str, str]) -> EventFilter:
    """The filter a query string (or a form's hidden copies) asks for; empty is "any".
    Refuses a value the form does not offer."""
    state = args.get("state") or None
    if state is not None and state not in tuple(DeliveryState):
        states = ", ".join(DeliveryState)
        raise RequestRefused(400, "invalid_parameter", f"state must be one of {states}")
    run = args.get("run") or None
    if run is not None and run not in RUN_WORDS:
        raise RequestRefused(400, "invalid_parameter", f"run must be one of {', '.join(RUN_WORDS)}")
    text = {}
    for name in ("repository", "route", "q"):
        value = (args.get(name) or "").strip()
        if len(value) > MAX_TEXT_FILTER:
            raise RequestRefused(
                400, "invalid_parameter", f"{name} is longer than {MAX_TEXT_FILTER} characters"
            )
        if not value.isprintable():  # no name or id has control characters (nor NUL,
            # which PostgreSQL refuses in a text parameter)
            raise RequestRefused(400, "invalid_parameter", f"{name} has control characters")
        text[name] = value or None
    return EventFilter(state, run, text["repository"], text["route"], text["q"])


def filter_values(f: EventFilter) -> dict[str, str]:
    """The filter's fields that are set, by their query-string names."""
    values = {name: getattr(f, name) for name in FILTER_NAMES}
    return {k: v for k, v in values.items() if v}


def query(f: EventFilter, **extra: str | None) -> str:
    """``?state=dead&before=evt_...``: the filter, and ``extra`` when set."""
    values = {**filter_values(f), **{k: v for k, v in extra.items() if v}}
    return "?" + urlencode(values, safe=":/") if values else ""


def event_id(text: str | None) -> str | None:
    """``text`` when it has the shape of an event id (a redirect target), else None."""
    return text if text and _EVENT_ID.fullmatch(text) else None


def done_notice(done: str | None) -> str | None:
    """The notice a redirect after an action asks to show: ``replayed:2``."""
    if not done:
        return None
    action, _, count = done.partition(":")
    if action == "replayed" and count.isascii() and count.isdigit():
        n = int(count)
        if n == 0:
            return "Nothing replayed: no dead delivery left there."
        return f"Replayed {n} deliver{'y' if n == 1 else 'ies'}: queued again."
    if action == "signed-out":
        return "Signed out."
    return None


# -- the config as loaded, every secret as *** ------------------------------------------


def config_text(config: Config) -> str:
    """The config as YAML-like text; every secret's value ``***`` (its origin shown),
    and, in case a value turns up where no secret was expected, every known secret value
    replaced too."""
    lines = _lines(config, 0)
    return Redactor(config.secrets())("\n".join(lines))


def _lines(value: Any, depth: int) -> list[str]:
    pad = "  " * depth
    out: list[str] = []
    for key, item in _items(value):
        if _scalar(item):
            out.append(f"{pad}{key}: {_scalar_text(item)}")
        elif not item and item is not None:
            out.append(f"{pad}{key}: {'[]' if isinstance(item, list | tuple) else '{}'}")
        else:
            out.append(f"{pad}{key}:")
            out += _lines(item, depth + 1)
    return out


def _items(value: Any) -> list[tuple[str, Any]]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        found = []
        for f in dataclasses.fields(value):
            if f.name == "key":  # WandbConfig.key: the API key itself (api_key says where)
                continue
            found.append((f.name, getattr(value, f.name)))
        return found
    if isinstance(value, Mapping):
        return [(str(k), v) for k, v in value.items()]
    return [(f"- [{i}]", v) for i, v in enumerate(value)]


def _scalar(value: Any) -> bool:
    if isinstance(value, Secret):
        return True
    if isinstance(value, tuple) and len(value) == 2 and value[0] in ("env", "file", "inline"):
        return True  # wandb.api_key: where the key is
    return not isinstance(value, Mapping | list | tuple) and not dataclasses.is_dataclass(value)


def _scalar_text(value: Any) -> str:
    if isinstance(value, Secret):
        return f"*** (from {value.origin})"
    if isinstance(value, tuple):
        where, name = value
        return "*** (inline)" if where == "inline" else f"*** (from {where}:{name})"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)
