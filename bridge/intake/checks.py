"""The checks an inbound webhook passes, in the order docs/http.md gives, as pure functions.

Each check raises :class:`~bridge.errors.RequestRefused` with the status, the stable
error code and a sentence a W&B admin can act on. Nothing here reads a clock, a socket
or a global; the HTTP view feeds it the raw request and stores what it returns.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from bridge.config.model import Config, Source
from bridge.errors import RequestRefused
from bridge.routing.limits import PlannedDispatch, check_dispatch, plan
from bridge.routing.routes import plan_dispatches
from bridge.signature import bearer_token, signature_matches, token_matches
from bridge.text import printable

PASSTHROUGH = "passthrough"
# What GitHub allows in an owner or repository name.
GITHUB_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
# How a UTF-8 body can carry a lone surrogate into the parsed value: a \\uD800-\\uDFFF
# escape, or the surrogate's own three bytes (json.loads lets them pass).
SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def check_size(length: int | None, limit: int) -> None:
    if length is not None and length > limit:
        raise RequestRefused(
            413,
            "payload_too_large",
            f"the body is larger than this bridge accepts ({limit} bytes, max_body_bytes); "
            "shorten the payload template",
        )


def check_content_type(content_type: str | None) -> None:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime != "application/json" and not (
        mime.startswith("application/") and mime.endswith("+json")
    ):
        raise RequestRefused(
            415,
            "unsupported_media_type",
            f"Content-Type is {mime or 'missing'!r}; send the payload as application/json",
        )


def authenticate(
    sources: Sequence[Source], authorization: str | None, signature: str | None, body: bytes
) -> Source:
    """The first of ``sources`` whose token and signature checks the request passes."""
    token = bearer_token(authorization)
    passed = [s for s in sources if not s.tokens or (token and token_matches(s.tokens, token))]
    if not passed:
        names = _names(sources)
        if token is None:
            raise RequestRefused(
                401,
                "missing_token",
                f"no 'Authorization: Bearer <token>' header; set the webhook's access token "
                f"to one of the tokens of source {names}",
            )
        raise RequestRefused(
            401,
            "invalid_token",
            f"the access token matches no token of source {names}; copy the token from the "
            "bridge's config into the W&B webhook's access token",
        )
    signed = [
        s
        for s in passed
        if not s.secrets or (signature and signature_matches(s.secrets, signature, body))
    ]
    if not signed:
        names = _names(sources)
        if not signature:
            raise RequestRefused(
                401,
                "missing_signature",
                f"no X-Wandb-Signature header; give the W&B webhook the secret configured "
                f"for source {names}",
            )
        raise RequestRefused(
            401,
            "invalid_signature",
            f"the X-Wandb-Signature header does not match any configured secret of source "
            f"{names}; check that the W&B webhook's secret is one of them",
        )
    return signed[0]


def _names(sources: Sequence[Source]) -> str:
    return ", ".join(repr(s.name) for s in sources)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} does not fit a double")
    return value


def _int_in_range(text: str) -> int | float:
    value = int(text)
    if abs(value) > sys.float_info.max:
        raise ValueError(f"the number {text[:40]}... does not fit a double")
    return value


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, strictly: no NaN or Infinity, no number beyond a
    double, no lone surrogate (nothing GitHub would refuse after we accepted it)."""
    try:
        value = json.loads(
            body,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_int_in_range,
        )
        # A lone surrogate ("\\ud800") parses, but no UTF-8 encoder will send it on.
        if _may_hold_surrogates(body):
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as exc:
        raise RequestRefused(
            400,
            "invalid_json",
            f"the body is not valid JSON ({_short(exc)}); check the payload template",
        ) from exc
    if not isinstance(value, dict):
        raise RequestRefused(
            400,
            "invalid_json",
            f"the body is a JSON {type(value).__name__}, not an object; the payload template "
            "must be a JSON object",
        )
    return value


def _may_hold_surrogates(body: bytes) -> bool:
    """False when ``body`` is UTF-8 (what json.loads takes it for unless it starts with a
    byte order mark or a zero byte: UTF-16 or UTF-32) without a surrogate in it; a scan
    of the bytes instead of encoding the whole value again."""
    if body[:1] in (b"\xef", b"\xfe", b"\xff") or b"\x00" in body[:4]:
        return True
    return SURROGATE.search(body) is not None


def _short(exc: Exception) -> str:
    if isinstance(exc, UnicodeError):
        return "a string holds a lone surrogate or is not UTF-8"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split("\n", 1)[0][:120]


def repository_allowed(patterns: Sequence[str], repository: str) -> bool:
    # GitHub repository names are case-insensitive.
    return any(fnmatchcase(repository.lower(), p.lower()) for p in patterns)


def check_repository_name(owner: str, repo: str) -> str:
    """``owner/repo`` when both are names GitHub could have; else 422."""
    for kind, name in (("owner", owner), ("repository", repo)):
        if not GITHUB_NAME.fullmatch(name) or name in (".", ".."):
            raise RequestRefused(
                422,
                "invalid_repository",
                f"{printable(name)!r} is not a valid GitHub {kind} name (letters, digits, "
                "'-', '_' and '.'); check the webhook URL's /repos/<owner>/<repo>/dispatches",
            )
    return f"{owner}/{repo}"


def plan_passthrough(
    config: Config, owner_repo: tuple[str, str], body: Mapping[str, Any], event_id: str
) -> list[PlannedDispatch]:
    """The one dispatch of ``POST /repos/<owner>/<repo>/dispatches``: 422, 403 or a plan."""
    repository = check_repository_name(*owner_repo)
    event_type = body.get("event_type")
    payload = body.get("client_payload", {})
    check_dispatch(event_type, payload, "the body")
    if not repository_allowed(config.github.repositories, repository):
        raise RequestRefused(
            403,
            "repository_not_allowed",
            f"this bridge does not dispatch to {repository}; add it (or a glob that matches "
            "it) to github.repositories in the bridge's config",
        )
    return [plan(repository, event_type, payload, PASSTHROUGH, event_id, "the body")]


def plan_webhook(
    config: Config, source: Source, fields: Mapping[str, Any]
) -> list[PlannedDispatch]:
    """The dispatches of every route the webhook's ``fields`` match (possibly none)."""
    return plan_dispatches(config.routes, source.name, fields)


def find_source(config: Config, name: str) -> Source:
    source = config.sources.get(name)
    if source is None:
        raise RequestRefused(
            404,
            "unknown_source",
            f"this bridge has no source named {name!r}; the webhook URL must end in "
            "/webhooks/<name> with a name from the sources section of its config",
        )
    return source
