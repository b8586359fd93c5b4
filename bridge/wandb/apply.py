"""Carry out a :class:`~bridge.wandb.plan.Plan` in W&B, one mutation per step.

Order matters: the team secrets first (the integration names them), then the webhook
integration (the automations name it), then creations and changes, deletions last. A
plan that changes nothing sends nothing, which is what makes ``apply`` idempotent.
"""

from __future__ import annotations

from collections.abc import Callable

from bridge.config.model import Config, WandbConfig
from bridge.errors import WandbError
from bridge.wandb.api import WandbApi
from bridge.wandb.plan import CHANGE, CREATE, DELETE, Plan


def apply_plan(
    api: WandbApi,
    config: Config,
    wb: WandbConfig,
    plan: Plan,
    say: Callable[[str], None],
    *,
    create_secrets: bool = False,
) -> int:
    """Make W&B match ``plan``; returns the number of changes sent. Stops at W&B's first
    refusal (what was done before it stays done; run ``plan`` to see the rest)."""
    if plan.problems:
        raise WandbError(plan.problems[0])
    sent = 0
    if create_secrets:
        for name, value in _secret_values(config, wb).items():
            # Missing, or unknown (W&B does not list secrets) while setting up the webhook.
            exists = plan.secrets.get(name)
            if exists is False or (exists is None and plan.integration is None):
                api.insert_secret(name, value)
                say(f"stored team secret {name} in {wb.entity}")
                sent += 1
    integration = plan.integration
    if integration is None:
        integration = api.create_integration(
            wb.integration, plan.integration_url, wb.secret_name, wb.access_token_name
        )
        say(f"created webhook integration {wb.integration!r} -> {plan.integration_url}")
        sent += 1
    for step in sorted(plan.steps, key=lambda s: s.action == DELETE):
        if step.action == CREATE and step.target is not None:
            api.create_automation(step.target, integration.id)
        elif step.action == CHANGE and step.target is not None and step.current is not None:
            api.update_automation(step.current.id, step.target, integration.id)
        elif step.action == DELETE and step.current is not None:
            api.delete_automation(step.current)
        else:
            continue
        say(f"{_PAST[step.action]} automation {step.name!r}")
        sent += 1
    return sent


_PAST = {CREATE: "created", CHANGE: "changed", DELETE: "deleted"}


def _secret_values(config: Config, wb: WandbConfig) -> dict[str, str]:
    """The values ``--create-secrets`` stores: the first of the source's secrets and
    tokens (the ones W&B should sign and authenticate with)."""
    source = config.sources[wb.source]
    values = {}
    for name, held, kind in (
        (wb.secret_name, source.secrets, "secrets"),
        (wb.access_token_name, source.tokens, "tokens"),
    ):
        if name is None:
            continue
        if not held:
            raise WandbError(
                f"--create-secrets: source {wb.source!r} has no {kind} to store as {name}; add "
                f"one under sources.{wb.source}.{kind}, or remove wandb."
                f"{'secret_name' if kind == 'secrets' else 'access_token_name'}"
            )
        values[name] = held[0].value
    return values
