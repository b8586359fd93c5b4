"""Plain records that go into and come out of a store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.states import DeliveryKind, Origin, WatchState


def target_name(
    kind: str, repository: str, workflow: str | None, ref: str | None, notifier: str | None
) -> str:
    """Where a delivery goes, as answers, logs and ``events show`` name it:
    ``github:owner/repo``, ``github:owner/repo/file@ref``, ``notify:name`` or
    ``wandb:entity/project/collection:version``."""
    if kind == DeliveryKind.NOTIFY:
        return f"notify:{notifier}"
    if kind == DeliveryKind.WANDB:
        return f"wandb:{repository}"
    if kind == DeliveryKind.WORKFLOW:
        return f"github:{repository}/{workflow}@{ref}"
    return f"github:{repository}"


MODEL_CHARS = 300  # the most of a model version's name the store keeps, for search


def model_of(fields: Mapping[str, Any]) -> str | None:
    """The model version an event names, as the store keeps it: the webhook fields'
    ``artifact_version_string`` (a string), cut to ``MODEL_CHARS`` characters."""
    value = fields.get("artifact_version_string")
    return value[:MODEL_CHARS] if isinstance(value, str) and value else None


@dataclass(frozen=True)
class NewEvent:
    id: str
    source: str
    endpoint: str  # "/repos/o/r/dispatches" or "/webhooks/<source>"
    received_at: float
    body: bytes = field(repr=False)
    body_sha256: str
    origin: str = Origin.WEBHOOK
    model: str | None = None  # see model_of


@dataclass(frozen=True)
class NewDelivery:
    id: str
    route: str
    repository: str
    event_type: str  # a notification: the outcome it announces
    client_payload: str  # the JSON text that will be sent (a workflow's inputs)
    kind: str = DeliveryKind.DISPATCH
    workflow: str | None = None
    ref: str | None = None
    notifier: str | None = None  # a notification: the notify entry's name


@dataclass(frozen=True)
class Accepted:
    """The result of storing an event: its id, or the id of the event it repeats.

    ``kept``: the ids of the deliveries queued. ``caught_up``: by route, the event under
    which catch-up already dispatched this change (that route's delivery was dropped).
    ``echo``: the webhook of the bridge's own write-back; no delivery was queued."""

    event_id: str
    duplicate_of: str | None = None
    kept: tuple[str, ...] = ()
    caught_up: dict[str, str] = field(default_factory=dict)
    echo: bool = False


@dataclass(frozen=True)
class Replayed:
    """What a replay of an event did: the deliveries it queued again, and those it left
    alone because they were queued or in flight already."""

    queued: list[str]
    pending: list[str]


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to one worker for one attempt."""

    id: str
    event_id: str
    repository: str
    event_type: str
    client_payload: str
    attempt: int  # the number of this attempt, counting from 1
    round_attempts: int  # attempts since the delivery was (re)queued, this one included
    round_started_at: float  # when it was (re)queued: max_age counts from here
    kind: str = DeliveryKind.DISPATCH
    workflow: str | None = None
    ref: str | None = None
    notifier: str | None = None
    route: str = ""


@dataclass(frozen=True)
class Attempt:
    """What happened on one attempt, as recorded."""

    attempt: int
    started_at: float
    finished_at: float
    status: int | None
    outcome: str  # an AttemptOutcome
    response: str
    wait: float | None = None
    worker: str = ""


@dataclass(frozen=True)
class Delivery:
    id: str
    event_id: str
    route: str
    repository: str
    event_type: str
    client_payload: str
    state: str  # a DeliveryState
    attempts: int
    due_at: float
    created_at: float
    updated_at: float
    finished_at: float | None
    last_status: int | None
    last_error: str | None
    kind: str = DeliveryKind.DISPATCH
    workflow: str | None = None
    ref: str | None = None
    notifier: str | None = None
    history: tuple[Attempt, ...] = ()
    watch: str | None = None  # the search for its runs (a WatchState)
    runs: tuple[Run, ...] = ()


@dataclass(frozen=True)
class NewRun:
    """A workflow run found for a delivery (GitHub's fields, times as epoch seconds)."""

    run_id: int
    workflow: str | None
    html_url: str | None
    status: str | None
    conclusion: str | None
    created_at: float | None
    updated_at: float | None


@dataclass(frozen=True)
class Run(NewRun):
    """A run the store follows, for the delivery that started it."""

    delivery_id: str
    event_id: str
    repository: str
    seen_at: float
    state: str  # a RunState: following, concluded or unknown
    etag: str | None = None
    checks: int = 0


@dataclass(frozen=True)
class Watch:
    """A delivered dispatch whose runs are being looked for."""

    delivery_id: str
    event_id: str
    repository: str
    kind: str
    workflow: str | None
    ref: str | None
    dispatched_at: float
    search_until: float
    etag: str | None
    checks: int
    found: tuple[int, ...] = ()  # run ids already known for it


@dataclass(frozen=True)
class Searched:
    """What one look for a watch's runs found, to record: runs ``found`` (with their
    triggering ``actors`` by run id), the watch's new state, when to look again."""

    watch: Watch
    due_at: float
    state: str = WatchState.SEARCHING
    found: Sequence[NewRun] = ()
    actors: Mapping[int, str] = field(default_factory=dict)
    etag: str | None = None
    notices: Sequence[NewDelivery] = ()


@dataclass(frozen=True)
class Event:
    id: str
    source: str
    endpoint: str
    received_at: float
    body: bytes = field(repr=False)
    deliveries: tuple[Delivery, ...] = ()
    origin: str = Origin.WEBHOOK
    model: str | None = None  # see model_of


@dataclass(frozen=True)
class CollectionSeen:
    """What one catch-up pass found changed in a registry collection since the last:
    items (see :mod:`bridge.routing.changes`) now there and no longer there."""

    collection: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaughtUp:
    """A change catch-up found that ``route`` dispatches: its event and deliveries,
    recorded unless the route's webhook (or an earlier pass) got there first, or
    ``echoes`` shows it is the bridge's own write-back."""

    event: NewEvent
    deliveries: tuple[NewDelivery, ...]
    route: str
    change: str
    echoes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PassResult:
    """What one catch-up pass records, in one transaction.

    ``baselines``: scopes read for the first time (their items recorded, nothing
    dispatched). ``forget``: collections gone from every scope. ``removed_changes``:
    change keys whose alias, tag or version is not in the registry any more (adding it
    again is a new change)."""

    baselines: tuple[str, ...] = ()
    collections: tuple[CollectionSeen, ...] = ()
    forget: tuple[str, ...] = ()
    removed_changes: tuple[str, ...] = ()
    caught_up: tuple[CaughtUp, ...] = ()
    # when the pass began reading W&B: a change recorded since (a webhook during the
    # pass) is newer than what the pass saw, and ``removed_changes`` leaves it alone
    read_at: float = float("inf")


@dataclass(frozen=True)
class Stats:
    """Counts for metrics and readiness."""

    by_state: dict[str, int]
    oldest_queued_at: float | None


# -- the operator console -------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """Which events the console lists (None: any).

    ``state``: a GitHub delivery (dispatch or workflow) of the event is in that state;
    ``run``: what became of its runs (a :class:`~bridge.states.RunFilter`);
    ``repository``, ``route``: a delivery of the event goes there (exactly);
    ``q``: text starting with ``evt_`` is an event id or the start of one, any other is
    part of the model version's name (case-insensitive)."""

    state: str | None = None
    run: str | None = None
    repository: str | None = None
    route: str | None = None
    q: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of events, newest first; ``next_before`` is the ``before`` of the next
    (older) page, None on the last."""

    events: tuple[Event, ...]
    next_before: str | None


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in console session (the store keys it by the hash of its id)."""

    label: str  # the admin token's origin, e.g. env:BRIDGE_ADMIN_TOKEN; never its value
    csrf: str
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class AdminAction:
    """One thing an admin did through the console."""

    at: float
    label: str
    action: str  # e.g. replay, replay_dead
    target: str  # a delivery id
    detail: str | None = None


@dataclass(frozen=True)
class WorkerSeen:
    """A delivery worker by its heartbeat."""

    owner: str
    started_at: float
    seen_at: float


@dataclass(frozen=True)
class Pause:
    """A rate-limit pause on a GitHub credential (its name, never the secret)."""

    credential: str
    until: float


@dataclass(frozen=True)
class BudgetUse:
    """Requests of a credential's hourly budget spent in the current hour."""

    credential: str
    window_start: float
    used: int  # 0 when the last window has ended


@dataclass(frozen=True)
class RecentError:
    """A delivery whose last attempt failed: where it went, when, what went wrong."""

    delivery_id: str
    event_id: str
    target: str
    state: str
    at: float
    message: str


@dataclass(frozen=True)
class NowReport:
    """What the console's Now page shows, read in one transaction."""

    by_state: dict[str, int]
    oldest_queued_at: float | None
    runs_followed: int
    searches: int  # dispatches whose runs are still looked for
    pauses: tuple[Pause, ...]  # those in force
    budget: tuple[BudgetUse, ...]
    errors: tuple[RecentError, ...]  # the latest first
    actions: tuple[AdminAction, ...]  # the latest first
    workers: tuple[WorkerSeen, ...]
