"""Loopback stand-ins for the places the bridge may send notifications to: a Slack incoming
webhook, a Microsoft Teams incoming webhook (Office 365 connector or Power Automate
"Workflows"), and a generic webhook receiver that checks W&B's ``X-Wandb-Signature``.

One class, ``Receiver``, of a ``kind``. It answers every path (a Slack webhook's
``/services/T.../B.../...`` as well as ``/``) and records every request it answered in
``received``. A POST meets, in this order:

1. ``delay_next``: the answer waits that long; ``hold``: the answer waits for
   ``release`` (``in_flight`` counts the requests waiting; ``stop`` releases them);
2. ``fail_next``: scripted answers, one per request in the order queued, whatever it holds;
3. the kind's checks, answered as that service answers them:

   - ``"slack"``: ``Content-Type: application/json``, a JSON object with a string ``text``
     and/or a non-empty list ``blocks`` (each a known block type; a header's text at most
     150 characters, a section's 3,000, at most 50 blocks) -> 200 ``ok``; else 400 with
     Slack's code (``invalid_payload``, ``no_text``, ``invalid_blocks``);
   - ``"teams"`` / ``"teams-workflow"``: ``Content-Type: application/json``, a legacy
     ``{"@type": "MessageCard", ...}`` with ``summary`` or ``text``, or ``{"type":
     "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
     "content": {"type": "AdaptiveCard", "version": ..., "body": [...]}}]}``, at most 28 KB
     -> 200 ``1`` (connector) or 202 with no body (Workflows); else 400 (413 too large);
   - ``"generic"``: with a ``secret``, ``X-Wandb-Signature`` must be base64(HMAC-SHA256(
     secret, raw body)), else 401; any body -> 200 with no body.

Anything but a POST is 405. ``Received.reason`` says why the fake refused a request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from werkzeug.wrappers import Request, Response

from tests.fakes._github_rules import phrase
from tests.fakes._server import Scripted, ServedFake

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["Kind", "Received", "Receiver", "wandb_signature"]

Kind = Literal["slack", "teams", "teams-workflow", "generic"]
KINDS: tuple[Kind, ...] = ("slack", "teams", "teams-workflow", "generic")
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
SLACK_MAX_BLOCKS = 50
SLACK_MAX_HEADER = 150
SLACK_MAX_SECTION = 3000
SLACK_MAX_FIELDS = 10
SLACK_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)
TEAMS_MAX_BYTES = 28 * 1024
TEAMS_BAD_PAYLOAD = "Bad payload received by generic incoming webhook."
TEAMS_NO_TEXT = "Summary or Text is required."


def wandb_signature(secret: str | bytes, body: bytes) -> str:
    """The ``X-Wandb-Signature`` W&B sends: base64(HMAC-SHA256(secret, body))."""
    key = secret.encode() if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


@dataclass(frozen=True)
class Received:
    """A request and the answer it got."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    raw: bytes
    payload: Any  # the body as JSON; None when it is not JSON
    status: int
    answer: bytes
    reason: str | None  # why the fake refused it (None: accepted, or a scripted answer)
    time: float  # clock()

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


