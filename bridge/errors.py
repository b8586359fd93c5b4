"""The bridge's one error tree.

::

    BridgeError
    ├── ConfigError               the configuration cannot be used (all problems listed)
    ├── RequestRefused            an inbound request is refused: carries status + error code
    ├── StoreUnavailable          the durable store cannot be reached or written
    ├── NotFound                  an event or delivery id that the store does not hold
    ├── WandbError                W&B's API refused or failed a ``wandb-bridge wandb`` call
    ├── ListenError               ``serve`` cannot listen on the address ``--bind`` names
    ├── OutboundError             an outbound request got no answer in time (or at all)
    └── DeliveryError             one attempt to deliver to GitHub failed
        ├── TransientDeliveryError    retry later (5xx, 429, rate limits, network)
        └── PermanentDeliveryError    dead at once (400, 401, 404, 410, 422, 403)

Third-party exceptions (requests, PyGithub, sqlite3, psycopg) are translated into these
in one place each, with ``raise ... from exc``. No message here ever contains a secret.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class CliError(BridgeError):
    """A command failed for a reason its one-line message explains (exit 1)."""


class ConfigError(BridgeError):
    """The configuration has one or more problems, each prefixed by its key path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        sep = " " if len(self.problems) == 1 else "\n  "
        super().__init__("invalid configuration:" + sep + sep.join(self.problems))


class RequestRefused(BridgeError):
    """An inbound request is refused with an HTTP status and a stable error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{status} {code}: {message}")


class StoreUnavailable(BridgeError):
    """The store could not be reached or could not commit."""


class NotFound(BridgeError):
    """The store holds no record with the id asked for."""


class WandbError(BridgeError):
    """W&B's GraphQL API failed or refused; the message names the cause and the fix.

    ``status`` is the HTTP status (None when W&B was not reached); ``graphql`` is true
    when W&B answered with GraphQL ``errors`` (the request reached its schema);
    ``not_before`` is the epoch time a 429 or 5xx answer's ``Retry-After`` names.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        graphql: bool = False,
        not_before: float | None = None,
    ) -> None:
        self.status = status
        self.graphql = graphql
        self.not_before = not_before
        super().__init__(message)


class OutboundError(BridgeError):
    """An outbound request (:mod:`bridge.http`) got no complete answer: it could not
    connect or read, or ``timed_out`` by its total deadline. Callers translate it into
    their own kind (a TransientDeliveryError, a WandbError) naming the server."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        self.message = message
        self.timed_out = timed_out
        super().__init__(message)


class ListenError(BridgeError):
    """``serve --bind``: the address is malformed (``usage``: exit 2) or cannot be listened
    on (in use, not this machine's, a privileged port); the message names the fix."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        self.usage = usage
        super().__init__(message)


class DeliveryError(BridgeError):
    """One delivery attempt failed; ``status`` is GitHub's HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


class TransientDeliveryError(DeliveryError):
    """Worth retrying. ``not_before`` is an epoch time GitHub asked us to wait for;
    ``rate_limited`` says the credential itself is limited (every worker must wait)."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        not_before: float | None = None,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(message, status)
        self.not_before = not_before
        self.rate_limited = rate_limited


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help; the delivery goes dead with this message kept."""
