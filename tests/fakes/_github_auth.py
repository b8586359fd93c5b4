"""Who may call the fake GitHub: static tokens, a GitHub App's JWTs, and the installation
tokens the App mints. Thread-safe; "now" is the injected clock."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import jwt
from werkzeug.wrappers import Request

from tests.fakes._github_rules import UNDECODABLE, Reject, check_jwt_claims, presented_credential


@dataclass(frozen=True)
class Minted:
    """An installation access token issued by ``POST /app/installations/{id}/access_tokens``."""

    installation_id: int
    token: str
    expires_at: float  # clock() + token_ttl


class Credentials:
    """The fake's credential store and the checks made with it (each raises ``Reject``)."""

    def __init__(
        self,
        *,
        tokens: Iterable[str],
        repositories: Iterable[str] | None,
        app_id: int | None,
        app_public_key_pem: bytes | None,
        installations: Mapping[str, int] | None,
        token_ttl: float,
        clock: Callable[[], float],
    ) -> None:
        if (app_id is None) != (app_public_key_pem is None):
            raise ValueError("give both app_id and app_public_key_pem, or neither")
        self.app_id = app_id
        self._app_key = app_public_key_pem
        self._tokens = set(tokens)
        self._repos = None if repositories is None else {r.lower() for r in repositories}
        # GitHub's owner and repository names are case-insensitive.
        self._installations = {repo.lower(): (repo, i) for repo, i in (installations or {}).items()}
        self._token_ttl = token_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._minted: dict[str, Minted] = {}

    @property
    def repositories(self) -> frozenset[str] | None:
        """The repositories that exist, lower-cased (None: every one)."""
        return None if self._repos is None else frozenset(self._repos)

    @property
    def minted(self) -> list[Minted]:
        with self._lock:
            return list(self._minted.values())

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.discard(token)
            self._minted.pop(token, None)

    def dispatch_token(self, request: Request, repo: str) -> str:
        """The request's token if it may dispatch to ``repo``: 401 if it is no valid token,
        404 if the repository does not exist or the token cannot see it (as GitHub hides it)."""
        token = presented_credential(request)
        if token is None:
            raise Reject(401, "Requires authentication")
        now = self._clock()
        with self._lock:
            minted = self._minted.get(token)
            static = token in self._tokens
        if not static and (minted is None or now >= minted.expires_at):
            raise Reject(401, "Bad credentials")
        exists = self._repos is None or repo.lower() in self._repos
        if not exists or (minted is not None and minted.installation_id != self._installed(repo)):
            raise Reject(404, "Not Found")
        return token

    def verify_app_jwt(self, request: Request) -> None:
        """401 unless the request carries a current JWT of the configured App."""
        token = presented_credential(request)
        if self._app_key is None or token is None:
            raise Reject(401, UNDECODABLE)
        try:
            claims = jwt.decode(
                token,
                self._app_key,
                algorithms=["RS256"],
                # PyJWT reads the wall clock: the time claims are checked against ours instead.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidTokenError:
            raise Reject(401, UNDECODABLE) from None
        check_jwt_claims(claims, app_id=self.app_id, now=self._clock())

    def mint(self, installation_id: int) -> Minted:
        """A new installation token (404 for an unknown installation)."""
        self.owner_of(installation_id)
        token = "ghs_" + secrets.token_hex(18)
        minted = Minted(installation_id, token, self._clock() + self._token_ttl)
        with self._lock:
            self._minted[token] = minted
        return minted

    def installation_of(self, repo: str) -> int:
        """The installation id covering ``repo`` (404 if none)."""
        installation_id = self._installed(repo)
        if installation_id is None:
            raise Reject(404, "Not Found")
        return installation_id

    def owner_of(self, installation_id: int) -> str:
        """The account an installation belongs to (404 for an unknown installation)."""
        for repo, candidate in self._installations.values():
            if candidate == installation_id:
                return repo.partition("/")[0]
        raise Reject(404, "Not Found")

    def _installed(self, repo: str) -> int | None:
        return self._installations.get(repo.lower(), ("", None))[1]
