"""What a worker sends a claimed delivery with: GitHub (a repository or a workflow
dispatch), a notification receiver, W&B (a write-back), or nothing at all for GitHub
and W&B (dry run)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from bridge.delivery.github import GitHubClient
from bridge.errors import PermanentDeliveryError
from bridge.logs import fields
from bridge.notify.send import NotifySender
from bridge.routing.limits import body_of
from bridge.states import DeliveryKind
from bridge.store.models import Claimed, NewRun
from bridge.wandb.writeback import WandbWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    """An accepted attempt: the receiver's status (None when nothing was sent), and the
    run GitHub named for a workflow dispatch."""

    status: int | None
    run: NewRun | None = None


class Sender(Protocol):
    #: True when nothing really leaves the bridge for GitHub (``github.dry_run``).
    dry_run: bool

    def send(self, claimed: Claimed) -> Sent:
        """Make one attempt; what was accepted, or a DeliveryError."""
        ...


class GitHubSender:
    dry_run = False

    def __init__(
        self, client: GitHubClient, notify: NotifySender, wandb: WandbWriter | None = None
    ) -> None:
        self.client = client
        self.notify = notify
        self.wandb = wandb  # None when no route writes back

    def send(self, claimed: Claimed) -> Sent:
        if claimed.kind == DeliveryKind.NOTIFY:
            return Sent(self.notify.send(claimed))
        if claimed.kind == DeliveryKind.WANDB:
            if self.wandb is None:
                raise PermanentDeliveryError(
                    "no route writes back to W&B any more (routes[].write_back, with the "
                    "wandb: block's API key): restore it, then replay this delivery"
                )
            return Sent(self.wandb.send(claimed))
        if claimed.kind == DeliveryKind.WORKFLOW:
            assert claimed.workflow is not None and claimed.ref is not None
            status, run = self.client.workflow_dispatch(
                claimed.repository, claimed.workflow, claimed.ref, claimed.client_payload
            )
            return Sent(status, run)
        body = body_of(claimed.event_type, claimed.client_payload)
        return Sent(self.client.dispatch(claimed.repository, body))


class DryRunSender:
    """``github.dry_run``: log what would be sent to GitHub or written to W&B, and send
    them nothing. Notifications still go out: they are how a dry run is watched."""

    dry_run = True

    def __init__(self, api_url: str, notify: NotifySender | None = None) -> None:
        self.api_url = api_url
        self.notify = notify

    def send(self, claimed: Claimed) -> Sent:
        if claimed.kind == DeliveryKind.NOTIFY and self.notify is not None:
            return Sent(self.notify.send(claimed))
        if claimed.kind == DeliveryKind.WANDB:
            log.info(
                "dry run: would add to W&B",
                extra=fields(
                    artifact=claimed.repository, write=claimed.client_payload, delivery=claimed.id
                ),
            )
            return Sent(None)
        if claimed.kind == DeliveryKind.WORKFLOW:
            path = f"actions/workflows/{claimed.workflow}/dispatches"
            sent = {"ref": claimed.ref, "inputs": claimed.client_payload}
        else:
            body = body_of(claimed.event_type, claimed.client_payload).decode("utf-8")
            path, sent = "dispatches", {"body": body}
        url = f"{self.api_url}/repos/{claimed.repository}/{path}"
        log.info("dry run: would POST", extra=fields(url=url, **sent, delivery=claimed.id))
        return Sent(None)
