"""What a worker sends a claimed delivery with: GitHub, or nothing at all (dry run)."""

from __future__ import annotations

import logging
from typing import Protocol

from bridge.delivery.github import GitHubClient
from bridge.routing.limits import body_of
from bridge.store.models import Claimed

log = logging.getLogger(__name__)


class Sender(Protocol):
    #: True when nothing really leaves the bridge (``github.dry_run``).
    dry_run: bool

    def send(self, claimed: Claimed) -> int | None:
        """Send one attempt; GitHub's status, or a DeliveryError."""
        ...


class GitHubSender:
    dry_run = False

    def __init__(self, client: GitHubClient) -> None:
        self.client = client

    def send(self, claimed: Claimed) -> int | None:
        body = body_of(claimed.event_type, claimed.client_payload)
        return self.client.dispatch(claimed.repository, body)


class DryRunSender:
    """``github.dry_run``: log the dispatch that would be sent, and send nothing."""

    dry_run = True

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    def send(self, claimed: Claimed) -> int | None:
        log.info(
            "dry run: would POST %s/repos/%s/dispatches delivery=%s body=%s",
            self.api_url,
            claimed.repository,
            claimed.id,
            body_of(claimed.event_type, claimed.client_payload).decode("utf-8"),
        )
        return None
