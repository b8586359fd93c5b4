"""Credentials for GitHub: a fixed token, or a GitHub App's installation tokens.

For an App, PyGithub signs the JWT and calls GitHub's App endpoints (with its own retries
and throttling turned off: ours is the one retry layer). Installation tokens live an
hour; each is cached and renewed ``RENEW_BEFORE`` seconds before it expires. Without a
configured installation id, the installation is looked up per repository and cached.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import requests

from bridge.config.model import GitHubApp
from bridge.delivery.github import USER_AGENT
from bridge.errors import PermanentDeliveryError, TransientDeliveryError

log = logging.getLogger(__name__)
RENEW_BEFORE = 300.0  # renew this long before expiry, or a tenth of a short lifetime


class StaticToken:
    def __init__(self, token: str) -> None:
        self._token = token

    def token_for(self, repository: str) -> str:
        return self._token

    def invalidate(self, repository: str) -> None:
        """A fixed token cannot be renewed; a 401 is permanent."""


def _translate(exc: Exception, doing: str) -> Exception:
    """PyGithub's and requests' errors as the bridge's delivery errors (one place)."""
    from github import GithubException

    if isinstance(exc, GithubException):
        status = exc.status
        message = exc.data.get("message") if isinstance(exc.data, dict) else None
        text = f"{doing}: GitHub answered {status}: {message or 'no message'}"
        if status in (401, 403, 404, 422):
            return PermanentDeliveryError(text, status)
        return TransientDeliveryError(text, status)
    return TransientDeliveryError(f"{doing}: cannot reach GitHub ({type(exc).__name__})")


class AppTokens:
    """Installation tokens of one GitHub App, minted on demand and cached."""

    def __init__(
        self, app: GitHubApp, api_url: str, timeout: float, clock: Callable[[], float]
    ) -> None:
        self.app = app
        self.api_url = api_url
        self.timeout = timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[int, tuple[str, float]] = {}
        self._installations: dict[str, int] = {}
        self._integration: Any = None

    def _gi(self) -> Any:
        if self._integration is None:
            from github import Auth, GithubIntegration

            auth = Auth.AppAuth(self.app.app_id, self.app.private_key.value)
            self._integration = GithubIntegration(
                auth=auth,
                base_url=self.api_url,
                timeout=max(1, int(self.timeout)),
                user_agent=USER_AGENT,
                retry=None,
                seconds_between_requests=None,
                seconds_between_writes=None,
            )
        return self._integration

    def installation_for(self, repository: str) -> int:
        if self.app.installation_id is not None:
            return self.app.installation_id
        if repository not in self._installations:
            owner, repo = repository.split("/", 1)
            doing = f"looking up the GitHub App's installation on {repository}"
            try:
                found = self._gi().get_repo_installation(owner, repo)
                self._installations[repository] = int(found.id)
            except Exception as exc:  # translated: PyGithub and requests errors
                raise _translate(exc, doing) from exc
        return self._installations[repository]

    def token_for(self, repository: str) -> str:
        with self._lock:
            installation = self.installation_for(repository)
            cached = self._tokens.get(installation)
            now = self.clock()
            if cached is not None and now < cached[1]:
                return cached[0]
            doing = f"minting a token for installation {installation}"
            try:
                auth = self._gi().get_access_token(installation)
            except Exception as exc:  # translated: PyGithub and requests errors
                raise _translate(exc, doing) from exc
            expires = auth.expires_at.timestamp() if auth.expires_at else now + 3600
            renew_at = expires - min(RENEW_BEFORE, max(0.0, expires - now) / 10)
            self._tokens[installation] = (auth.token, renew_at)
            log.info("github app token minted installation=%s expires_at=%d", installation, expires)
            return str(auth.token)

    def invalidate(self, repository: str) -> None:
        with self._lock:
            installation = self._installations.get(repository, self.app.installation_id)
            if installation is not None:
                self._tokens.pop(installation, None)
            self._installations.pop(repository, None)


def token_provider(config: Any, clock: Callable[[], float]) -> StaticToken | AppTokens:
    """The provider ``github:`` configures (token or app)."""
    gh = config.github
    if gh.app is not None:
        return AppTokens(gh.app, gh.api_url, config.delivery.timeout, clock)
    assert gh.token is not None
    return StaticToken(gh.token.value)


def new_session(pool: int) -> requests.Session:
    """A pooled session with no retries of its own (the worker is the retry layer)."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