class _Refuse(Exception):
    def __init__(self, status: int, answer: str, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.answer = answer
        self.reason = reason


class Receiver(ServedFake):
    """See the module docstring. Use as a context manager, or ``start()`` / ``stop()``;
    any path below ``url`` is answered."""

    def __init__(
        self,
        kind: Kind = "generic",
        *,
        secret: str | bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if secret is not None and kind != "generic":
            raise ValueError("a secret is for the generic receiver")
        super().__init__(f"fake-{kind}-receiver", "fake receiver")
        self.kind = kind
        self._secret = secret
        self._clock = clock
        self._delays: deque[float] = deque()
        self._script: deque[Scripted] = deque()
        self._holding = False
        self._in_flight = 0
        self._received: list[Received] = []

    # -- failure injection ---------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``count`` requests with ``status``. ``body``: None for the status's
        reason phrase, ``bytes``/``str`` as is, anything else as JSON."""
        with self._cond:
            self._script.extend([Scripted(status, dict(headers or {}), body)] * count)

    def delay_next(self, seconds: float, *, count: int = 1) -> None:
        """Hold the answers to the next ``count`` requests ``seconds`` each."""
        with self._cond:
            self._delays.extend([seconds] * count)

    def hold(self) -> None:
        """Hold every answer from now until ``release`` (or ``stop``)."""
        with self._cond:
            self._holding = True

    def release(self) -> None:
        """Let held answers (and later ones) go."""
        with self._cond:
            self._holding = False
            self._cond.notify_all()

    # -- what it saw ---------------------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        """Every request answered, in the order answered."""
        return self._copy(self._received)

    @property
    def accepted(self) -> list[Received]:
        """The requests answered 2xx."""
        return [r for r in self.received if r.accepted]

    @property
    def payloads(self) -> list[Any]:
        """The JSON bodies of the accepted requests."""
        return [r.payload for r in self.accepted]

    @property
    def in_flight(self) -> int:
        """Requests arrived and not answered yet (held or delayed)."""
        with self._cond:
            return self._in_flight

    def wait_for(self, n: int, timeout: float = 10.0, *, accepted: bool = True) -> list[Received]:
        """Block until ``n`` requests were accepted (``accepted=False``: answered at all);
        return them. AssertionError after ``timeout``, listing what was seen."""

        def chosen() -> list[Received]:
            return [r for r in self._received if r.accepted or not accepted]

        with self._cond:
            if self._cond.wait_for(lambda: len(chosen()) >= n, timeout):
                return chosen()
            seen = "".join(
                f"\n  {r.method} {r.path} -> {r.status} {r.reason or ''}".rstrip()
                for r in self._received
            )
            what = "accepted" if accepted else "answered"
            raise AssertionError(
                f"expected {n} {what} request(s) within {timeout} s, got {len(chosen())};"
                f" requests seen:{seen or ' none'}"
            )

    def wait_for_in_flight(self, n: int, timeout: float = 10.0) -> None:
        """Block until ``n`` requests are waiting for their answer (see ``hold``)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._in_flight >= n, timeout):
                raise AssertionError(
                    f"expected {n} request(s) in flight within {timeout} s, got {self._in_flight}"
                )

    # -- serving -------------------------------------------------------------------------------

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        raw = request.get_data()
        with self._cond:
            self._in_flight += 1
            self._cond.notify_all()
        reason: str | None = None
        try:
            self._wait()
            response = self._answer(request, raw)
        except _Refuse as refused:
            reason = refused.reason
            response = _text(refused.status, refused.answer)
            if refused.status == 405:
                response.headers["Allow"] = "POST"
        except Exception as exc:  # a bug of the fake: see stop()
            with self._cond:
                self._errors.append(exc)
            reason = f"the fake receiver failed: {exc!r}"
            response = _text(500, reason)
        seen = Received(
            method=request.method,
            path=request.full_path.rstrip("?"),
            headers={name.lower(): value for name, value in request.headers.items()},
            raw=raw,
            payload=_json_or_none(raw),
            status=response.status_code,
            answer=response.get_data(),
            reason=reason,
            time=self._clock(),
        )
        with self._cond:
            self._in_flight -= 1
            self._received.append(seen)
            self._cond.notify_all()
        return response(environ, start_response)

    def _wait(self) -> None:
        with self._cond:
            delay = self._delays.popleft() if self._delays else 0.0
        if delay:
            self._stopping.wait(delay)
        with self._cond:
            self._cond.wait_for(lambda: not self._holding or self._stopping.is_set())

    def _answer(self, request: Request, raw: bytes) -> Response:
        if request.method != "POST":
            raise _Refuse(405, "Method Not Allowed", f"{request.method} is not POST")
        with self._cond:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            return scripted.response(_phrase, "application/json")
        if self.kind == "generic":
            self._check_signature(request, raw)
            return Response(status=200)
        if request.mimetype != "application/json":
            got = request.headers.get("Content-Type")
            answer = "invalid_payload" if self.kind == "slack" else TEAMS_BAD_PAYLOAD
            raise _Refuse(400, answer, f"Content-Type is {got!r}, not application/json")
        if self.kind == "slack":
            _check_slack(raw)
            return _text(200, "ok", "text/html")
        _check_teams(raw)
        if self.kind == "teams":
            return _text(200, "1")
        return Response(status=202)

    def _check_signature(self, request: Request, raw: bytes) -> None:
        if self._secret is None:
            return
        given = request.headers.get("X-Wandb-Signature")
        if given is None:
            raise _Refuse(401, "missing signature", "no X-Wandb-Signature header")
        expected = wandb_signature(self._secret, raw)
        if not hmac.compare_digest(expected.encode(), given.strip().encode("latin-1")):
            raise _Refuse(
                401,
                "bad signature",
                "X-Wandb-Signature is not base64(HMAC-SHA256(secret, raw body))",
            )


# -- Slack -----------------------------------------------------------------------------------


def _check_slack(raw: bytes) -> None:
    body = _json_or_none(raw)
    if not isinstance(body, dict):
        raise _Refuse(400, "invalid_payload", "the body is not a JSON object")
    text, blocks = body.get("text"), body.get("blocks")
    if text is not None and not isinstance(text, str):
        raise _Refuse(400, "invalid_payload", "text is not a string")
    if blocks is not None and not isinstance(blocks, list):
        raise _Refuse(400, "invalid_blocks_format", "blocks is not a list")
    if not (text and text.strip()) and not blocks:
        raise _Refuse(400, "no_text", "neither text nor blocks")
    if blocks:
        _check_blocks(blocks)


def _check_blocks(blocks: list[Any]) -> None:
    def refuse(why: str) -> _Refuse:
        return _Refuse(400, "invalid_blocks", why)

    if len(blocks) > SLACK_MAX_BLOCKS:
        raise refuse(f"{len(blocks)} blocks, more than {SLACK_MAX_BLOCKS}")
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") not in SLACK_BLOCK_TYPES:
            raise refuse(f"block {i}: not an object with a Slack block type")
        kind = block["type"]
        if kind == "header":
            text = _slack_text(block.get("text"), f"block {i} (header)", ("plain_text",))
            if len(text) > SLACK_MAX_HEADER:
                raise refuse(f"block {i}: a header's text is over {SLACK_MAX_HEADER} characters")
        elif kind == "section":
            fields = block.get("fields")
            if "text" not in block and not fields:
                raise refuse(f"block {i}: a section needs text or fields")
            if "text" in block:
                text = _slack_text(block["text"], f"block {i} (section)")
                if len(text) > SLACK_MAX_SECTION:
                    raise refuse(
                        f"block {i}: a section's text is over {SLACK_MAX_SECTION} characters"
                    )
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > SLACK_MAX_FIELDS:
                    raise refuse(f"block {i}: fields must be a list of at most 10")
                for field in fields:
                    _slack_text(field, f"block {i} (field)")
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                raise refuse(f"block {i}: a context needs 1 to 10 elements")


def _slack_text(value: Any, where: str, kinds: tuple[str, ...] = ("plain_text", "mrkdwn")) -> str:
    if (
        not isinstance(value, dict)
        or value.get("type") not in kinds
        or not isinstance(value.get("text"), str)
        or not value["text"]
    ):
        raise _Refuse(
            400, "invalid_blocks", f"{where}: a text object needs type {kinds} and a text"
        )
    text: str = value["text"]
    return text


# -- Teams -----------------------------------------------------------------------------------


def _check_teams(raw: bytes) -> None:
    if len(raw) > TEAMS_MAX_BYTES:
        raise _Refuse(413, "Request Entity Too Large", f"{len(raw)} bytes, over 28 KB")
    body = _json_or_none(raw)
    if not isinstance(body, dict):
        raise _Refuse(400, TEAMS_BAD_PAYLOAD, "the body is not a JSON object")
    if body.get("@type") == "MessageCard":
        if not any(isinstance(body.get(k), str) and body[k].strip() for k in ("summary", "text")):
            raise _Refuse(400, TEAMS_NO_TEXT, "a MessageCard needs summary or text")
        if not isinstance(body.get("sections", []), list):
            raise _Refuse(400, TEAMS_BAD_PAYLOAD, "sections is not a list")
        return
    if body.get("type") != "message":
        raise _Refuse(
            400,
            TEAMS_BAD_PAYLOAD,
            'neither {"@type": "MessageCard"} nor {"type": "message", "attachments": [...]}',
        )
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        raise _Refuse(400, TEAMS_BAD_PAYLOAD, "a message needs a non-empty attachments list")
    for i, attachment in enumerate(attachments):
        where = f"attachment {i}"
        if not isinstance(attachment, dict) or attachment.get("contentType") != ADAPTIVE_CARD:
            raise _Refuse(400, TEAMS_BAD_PAYLOAD, f"{where}: contentType is not {ADAPTIVE_CARD}")
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            raise _Refuse(
                400, TEAMS_BAD_PAYLOAD, f'{where}: content is not {{"type": "AdaptiveCard"}}'
            )
        if not isinstance(card.get("version"), str):
            raise _Refuse(400, TEAMS_BAD_PAYLOAD, f"{where}: the card has no version string")
        card_body = card.get("body", [])
        if not isinstance(card_body, list) or not all(
            isinstance(e, dict) and isinstance(e.get("type"), str) for e in card_body
        ):
            raise _Refuse(400, TEAMS_BAD_PAYLOAD, f"{where}: body is not a list of elements")


# -- helpers ---------------------------------------------------------------------------------


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _text(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(text, status=status, content_type=content_type)


def _phrase(status: int) -> Response:
    return _text(status, phrase(status))
