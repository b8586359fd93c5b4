"""How ``list``, ``plan`` and ``render`` look: lines for people, JSON for tools. Pure.

Everything that came from W&B (names, URLs, descriptions) goes through ``printable``:
an automation's name is whatever someone typed in W&B's UI, control characters too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bridge.config.model import WandbConfig
from bridge.routing.limits import json_text
from bridge.text import printable
from bridge.wandb.filters import when, words
from bridge.wandb.model import Automation, Integration
from bridge.wandb.plan import CHANGE, CREATE, DELETE, UNCHANGED, Plan, is_managed
from bridge.wandb.render import Verdict

_SIGNS = {CREATE: "+", CHANGE: "~", DELETE: "-", UNCHANGED: "="}
_SECRET = {True: "exists", False: "missing", None: "cannot check (W&B does not list them)"}


def trigger_words(a: Automation) -> str:
    """``ADD_ARTIFACT_ALIAS on collection churn, when alias is production``"""
    scope = a.scope.words() if a.scope else "an unknown scope"
    return printable(f"{a.event} on {scope}{when(a.filter)}")


def _posts_here(url: str, wb: WandbConfig) -> bool:
    return url.startswith(wb.bridge_url + "/")


def listing_json(
    wb: WandbConfig, integrations: Iterable[Integration], automations: Iterable[Automation]
) -> dict[str, Any]:
    """``list --json``: W&B's objects as values, with ``this_bridge`` and ``managed``."""
    return {
        "entity": wb.entity,
        "integrations": [
            {"id": i.id, "name": i.name, "url": i.url, "this_bridge": _posts_here(i.url, wb)}
            for i in integrations
        ],
        "automations": [_automation_json(a, wb) for a in automations],
    }


def _automation_json(a: Automation, wb: WandbConfig) -> dict[str, Any]:
    hook = a.integration
    scope = a.scope
    return {
        "id": a.id,
        "name": a.name,
        "description": a.description,
        "enabled": a.enabled,
        "scope": None
        if scope is None
        else {"type": scope.type, "id": scope.id, "name": scope.name},
        "event": a.event,
        "filter": a.filter,
        "filter_words": words(a.filter),
        "action": a.action,
        "integration": None
        if hook is None
        else {"id": hook.id, "name": hook.name, "url": hook.url},
        "payload": a.payload,
        "this_bridge": bool(hook and _posts_here(hook.url, wb)),
        "managed": is_managed(a, wb.integration),
    }


def listing_lines(
    wb: WandbConfig, integrations: list[Integration], automations: list[Automation]
) -> list[str]:
    """``list``: each integration on a line, each automation on three."""
    lines = [f"webhook integrations in {wb.entity} (* posts to this bridge):"]
    for i in integrations:
        mark = "*" if _posts_here(i.url, wb) else " "
        lines.append(f"  {mark} {printable(i.name)} -> {printable(i.url)}")
    lines += ["  (none)"] if not integrations else []
    lines.append(f"automations in {wb.entity} (* posts to this bridge, M managed by this config):")
    for a in automations:
        url = a.integration.url if a.integration else ""
        mark = ("*" if _posts_here(url, wb) else " ") + (
            "M" if is_managed(a, wb.integration) else " "
        )
        target = f"webhook {printable(url)}" if a.integration else printable(a.action)
        lines += [
            f"  {mark} {printable(a.name)}",
            f"       {trigger_words(a)}",
            f"       -> {target}, {'enabled' if a.enabled else 'disabled'}",
        ]
    lines += ["  (none)"] if not automations else []
    return lines


def plan_lines(plan: Plan, wb: WandbConfig, base_url: str) -> list[str]:
    """``plan``: the integration, the secrets, each automation's fate, what W&B cannot do."""
    state = "= unchanged" if plan.integration else "+ create"
    lines = [
        f"W&B entity {wb.entity} at {base_url}",
        f"webhook integration {wb.integration!r} -> {plan.integration_url}: {state}",
    ]
    lines += [f"  team secret {name}: {_SECRET[exists]}" for name, exists in plan.secrets.items()]
    lines.append("automations:")
    for step in plan.steps:
        detail = f" ({', '.join(step.differences)})" if step.differences else ""
        lines.append(f"  {_SIGNS[step.action]} {step.action:<9} {printable(step.name)}{detail}")
        if step.target is not None:
            t = step.target
            lines.append(f"      {t.wanted.event} on {t.scope.words()}{when(t.wanted.filter)}")
            lines += [f"      note: {note}" for note in t.wanted.notes]
    lines += ["  (none)"] if not plan.steps else []
    lines += [f"  ! not in W&B: route {s.route!r}: {s.reason}" for s in plan.skipped]
    counts = ", ".join(f"{plan.count(a)} to {a}" for a in (CREATE, CHANGE, DELETE))
    lines.append(f"plan: {counts}, {plan.count(UNCHANGED)} unchanged")
    if plan.problems:
        lines.append("apply would stop on the problems below (stderr)")
    elif plan.changes_nothing:
        lines.append("W&B already matches the config; apply would send nothing")
    else:
        lines.append("run `wandb-bridge wandb apply` to make these changes")
    return lines


def verdict_lines(verdicts: list[Verdict]) -> list[str]:
    """``render``: what each route does with the body."""
    lines = []
    for v in verdicts:
        d = v.dispatch
        if d is not None and d.kind == "workflow":
            lines += [
                f"  route {v.route!r}: workflow_dispatch of {d.workflow} in {d.repository} "
                f"on {d.ref}",
                f"      inputs: {d.payload_json}",
            ]
        elif d is not None:
            lines += [
                f"  route {v.route!r}: repository_dispatch to {d.repository}",
                f"      event_type: {json_text(d.event_type)}",
                f"      client_payload: {d.payload_json}",
            ]
        elif v.refused is not None:
            lines.append(f"  route {v.route!r}: matches, but the bridge refuses it: {v.refused}")
        else:
            lines.append(f"  route {v.route!r}: no match: {v.why_not}")
    return lines or ["  (no routes: the bridge stores the event and dispatches nothing)"]
