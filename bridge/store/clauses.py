"""SQL fragments that several of the store's modules use: which deliveries a statement
means, and what became of an event's runs. Literals, not parameters, so that the partial
indexes on pending and on finished rows apply to every plan (a generic prepared plan
cannot prove a parameter matches them)."""

from __future__ import annotations

from bridge.store.models import DEAD, DELIVERED, GITHUB_KINDS, IN_FLIGHT, QUEUED

DELIVERY_COLS = (
    "id, event_id, route, repository, event_type, client_payload, state, attempts, due_at, "
    "created_at, updated_at, finished_at, last_status, last_error, kind, workflow, ref, "
    "notifier"
)
PENDING = f"state IN ('{QUEUED}', '{IN_FLIGHT}')"
FINISHED = f"state IN ('{DELIVERED}', '{DEAD}')"
# A delivery to GitHub (not a notification nor a write-back to W&B).
GITHUB = "kind IN (" + ", ".join(f"'{k}'" for k in GITHUB_KINDS) + ")"
_SUCCEEDED = "('success', 'neutral', 'skipped')"
# Events by what became of the runs their dispatches started (``events list --run``, the
# console's run filter); ``e`` is the event.
RUN_FILTERS = {
    "succeeded": "EXISTS (SELECT 1 FROM runs r WHERE r.event_id = e.id "
    f"AND r.state = 'concluded' AND r.conclusion IN {_SUCCEEDED})",
    "failed": "EXISTS (SELECT 1 FROM runs r WHERE r.event_id = e.id "
    f"AND r.state = 'concluded' AND r.conclusion NOT IN {_SUCCEEDED})",
    "running": "EXISTS (SELECT 1 FROM runs r WHERE r.event_id = e.id AND r.state = 'following')",
    "no_run": "EXISTS (SELECT 1 FROM watches w WHERE w.event_id = e.id AND w.state = 'no_run')",
    "unknown": "(EXISTS (SELECT 1 FROM runs r WHERE r.event_id = e.id AND r.state = 'unknown') "
    "OR EXISTS (SELECT 1 FROM watches w WHERE w.event_id = e.id AND w.state = 'unknown'))",
}
