"""What ``apply`` would do: the wanted automations against W&B's. Pure: no I/O.

Only automations this bridge manages are ever changed or deleted: those whose
description starts with the marker (``wanted.MARKER``) *and* whose webhook is this
config's integration (by name), so two bridges sharing a W&B team leave each other's
alone. Anything that stops ``apply`` (a name taken by someone else's automation, an
integration that points elsewhere, a missing team secret) is a problem, listed before
anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bridge.config.model import WandbConfig
from bridge.wandb.model import WEBHOOK_ACTION, Automation, Integration, Skipped, Target
from bridge.wandb.wanted import MARKER

CREATE, CHANGE, DELETE, UNCHANGED = "create", "change", "delete", "unchanged"


@dataclass(frozen=True)
class Step:
    """One automation's fate. ``differences`` names what a change changes."""

    action: str
    name: str
    target: Target | None = None
    current: Automation | None = None
    differences: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """Everything ``apply`` would do, and everything that stops it."""

    integration_url: str
    integration: Integration | None  # None: to be created
    secrets: Mapping[str, bool | None]  # name -> exists (None: W&B does not say)
    steps: tuple[Step, ...]
    skipped: tuple[Skipped, ...]
    problems: tuple[str, ...]

    def count(self, action: str) -> int:
        return sum(1 for s in self.steps if s.action == action)

    @property
    def changes_nothing(self) -> bool:
        return self.integration is not None and all(s.action == UNCHANGED for s in self.steps)


def webhook_url(wb: WandbConfig) -> str:
    """Where W&B posts: the bridge's ``/webhooks/<source>`` endpoint."""
    return f"{wb.bridge_url}/webhooks/{wb.source}"


def is_managed(automation: Automation, integration_name: str) -> bool:
    """Does this bridge manage ``automation``? (marker and integration both match)"""
    return (
        automation.description.startswith(MARKER)
        and automation.integration is not None
        and automation.integration.name == integration_name
    )


def make_plan(
    wb: WandbConfig,
    targets: Iterable[Target],
    skipped: Iterable[Skipped],
    integrations: Iterable[Integration],
    automations: Iterable[Automation],
    secret_names: frozenset[str] | None,
    *,
    create_secrets: bool = False,
) -> Plan:
    """Compare what the routes want with what W&B holds."""
    url = webhook_url(wb)
    problems: list[str] = []
    ours = next((i for i in integrations if i.name == wb.integration), None)
    if ours is not None and ours.url != url:
        problems.append(
            f"W&B's webhook integration {wb.integration!r} posts to {ours.url}, not {url}; "
            "change its URL in W&B (Team settings -> Webhooks), or set wandb.integration to "
            "another name"
        )
    secrets: dict[str, bool | None] = {}
    for name in (wb.secret_name, wb.access_token_name):
        if name:
            secrets[name] = None if secret_names is None else name in secret_names
            if secrets[name] is False and not create_secrets:
                problems.append(
                    f"W&B team {wb.entity} has no secret {name}; create it in W&B (Team "
                    "settings -> Team secrets) with the bridge's value, or run `wandb-bridge "
                    "wandb apply --create-secrets`"
                )
    current = list(automations)
    managed = {a.name: a for a in current if is_managed(a, wb.integration)}
    others = {a.name for a in current} - set(managed)
    steps = []
    for target in targets:
        name = target.wanted.name
        if name in others:
            problems.append(
                f"W&B already has an automation named {name!r} that this bridge does not "
                f"manage; rename or delete it in W&B, or rename route {target.wanted.route!r}"
            )
            continue
        existing = managed.pop(name, None)
        if existing is None:
            steps.append(Step(CREATE, name, target))
            continue
        differences = compare(target, existing, ours)
        action = CHANGE if differences else UNCHANGED
        steps.append(Step(action, name, target, existing, differences))
    steps += [Step(DELETE, a.name, current=a) for a in managed.values()]
    return Plan(url, ours, secrets, tuple(steps), tuple(skipped), tuple(problems))


def compare(
    target: Target, current: Automation, integration: Integration | None
) -> tuple[str, ...]:
    """What differs between a wanted automation and W&B's (filters and payload templates
    compare as JSON values: W&B may store them with other spacing)."""
    w = target.wanted
    found = []
    if current.description != w.description:
        found.append("description")
    if not current.enabled:
        found.append("enabled")
    if current.scope is None or (current.scope.type, current.scope.id) != (
        target.scope.type,
        target.scope.id,
    ):
        found.append("scope")
    if current.event != w.event:
        found.append("event")
    if current.filter != w.filter:
        found.append("filter")
    if (
        current.action != WEBHOOK_ACTION
        or current.integration is None
        or integration is None
        or current.integration.id != integration.id
    ):
        found.append("webhook")
    if current.payload != w.payload:
        found.append("payload")
    return tuple(found)
