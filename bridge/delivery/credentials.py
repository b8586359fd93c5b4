"""Credentials for GitHub: a fixed token, or a GitHub App's installation tokens.

For an App, PyGithub signs the JWT; the two App calls (find the installation on a
repository, mint its token) go over the bridge's own HTTP session like every other
request, so they share the attempt's deadline and GitHub's answers are classified in one
place (:func:`bridge.delivery.github.classify`). Installation tokens live an hour; each is
cached and renewed ``RENEW_BEFORE`` seconds before it expires. Without a configured
installation id, the installation is looked up per repository and cached.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import requests

from bridge.config.model import GitHubApp
from bridge.delivery.github import call, parse_time
from bridge.errors import DeliveryError, TransientDeliveryError
from bridge.logs import fields

log = logging.getLogger(__name__)
RENEW_BEFORE = 300.0  # renew this long before expiry, or a tenth of a short lifetime


class StaticToken:
    def __init__(self, token: str) -> None:
        self._token = token

    def token_for(self, repository: str) -> str:
        return self._token

    def invalidate(self, repository: str) -> None:
        """A fixed token cannot be renewed; a 401 is permanent."""


class AppTokens:
    """Installation tokens of one GitHub App, minted on demand and cached."""

    def __init__(
        self,
        app: GitHubApp,
        api_url: str,
        session: requests.Session,
        timeout: float,
        clock: Callable[[], float],
        redact: Callable[[str], str] = str,
    ) -> None:
        self.app = app
        self.api_url = api_url.rstrip("/")
        self.session = session
        self.timeout = timeout
        self.clock = clock
        self.redact = redact
        self._lock = threading.Lock()
        self._tokens: dict[int, tuple[str, float]] = {}
        self._installations: dict[str, int] = {}
        self._auth: Any = None

    def _call(self, method: str, path: str, doing: str) -> Any:
        """One App call authenticated with a fresh JWT; GitHub's JSON answer (None when
        it is not JSON)."""
        if self._auth is None:
            from github import Auth

            self._auth = Auth.AppAuth(self.app.app_id, self.app.private_key.value)
        try:
            jwt = self._auth.create_jwt()
            answer = call(
                self.session,
                self.api_url,
                method,
                path,
                jwt,
                timeout=self.timeout,
                clock=self.clock,
                redact=self.redact,
            )
        except DeliveryError as exc:  # say what was being done
            exc.message = f"{doing}: {exc.message}"
            exc.args = (exc.message,)
            raise
        return answer.data

    def installation_for(self, repository: str) -> int:
        if self.app.installation_id is not None:
            return self.app.installation_id
        if repository not in self._installations:
            doing = f"looking up the GitHub App's installation on {repository}"
            found = self._call("GET", f"/repos/{repository}/installation", doing)
            installation = found.get("id") if isinstance(found, dict) else None
            if not isinstance(installation, int) or isinstance(installation, bool):
                raise TransientDeliveryError(f"{doing}: GitHub's answer names no installation")
            self._installations[repository] = installation
        return self._installations[repository]

    def token_for(self, repository: str) -> str:
        with self._lock:
            installation = self.installation_for(repository)
            cached = self._tokens.get(installation)
            now = self.clock()
            if cached is not None and now < cached[1]:
                return cached[0]
            doing = f"minting a token for installation {installation}"
            minted = self._call("POST", f"/app/installations/{installation}/access_tokens", doing)
            token = minted.get("token") if isinstance(minted, dict) else None
            if not isinstance(token, str) or not token:
                raise TransientDeliveryError(f"{doing}: GitHub's answer holds no token")
            expires = parse_time(minted.get("expires_at")) or now + 3600
            renew_at = expires - min(RENEW_BEFORE, max(0.0, expires - now) / 10)
            self._tokens[installation] = (token, renew_at)
            log.info(
                "github app token minted",
                extra=fields(installation=installation, expires_at=int(expires)),
            )
            return token

    def invalidate(self, repository: str) -> None:
        with self._lock:
            installation = self._installations.get(repository, self.app.installation_id)
            if installation is not None:
                self._tokens.pop(installation, None)
            self._installations.pop(repository, None)


def token_provider(
    config: Any,
    session: requests.Session,
    clock: Callable[[], float],
    redact: Callable[[str], str] = str,
) -> StaticToken | AppTokens:
    """The provider ``github:`` configures (token or app)."""
    gh = config.github
    if gh.app is not None:
        return AppTokens(gh.app, gh.api_url, session, config.delivery.timeout, clock, redact)
    assert gh.token is not None
    return StaticToken(gh.token.value)
