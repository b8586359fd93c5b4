"""SQL fragments that several of the store's modules use: which deliveries a statement
means, and what became of an event's runs. Literals, not parameters, so that the partial
indexes on pending and on finished rows apply to every plan (a generic prepared plan
cannot prove a parameter matches them)."""

from __future__ import annotations

from collections.abc import Iterable

from bridge.states import (
    GITHUB_KINDS,
    SUCCESS_CONCLUSIONS,
    DeliveryState,
    RunFilter,
    RunState,
    WatchState,
)


def _words(values: Iterable[str]) -> str:
    """``values`` as an SQL list of literals, ``('a', 'b')``, in a stable order. Only for
    the bridge's own words (they hold no quote)."""
    return "(" + ", ".join(f"'{v}'" for v in sorted(values)) + ")"


DELIVERY_COLS = (
    "id, event_id, route, repository, event_type, client_payload, state, attempts, due_at, "
    "created_at, updated_at, finished_at, last_status, last_error, kind, workflow, ref, "
    "notifier"
)
PENDING = f"state IN ('{DeliveryState.QUEUED}', '{DeliveryState.IN_FLIGHT}')"
FINISHED = f"state IN ('{DeliveryState.DELIVERED}', '{DeliveryState.DEAD}')"
# A delivery to GitHub (not a notification nor a write-back to W&B).
GITHUB = "kind IN (" + ", ".join(f"'{k}'" for k in GITHUB_KINDS) + ")"
_CONCLUDED = f"r.state = '{RunState.CONCLUDED}' AND "
_SUCCESS = f"r.conclusion IN {_words(SUCCESS_CONCLUSIONS)}"
_RUNS = "EXISTS (SELECT 1 FROM runs r WHERE r.event_id = e.id AND "
_WATCHES = "EXISTS (SELECT 1 FROM watches w WHERE w.event_id = e.id AND "
# Events by what became of the runs their dispatches started (``events list --run``, the
# console's run filter); ``e`` is the event. A run concluded without a conclusion (NULL)
# failed, as the run follower announces it.
RUN_FILTERS: dict[str, str] = {
    RunFilter.SUCCEEDED: f"{_RUNS}{_CONCLUDED}{_SUCCESS})",
    RunFilter.FAILED: f"{_RUNS}{_CONCLUDED}(r.conclusion IS NULL OR NOT {_SUCCESS}))",
    RunFilter.RUNNING: f"{_RUNS}r.state = '{RunState.FOLLOWING}')",
    RunFilter.NO_RUN: f"{_WATCHES}w.state = '{WatchState.NO_RUN}')",
    RunFilter.UNKNOWN: f"({_RUNS}r.state = '{RunState.UNKNOWN}') "
    f"OR {_WATCHES}w.state = '{WatchState.UNKNOWN}'))",
}
