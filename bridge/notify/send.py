"""Send a stored notification to its receiver: one POST, classified like a dispatch."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import requests

from bridge import __version__
from bridge.config.model import Notifier
from bridge.delivery.github import retry_not_before
from bridge.errors import PermanentDeliveryError, TransientDeliveryError
from bridge.intake.signature import sign
from bridge.store.models import Claimed

log = logging.getLogger(__name__)
USER_AGENT = f"wandb-github-bridge/{__version__}"


class NotifySender:
    """Posts notifications to the receivers the ``notify:`` entries name."""

    def __init__(
        self,
        notifiers: Mapping[str, Notifier],
        session: requests.Session,
        timeout: float,
        clock: Callable[[], float],
    ) -> None:
        self.notifiers = notifiers
        self.session = session
        self.timeout = timeout
        self.clock = clock

    def send(self, claimed: Claimed) -> int:
        n = self.notifiers.get(claimed.notifier or "")
        if n is None:
            raise PermanentDeliveryError(
                f"no notify entry named {claimed.notifier!r} in the config any more"
            )
        body = claimed.client_payload.encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if n.secret is not None:  # signed the way W&B signs, so a bridge can take it in
            headers["X-Wandb-Signature"] = sign(n.secret.value, body)
        where = f"the {n.kind} receiver of notify entry {n.name!r}"
        try:
            resp = self.session.post(
                n.url.value,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise TransientDeliveryError(f"cannot reach {where}: {type(exc).__name__}") from exc
        with resp:
            status = resp.status_code
            if 200 <= status < 300:
                return status
            text = f"{where} answered {status}: {resp.text.strip()[:300]}"
            if status in (408, 425, 429) or status >= 500:
                raise TransientDeliveryError(
                    text, status, retry_not_before(resp.headers, self.clock())
                )
            raise PermanentDeliveryError(text, status)
