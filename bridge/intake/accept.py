"""Accept one webhook: run the checks in order, commit the event, say what was queued.

Refusals are raised (:class:`~bridge.errors.RequestRefused`) and rendered by the app's
one error handler; the 202 is only built after the store has committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from bridge.errors import RequestRefused
from bridge.ids import new_id
from bridge.intake import checks
from bridge.routing.changes import echo_items, webhook_change
from bridge.routing.limits import ROUTE_KEY, PlannedDispatch
from bridge.routing.routes import unknown_route, webhook_fields
from bridge.services import Services
from bridge.states import DeliveryState
from bridge.store.models import NewDelivery, NewEvent, model_of, target_name

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Request:
    """The parts of an HTTP request that intake looks at."""

    path: str
    content_type: str | None
    content_length: int | None
    authorization: str | None
    signature: str | None  # X-Wandb-Signature
    stream: IO[bytes]


@dataclass(frozen=True)
class Result:
    """What the request produced: a new event, or the event it duplicates.

    A new event may still queue nothing: ``duplicates`` names, per route, the caught-up
    event that already dispatched the same change; ``ignored`` says why nothing at all
    was queued when it is not for want of a matching route."""

    source: str
    event_id: str
    deliveries: tuple[NewDelivery, ...] = ()
    duplicate: bool = False
    duplicates: tuple[tuple[str, str], ...] = ()  # (route, event id)
    ignored: str | None = None


def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``limit`` (never read whole)."""
    checks.check_size(request.content_length, limit)
    chunks, size = [], 0
    try:
        while request.content_length is None or size < request.content_length:
            chunk = request.stream.read(min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            checks.check_size(size, limit)
    except RequestRefused:
        raise
    except Exception as exc:  # the server's parser: bad chunked framing, a client gone
        raise RequestRefused(
            400,
            "unreadable_body",
            "the request body could not be read (malformed chunked encoding or a "
            "connection closed early); send the body again",
        ) from exc
    if request.content_length is not None and size < request.content_length:
        raise RequestRefused(
            400,
            "unreadable_body",
            f"the body ended after {size} of the {request.content_length} bytes its "
            "Content-Length announced; send the body again",
        )
    return b"".join(chunks)


def accept(svc: Services, request: Request, *, source: str | None = None,
           repository: tuple[str, str] | None = None) -> Result:  # fmt: skip
    """Run ``request`` for ``/webhooks/<source>`` or the drop-in path of ``repository``
    (owner, name) through every check, and commit it."""
    config = svc.config
    body = read_body(request, config.max_body_bytes)
    checks.check_content_type(request.content_type)
    sources = [checks.find_source(config, source)] if source else list(config.sources.values())
    matched = checks.authenticate(
        sources,
        request.authorization,
        request.signature,
        body,
    )
    obj = checks.parse_object(body)
    event_id = new_id("evt", svc.clock())
    fields = webhook_fields(obj, event_id)  # what routes, change keys and echoes read
    if repository is not None:
        planned = checks.plan_passthrough(config, repository, obj, event_id)
    else:
        planned = checks.plan_webhook(config, matched, fields)
    return _commit(svc, matched.name, request.path, event_id, body, planned, fields)


def to_deliveries(
    planned: list[PlannedDispatch], now: float, make_id: Callable[[str, float], str] = new_id
) -> tuple[NewDelivery, ...]:
    """The deliveries to store for ``planned`` dispatches (a webhook's, or catch-up's)."""
    return tuple(
        NewDelivery(
            make_id("dlv", now),
            p.route,
            p.repository,
            p.event_type,
            p.payload_json,
            kind=p.kind,
            workflow=p.workflow,
            ref=p.ref,
        )
        for p in planned
    )


def _commit(
    svc: Services,
    source: str,
    path: str,
    event_id: str,
    body: bytes,
    planned: list[PlannedDispatch],
    fields: dict[str, Any],
) -> Result:
    now = svc.clock()
    digest = hashlib.sha256(body).hexdigest()
    event = NewEvent(event_id, source, path, now, body, digest, model=model_of(fields))
    deliveries = to_deliveries(planned, now)
    # A managed automation's webhook names one change: catch-up may have dispatched it,
    # or may find it later (catch-up stands in for managed automations only).
    change = webhook_change(fields) if ROUTE_KEY in fields else None
    changes = {d.id: change for d in deliveries} if change else None
    echoes = echo_items(fields)
    accepted = svc.store.accept(
        event, list(deliveries), svc.config.dedupe_window, changes=changes, echoes=echoes
    )
    if accepted.duplicate_of is not None:
        svc.metrics.received(source, "duplicate")
        return Result(source, accepted.duplicate_of, duplicate=True)
    svc.metrics.received(source, "accepted")
    kept = tuple(d for d in deliveries if d.id in accepted.kept)
    ignored = None
    if accepted.echo:
        ignored = (
            "W&B sent this for the bridge's own write-back (it added that alias or tag "
            "when a run ended); it is recorded and never dispatched"
        )
    elif not deliveries and (named := unknown_route(svc.config.routes, fields)) is not None:
        ignored = (
            f"the automation that sent it was made for route {named[:100]!r}, which this "
            "bridge's config has no more; run `wandb-bridge wandb apply` to update W&B"
        )
    return Result(
        source,
        event_id,
        kept,
        duplicates=tuple(sorted(accepted.caught_up.items())),
        ignored=ignored,
    )


def target(d: NewDelivery) -> str:
    return target_name(d.kind, d.repository, d.workflow, d.ref, d.notifier)


def answer(result: Result) -> tuple[dict[str, Any], int]:
    """The JSON body and status W&B gets for ``result``."""
    if result.duplicate:
        return {"duplicate_of": result.event_id}, 200
    deliveries = [
        {"id": d.id, "target": target(d), "event_type": d.event_type, "state": DeliveryState.QUEUED}
        for d in result.deliveries
    ]
    body: dict[str, Any] = {"event_id": result.event_id, "deliveries": deliveries}
    if result.duplicates:  # a change catch-up dispatched first: not again
        body["duplicates"] = [{"route": r, "event_id": e} for r, e in result.duplicates]
    if result.ignored:
        body["ignored"] = result.ignored
    return body, 202
