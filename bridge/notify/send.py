"""Send a stored notification to its receiver: one POST, classified like a dispatch."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import requests

from bridge import http
from bridge.config.model import Notifier
from bridge.errors import OutboundError, PermanentDeliveryError, TransientDeliveryError
from bridge.signature import sign
from bridge.store.models import Claimed

log = logging.getLogger(__name__)
MESSAGE_CHARS = 300  # of a receiver's error answer, kept in the attempt's record


class NotifySender:
    """Posts notifications to the receivers the ``notify:`` entries name."""

    def __init__(
        self,
        notifiers: Mapping[str, Notifier],
        session: requests.Session,
        timeout: float,
        clock: Callable[[], float],
        redact: Callable[[str], str] = str,
    ) -> None:
        self.notifiers = notifiers
        self.session = session
        self.timeout = timeout
        self.clock = clock
        self.redact = redact

    def send(self, claimed: Claimed) -> int:
        n = self.notifiers.get(claimed.notifier or "")
        if n is None:
            raise PermanentDeliveryError(
                f"no notify entry named {claimed.notifier!r} in the config any more"
            )
        body = claimed.client_payload.encode()
        headers = {"Content-Type": "application/json", "User-Agent": http.USER_AGENT}
        if n.secret is not None:  # signed the way W&B signs, so a bridge can take it in
            headers["X-Wandb-Signature"] = sign(n.secret.value, body)
        where = f"the {n.kind} receiver of notify entry {n.name!r}"
        try:
            # Only the status counts; of an error answer, the start is enough to show.
            reply = http.fetch(
                self.session, "POST", n.url.value, timeout=self.timeout, data=body, headers=headers
            )
        except OutboundError as exc:
            raise TransientDeliveryError(f"{where}: {exc.message}") from exc
        status = reply.status
        if 200 <= status < 300:
            return status
        answer = self.redact(reply.text()).strip()  # redacted whole, then cut
        text = f"{where} answered {status}: {answer[:MESSAGE_CHARS]}"
        if status in (408, 425, 429) or status >= 500:
            raise TransientDeliveryError(
                text, status, http.retry_not_before(reply.headers, self.clock())
            )
        raise PermanentDeliveryError(text, status)
