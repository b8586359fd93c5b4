"""Who is signed in to the console: sessions, the sign-in throttle, CSRF and Origin checks.

A session is a random id in the ``console_session`` cookie; the store keeps only its
SHA-256 with the admin token's label (where the token came from, never its value), the
session's CSRF token and when it ends, so every worker and replica knows it. A session
stops working when its token's label is no longer among ``admin.tokens``.

Before sign-in there is no session: the sign-in form's CSRF token is a double-submit
cookie (``console_csrf``), so a page elsewhere cannot sign a browser in either.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from flask import request
from werkzeug.wrappers import Response

from bridge.config.secrets import Secret
from bridge.console.security import PREFIX, same_origin
from bridge.errors import RequestRefused
from bridge.services import Services

SESSION_COOKIE = "console_session"
CSRF_COOKIE = "console_csrf"
SESSION_TTL = 8 * 3600.0
REFUSED = (
    "this form was not sent from the console's own page (its CSRF token or its Origin "
    "does not match); nothing was changed. Reload the console and try again"
)


@dataclass(frozen=True)
class SignedIn:
    label: str
    csrf: str
    id_hash: str


def labels(tokens: Sequence[Secret]) -> list[str]:
    """Each admin token's label: where it came from (``env:BRIDGE_ADMIN_TOKEN``),
    numbered when two come from the same kind of place (two inline tokens)."""
    origins = [t.origin for t in tokens]
    return [o if origins.count(o) == 1 else f"{o}#{i + 1}" for i, o in enumerate(origins)]


def match(tokens: Sequence[Secret], candidate: bytes) -> str | None:
    """The label of the token ``candidate`` equals, or None. Every token is compared in
    constant time, with no early exit, so timing tells neither which nor whether."""
    found = None
    for label, token in zip(labels(tokens), tokens, strict=True):
        if token.matches(candidate) and found is None:
            found = label
    return found


def id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def current(svc: Services) -> SignedIn | None:
    """The signed-in session of this request, or None."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id or len(session_id) > 100:
        return None
    key = id_hash(session_id)
    found = svc.store.console.session(key, svc.clock())
    if found is None or found.label not in labels(svc.config.admin_tokens):
        return None
    return SignedIn(found.label, found.csrf, key)


def start(svc: Services, label: str, resp: Response) -> None:
    """Record a new session for ``label`` and set its cookie on ``resp``."""
    session_id = secrets.token_urlsafe(32)
    now = svc.clock()
    svc.store.console.create_session(
        id_hash(session_id), label, secrets.token_urlsafe(32), now, SESSION_TTL
    )
    _cookie(resp, SESSION_COOKIE, session_id, int(SESSION_TTL))


def end(svc: Services, signed_in: SignedIn, resp: Response) -> None:
    svc.store.console.end_session(signed_in.id_hash)
    resp.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="Strict")


def sign_in_csrf() -> str:
    """The sign-in form's CSRF token: the browser's cookie's, or a new one."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(token) <= 100 and token.isascii():
        return token
    return secrets.token_urlsafe(32)


def keep_sign_in_csrf(resp: Response, token: str) -> None:
    """Set the sign-in CSRF cookie to ``token`` (for the browser's session only)."""
    _cookie(resp, CSRF_COOKIE, token, None)


def check_post(expected: str | None) -> None:
    """Refuse (403) a POST whose ``csrf`` field is not ``expected`` or that comes from a
    page on another origin (``Origin``, else ``Referer``)."""
    given = request.form.get("csrf", "")
    token_ok = bool(expected) and hmac.compare_digest(
        given.encode("utf-8"), (expected or "").encode("utf-8")
    )
    origin_ok = same_origin(
        request.headers.get("Origin"), request.headers.get("Referer"), request.host
    )
    if not (token_ok and origin_ok):
        raise RequestRefused(403, "csrf_refused", REFUSED)


def checked_post(svc: Services) -> SignedIn:
    """The session of a POST that passes ``check_post`` with its CSRF token; 403 else."""
    signed_in = current(svc)
    check_post(signed_in.csrf if signed_in else None)
    if signed_in is None:  # check_post refused it already; this tells mypy
        raise RequestRefused(403, "csrf_refused", REFUSED)
    return signed_in


def address() -> str:
    """Who is signing in, for the throttle: the peer's address (a proxy's, behind one)."""
    return request.remote_addr or "unknown"


def _cookie(resp: Response, name: str, value: str, max_age: int | None) -> None:
    resp.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        secure=request.is_secure,
        httponly=True,
        samesite="Strict",
    )
