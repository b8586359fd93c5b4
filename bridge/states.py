"""The words the bridge stores for what an event, a delivery, an attempt and a run are
and became, each defined once.

Each is a ``StrEnum``: a member is the very string in the database (it compares and
hashes equal to it, and SQLite and psycopg bind it as that text), so the store's SQL is
built from these classes and rows written before them need no migration. Rows read back
hold plain strings, which compare equal to the members.

Nothing here imports the rest of the bridge: routing, the store, delivery and the
console all look down at it.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryState(StrEnum):
    """Where a delivery is. An ``in_flight`` one belongs to a worker until its
    ``due_at`` (the end of the lease); ``delivered`` and ``dead`` are final until a
    replay queues it again."""

    QUEUED = "queued"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    DEAD = "dead"


class AttemptOutcome(StrEnum):
    """What one attempt came to, as a delivery's history records it.

    An attempt that ends a delivery is named by the state it left the delivery in,
    ``delivered`` or ``dead`` (a permanent failure, or the last attempt allowed), so its
    history reads the same word as its state. ``retry``: a transient failure, tried
    again after the wait. ``abandoned``: its worker's lease ran out before the attempt
    was recorded (the delivery was claimed again). ``dry_run``: delivered under
    ``github.dry_run``, nothing sent."""

    DELIVERED = DeliveryState.DELIVERED.value
    RETRY = "retry"
    DEAD = DeliveryState.DEAD.value
    ABANDONED = "abandoned"
    DRY_RUN = "dry_run"


class DeliveryKind(StrEnum):
    """Where a delivery goes: a ``repository_dispatch``, a ``workflow_dispatch``, a
    notification, or a write-back of a run's outcome to the W&B registry."""

    DISPATCH = "dispatch"
    WORKFLOW = "workflow"
    NOTIFY = "notify"
    WANDB = "wandb"


# The deliveries to GitHub: the workers' first lane, the console's and ``--state``'s.
GITHUB_KINDS = (DeliveryKind.DISPATCH, DeliveryKind.WORKFLOW)


class Origin(StrEnum):
    """Where an event came from: a webhook W&B sent, or the bridge's catch-up of the
    registry."""

    WEBHOOK = "webhook"
    CATCH_UP = "catch_up"


class WatchState(StrEnum):
    """The search for the runs a delivered dispatch started: ``searching``, then
    ``done`` (found), ``no_run`` (none started in time) or ``unknown`` (the runs could
    not all be read, or GitHub refused the search)."""

    SEARCHING = "searching"
    DONE = "done"
    NO_RUN = "no_run"
    UNKNOWN = "unknown"


class RunState(StrEnum):
    """A run the bridge follows: ``following`` until it concludes, or ``unknown`` when
    the bridge gave up on it."""

    FOLLOWING = "following"
    CONCLUDED = "concluded"
    UNKNOWN = "unknown"


# The conclusions of a completed run that count as success (GitHub's words); any other
# conclusion is a failure. ``run_succeeded`` notifications, write-backs, the console and
# ``events list --run succeeded|failed`` all read this one set.
SUCCESS_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})


class RunFilter(StrEnum):
    """What became of an event's runs, as ``events list --run``, the admin API and the
    console filter events by."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RUNNING = "running"
    NO_RUN = "no_run"
    UNKNOWN = "unknown"
