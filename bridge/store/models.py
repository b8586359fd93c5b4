"""Plain records that go into and come out of a store."""

from __future__ import annotations

from dataclasses import dataclass, field

# Delivery states. ``in_flight`` rows belong to a worker until ``due_at`` (the lease end).
QUEUED, IN_FLIGHT, DELIVERED, DEAD = "queued", "in_flight", "delivered", "dead"
STATES = (QUEUED, IN_FLIGHT, DELIVERED, DEAD)
# Attempt outcomes.
OK, RETRY, GAVE_UP, ABANDONED = "delivered", "retry", "dead", "abandoned"
# Delivery kinds: a repository_dispatch, a workflow_dispatch, a notification, a write-back
# of a run's outcome to the W&B registry. GitHub's kinds are the workers' first lane.
DISPATCH, WORKFLOW, NOTIFY, WANDB = "dispatch", "workflow", "notify", "wandb"
GITHUB_KINDS = (DISPATCH, WORKFLOW)
# Where an event came from: a webhook W&B sent, or the bridge's catch-up of the registry.
WEBHOOK, CATCH_UP = "webhook", "catch_up"
# A watch looks for the runs a dispatch started: searching, then done or no_run.
SEARCHING, DONE, NO_RUN = "searching", "done", "no_run"
# A run is followed until it concludes, or until the bridge gives up on it (unknown).
FOLLOWING, CONCLUDED, UNKNOWN = "following", "concluded", "unknown"


def target_name(
    kind: str, repository: str, workflow: str | None, ref: str | None, notifier: str | None
) -> str:
    """Where a delivery goes, as answers, logs and ``events show`` name it:
    ``github:owner/repo``, ``github:owner/repo/file@ref``, ``notify:name`` or
    ``wandb:entity/project/collection:version``."""
    if kind == NOTIFY:
        return f"notify:{notifier}"
    if kind == WANDB:
        return f"wandb:{repository}"
    if kind == WORKFLOW:
        return f"github:{repository}/{workflow}@{ref}"
    return f"github:{repository}"


@dataclass(frozen=True)
class NewEvent:
    id: str
    source: str
    endpoint: str  # "/repos/o/r/dispatches" or "/webhooks/<source>"
    received_at: float
    body: bytes = field(repr=False)
    body_sha256: str
    origin: str = WEBHOOK


@dataclass(frozen=True)
class NewDelivery:
    id: str
    route: str
    repository: str
    event_type: str  # a notification: the outcome it announces
    client_payload: str  # the JSON text that will be sent (a workflow's inputs)
    kind: str = DISPATCH
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
    kind: str = DISPATCH
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
    outcome: str
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
    state: str
    attempts: int
    due_at: float
    created_at: float
    updated_at: float
    finished_at: float | None
    last_status: int | None
    last_error: str | None
    kind: str = DISPATCH
    workflow: str | None = None
    ref: str | None = None
    notifier: str | None = None
    history: tuple[Attempt, ...] = ()
    watch: str | None = None  # the search for its runs: searching, done or no_run
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
    state: str  # following, concluded or unknown
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
class Event:
    id: str
    source: str
    endpoint: str
    received_at: float
    body: bytes = field(repr=False)
    deliveries: tuple[Delivery, ...] = ()
    origin: str = WEBHOOK


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
