"""What a notification says, for each kind of receiver. Pure functions.

The body is built when the outcome happens and stored as the notification's payload, so
a retry or a replay sends exactly what was first meant. Every value from W&B or GitHub
is escaped and cut for its receiver (``bridge.notify.text``), and a button opens only a
page on GitHub's web host (``bridge.notify.links``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from bridge.config.model import Notifier
from bridge.notify import links, text
from bridge.routing.limits import json_text
from bridge.states import DeliveryKind
from bridge.store.models import NewDelivery

TITLES = {
    "delivered": "Dispatched to GitHub",
    "delivery_dead": "Delivery to GitHub failed",
    "run_succeeded": "Workflow run succeeded",
    "run_failed": "Workflow run failed",
    "no_run_started": "No workflow run started",
}
FIELD_CHARS = 500  # a fact's value after escaping; Slack allows 2,000 a field
SUMMARY_CHARS = 200  # each name in the one-line summary
WEBHOOK_CHARS = 1000  # each text value of the webhook's JSON
SLACK_FIELDS = 10  # a section shows at most 10 fields: five facts, name and value


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
    run_id: int | None = None
    run_url: str | None = None  # GitHub's html_url as GitHub gave it: checked before use
    conclusion: str | None = None
    error: str | None = None  # GitHub's error, for a dead delivery
    web: str = ""  # GitHub's web origin for the configured api_url; no links without it


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
            kind=DeliveryKind.NOTIFY,
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
    return webhook(o)


def facts(o: Outcome) -> list[tuple[str, str]]:
    """The lines every message shows, in order, as given (each receiver escapes them)."""
    rows = [
        ("Model", o.model),
        ("W&B event", f"{o.event_type or '?'} by {o.author}" if o.author else o.event_type),
        ("Repository", o.repository),
        ("Workflow", o.workflow),
        ("Run", None if o.run_id is None else str(o.run_id)),
        ("Conclusion", o.conclusion),
        ("Error", o.error),
        ("Bridge event", o.event_id),
    ]
    return [(k, v) for k, v in rows if v and text.plain(v, FIELD_CHARS).strip()]


def button(o: Outcome) -> tuple[str, str] | None:
    """The one link a message offers: the run, else the repository's Actions tab."""
    run = links.run_link(o.web, o.run_url)
    if run:
        return "Open the workflow run", run
    actions = links.actions_link(o.web, o.repository)
    return ("Open the repository's Actions", actions) if actions else None


def webhook(o: Outcome) -> dict[str, Any]:
    """The facts as one JSON object, unknown fields left out, text bounded."""
    fields = asdict(o)
    del fields["web"]
    fields["run_url"] = links.run_link(o.web, o.run_url)
    return {
        k: text.data(v, WEBHOOK_CHARS) if isinstance(v, str) else v
        for k, v in fields.items()
        if v is not None
    }


def slack(o: Outcome) -> dict[str, Any]:
    """A Slack incoming-webhook message in Block Kit, with ``text`` as its fallback: each
    fact a bold name beside its value, the value a ``plain_text`` that Slack never
    formats."""
    fields: list[dict[str, Any]] = []
    for name, value in facts(o):
        fields.append({"type": "mrkdwn", "text": f"*{name}*"})
        fields.append(
            {"type": "plain_text", "text": text.slack(value, FIELD_CHARS), "emoji": False}
        )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": TITLES[o.outcome]}},
        *(
            {"type": "section", "fields": fields[i : i + SLACK_FIELDS]}
            for i in range(0, len(fields), SLACK_FIELDS)
        ),
    ]
    link = button(o)
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": link[0]},
                        "url": link[1],
                    }
                ],
            }
        )
    summary = (
        f"{TITLES[o.outcome]}: {text.slack(o.model or o.event_id, SUMMARY_CHARS)}"
        f" → {text.slack(o.repository, SUMMARY_CHARS)}"
    )
    return {"text": summary, "mrkdwn": False, "blocks": blocks}


def teams(o: Outcome) -> dict[str, Any]:
    """A Microsoft Teams incoming-webhook message: an Adaptive Card, whose fact values
    are markdown, so escaped for it."""
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
            {
                "type": "FactSet",
                "facts": [
                    {"title": name, "value": text.teams(value, FIELD_CHARS)}
                    for name, value in facts(o)
                ],
            },
        ],
    }
    link = button(o)
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": link[0], "url": link[1]}]
    summary = (
        f"{TITLES[o.outcome]}: {text.plain(o.model or o.event_id, SUMMARY_CHARS)}"
        f" → {text.plain(o.repository, SUMMARY_CHARS)}"
    )
    return {
        "type": "message",
        "summary": summary,
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }
