"""What a notification says, for each kind of receiver. Pure functions.

The body is built when the outcome happens and stored as the notification's payload, so
a retry or a replay sends exactly what was first meant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from bridge.config.model import Notifier
from bridge.routing.limits import json_text
from bridge.store.models import NOTIFY, NewDelivery

TITLES = {
    "delivered": "Dispatched to GitHub",
    "delivery_dead": "Delivery to GitHub failed",
    "run_succeeded": "Workflow run succeeded",
    "run_failed": "Workflow run failed",
    "no_run_started": "No workflow run started",
}
_MAX_FIELD = 500


@dataclass(frozen=True)
class Outcome:
    """One outcome of one delivery, with what a person needs to act on it."""

    outcome: str  # a key of TITLES
    event_id: str
    repository: str
    route: str
    model: str | None = None  # the W&B artifact version, entity/project/name:alias
    event_type: str | None = None  # W&B's event type
    author: str | None = None
    workflow: str | None = None
    run_url: str | None = None
    conclusion: str | None = None
    error: str | None = None  # GitHub's error, for a dead delivery


def notices(
    notifiers: Iterable[Notifier], outcome: Outcome, new_id: Callable[[], str]
) -> list[NewDelivery]:
    """A notification delivery for each notifier that asked for this outcome."""
    return [
        NewDelivery(
            id=new_id(),
            route=outcome.route,
            repository=outcome.repository,
            event_type=outcome.outcome,
            client_payload=json_text(body(n.kind, outcome)),
            kind=NOTIFY,
            notifier=n.name,
        )
        for n in notifiers
        if outcome.outcome in n.outcomes
    ]


def body(kind: str, o: Outcome) -> dict[str, Any]:
    if kind == "slack":
        return slack(o)
    if kind == "teams":
        return teams(o)
    return {k: v for k, v in asdict(o).items() if v is not None}


def facts(o: Outcome) -> list[tuple[str, str]]:
    """The lines every message shows, in order, each cut to a readable length."""
    rows = [
        ("Model", o.model),
        ("W&B event", f"{o.event_type or '?'} by {o.author}" if o.author else o.event_type),
        ("Repository", o.repository),
        ("Workflow", o.workflow),
        ("Conclusion", o.conclusion),
        ("Error", o.error),
        ("Bridge event", o.event_id),
    ]
    return [(k, v[:_MAX_FIELD]) for k, v in rows if v]


def _summary(o: Outcome) -> str:
    return f"{TITLES[o.outcome]}: {o.model or o.event_id} → {o.repository}"


def _slack_text(text: str) -> str:
    # Slack's mrkdwn: these three are control characters, everything else is literal
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(o: Outcome) -> dict[str, Any]:
    """A Slack incoming-webhook message in Block Kit, with ``text`` as its fallback."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": TITLES[o.outcome]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{name}*\n{_slack_text(value)}"}
                for name, value in facts(o)[:10]  # Slack shows at most 10 fields
            ],
        },
    ]
    if o.run_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the workflow run"},
                        "url": o.run_url,
                    }
                ],
            }
        )
    return {"text": _slack_text(_summary(o)), "blocks": blocks}


def teams(o: Outcome) -> dict[str, Any]:
    """A Microsoft Teams incoming-webhook message: an Adaptive Card."""
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": TITLES[o.outcome],
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts(o)]},
        ],
    }
    if o.run_url:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open the workflow run", "url": o.run_url}
        ]
    return {
        "type": "message",
        "summary": _summary(o),
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }
