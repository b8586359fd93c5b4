"""The schema of each backend, one script per version; ``migrate`` runs those not yet run.

A script is split on ``;`` and run in one transaction with its version number (or is
a function that runs its statements and fills new columns from the rows there). Never
edit a released script: add the next one. The two backends keep the same tables and
columns; SQLite clusters its tables on their keys (WITHOUT ROWID), with each delivery
keyed under its event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bridge.routing.routes import is_github_shaped
from bridge.store.models import model_of
from bridge.store.tx import Tx

# A version's script: SQL statements, or a function that runs its own (DDL and a backfill).
Script = str | Callable[[Tx], None]


def run_script(tx: Tx, script: Script) -> None:
    """Run one version's ``script`` inside the migration's transaction."""
    if callable(script):
        script(tx)
        return
    for statement in script.split(";"):
        if statement.strip():
            tx.cur.execute(statement)


def _runs_and_notifications(real: str) -> str:
    """6: workflow dispatches and notifications are deliveries too (``kind``); the runs a
    delivered dispatch started, the search for them, and the GitHub requests spent."""
    return f"""
    ALTER TABLE deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT 'dispatch';
    ALTER TABLE deliveries ADD COLUMN workflow TEXT;
    ALTER TABLE deliveries ADD COLUMN ref TEXT;
    ALTER TABLE deliveries ADD COLUMN notifier TEXT;
    CREATE TABLE watches (
        delivery_id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        repository TEXT NOT NULL,
        kind TEXT NOT NULL,
        workflow TEXT,
        ref TEXT,
        dispatched_at {real} NOT NULL,
        search_until {real} NOT NULL,
        state TEXT NOT NULL,
        etag TEXT,
        due_at {real} NOT NULL,
        lease_owner TEXT,
        checks INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX watches_due ON watches (due_at) WHERE state = 'searching';
    CREATE INDEX watches_event ON watches (event_id);
    CREATE TABLE runs (
        delivery_id TEXT NOT NULL,
        run_id BIGINT NOT NULL,
        event_id TEXT NOT NULL,
        repository TEXT NOT NULL,
        workflow TEXT,
        html_url TEXT,
        status TEXT,
        conclusion TEXT,
        created_at {real},
        updated_at {real},
        seen_at {real} NOT NULL,
        state TEXT NOT NULL,
        etag TEXT,
        due_at {real} NOT NULL,
        lease_owner TEXT,
        checks INTEGER NOT NULL DEFAULT 0,
        finished_at {real},
        PRIMARY KEY (delivery_id, run_id)
    );
    CREATE INDEX runs_due ON runs (due_at) WHERE state = 'following';
    CREATE INDEX runs_event ON runs (event_id);
    CREATE TABLE budget (
        credential TEXT PRIMARY KEY,
        window_start {real} NOT NULL,
        used INTEGER NOT NULL
    );
    """


def _one_dispatch_per_run() -> str:
    """7: a run belongs to at most one dispatch (runs attributed twice before keep their
    first delivery), and the run's triggering actor is kept."""
    return """
    DELETE FROM runs WHERE EXISTS (
        SELECT 1 FROM runs AS other
        WHERE other.run_id = runs.run_id AND other.delivery_id < runs.delivery_id
    );
    CREATE UNIQUE INDEX runs_one_dispatch ON runs (run_id);
    ALTER TABLE runs ADD COLUMN actor TEXT;
    CREATE INDEX runs_actor ON runs (seen_at) WHERE actor IS NOT NULL
    """


def _pending_by_lane() -> str:
    """8: the workers claim GitHub's deliveries and notifications apart (each lane its own
    slots); each lane finds its due rows in an index of its own, so a backlog of one kind
    is never scanned by the other's look for work. They replace the index of all pending
    rows: a row is in one index, as before."""
    return """
    CREATE INDEX deliveries_pending_github ON deliveries (due_at)
        WHERE state IN ('queued', 'in_flight') AND kind <> 'notify';
    CREATE INDEX deliveries_pending_notify ON deliveries (due_at)
        WHERE state IN ('queued', 'in_flight') AND kind = 'notify';
    DROP INDEX deliveries_pending
    """


def _registry(real: str, clustered: str) -> str:
    """9: where an event came from (a webhook or catch-up); each registry change once per
    route (``changes``); what catch-up has seen of the registry; the bridge's own
    write-backs, to know their webhooks (``echoes``); one catch-up pass at a time
    (``leases``). The workers' lanes become GitHub's kinds and the rest (notifications and
    write-backs to W&B)."""
    return f"""
    ALTER TABLE events ADD COLUMN origin TEXT NOT NULL DEFAULT 'webhook';
    CREATE TABLE changes (
        route TEXT NOT NULL,
        change TEXT NOT NULL,
        origin TEXT NOT NULL,
        event_id TEXT NOT NULL,
        seen_at {real} NOT NULL,
        PRIMARY KEY (route, change)
    ){clustered};
    CREATE INDEX changes_change ON changes (change);
    CREATE INDEX changes_event ON changes (event_id);
    CREATE TABLE registry_seen (
        collection TEXT NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY (collection, item)
    ){clustered};
    CREATE TABLE registry_scopes (scope TEXT PRIMARY KEY, baseline_at {real} NOT NULL){clustered};
    CREATE TABLE echoes (item TEXT PRIMARY KEY, until_at {real} NOT NULL){clustered};
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        owner TEXT,
        until_at {real} NOT NULL,
        done_at {real}
    ){clustered};
    DROP INDEX deliveries_pending_github;
    DROP INDEX deliveries_pending_notify;
    CREATE INDEX deliveries_pending_github ON deliveries (due_at)
        WHERE state IN ('queued', 'in_flight') AND kind IN ('dispatch', 'workflow');
    CREATE INDEX deliveries_pending_other ON deliveries (due_at)
        WHERE state IN ('queued', 'in_flight') AND kind NOT IN ('dispatch', 'workflow')
    """


def _console(real: str, serial: str, clustered: str, first: str = "") -> Script:
    """10: the operator console. Each event's model version (``model``, for search),
    filled from the stored bodies; console sessions, the sign-in throttle, the log of
    admins' actions, and the delivery workers' heartbeats.

    Indexes, for the console's events page with 100,000 events (bench/console.py; each
    checked with EXPLAIN): a filter on deliveries reads its events' ids from an index
    and looks each event up, instead of scanning every event for a rare match (a
    repository with a few events took 40 ms, then 1 ms).

    - ``deliveries_finished`` also holds each row's event id (and delivery id): the
      dead deliveries' events come from the index, and a dead delivery is found by its
      id alone (a replay from the console) among the dead rows.
    - ``deliveries_repository``, ``deliveries_route``: deliveries by repository and by
      route, with their event ids. Neither column ever changes, so these cost one index
      entry each per delivery inserted and nothing after. Not partial: SQLite, whose
      tables are never ANALYZEd, then picks the small pending index for the queued and
      in-flight filters rather than a partial index of all dispatches.
    - ``deliveries_failing``: the latest failures, for the Now page, without a scan.
    - ``runs_state``, ``watches_state``: the few runs given up on (or still followed)
      and searches without a run, for the run filters.

    On PostgreSQL the event ids of ``runs`` and ``watches`` take the collation of
    ``events.id`` ("C"): compared with another collation, an event's runs could not be
    found through their index, and each run filter read every run (150 ms).

    A search in model names (a substring) reads the events newest first until a page is
    full: a name that few or no events have reads them all (about 40 ms at 100,000 on
    SQLite; bench/README.md)."""
    ddl = f"""{first}
    ALTER TABLE events ADD COLUMN model TEXT;
    CREATE TABLE console_sessions (
        id_hash TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_at {real} NOT NULL,
        expires_at {real} NOT NULL
    ){clustered};
    CREATE TABLE sign_in_failures (
        address TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        window_start {real} NOT NULL
    ){clustered};
    CREATE TABLE admin_actions (
        id {serial} PRIMARY KEY,
        at {real} NOT NULL,
        label TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT
    );
    CREATE TABLE workers (
        owner TEXT PRIMARY KEY,
        started_at {real} NOT NULL,
        seen_at {real} NOT NULL
    ){clustered};
    DROP INDEX deliveries_finished;
    CREATE INDEX deliveries_finished ON deliveries (state, event_id, id)
        WHERE state IN ('delivered', 'dead');
    CREATE INDEX deliveries_repository ON deliveries (repository, event_id);
    CREATE INDEX deliveries_route ON deliveries (route, event_id);
    CREATE INDEX deliveries_failing ON deliveries (updated_at) WHERE last_error IS NOT NULL;
    CREATE INDEX runs_state ON runs (state, event_id);
    CREATE INDEX watches_state ON watches (state, event_id)
    """

    def migrate(tx: Tx) -> None:
        run_script(tx, ddl)
        _backfill_models(tx)

    return migrate


def model_in_body(body: bytes) -> str | None:
    """The model version a stored body names (see ``model_of``), from a flat body or a
    GitHub-shaped one's ``client_payload``; None when it names none or is not JSON."""
    try:
        obj: Any = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    return model_of(obj["client_payload"] if is_github_shaped(obj) else obj)


def _backfill_models(tx: Tx) -> None:
    """Fill ``events.model`` from the bodies, a batch of events at a time."""
    after = ""
    while True:
        rows = tx.run(
            "SELECT id, body FROM events WHERE id > ? ORDER BY id LIMIT 500", (after,)
        ).fetchall()
        if not rows:
            return
        for event_id, body in rows:
            model = model_in_body(bytes(body))
            if model is not None:
                tx.run("UPDATE events SET model = ? WHERE id = ?", (model, event_id))
        after = rows[-1][0]


SQLITE: tuple[Script, ...] = (
    """
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        received_at REAL NOT NULL,
        body_sha256 TEXT NOT NULL,
        body BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE dedupe (
        source TEXT NOT NULL,
        body_sha256 TEXT NOT NULL,
        event_id TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (source, body_sha256)
    ) WITHOUT ROWID;
    CREATE TABLE deliveries (
        id TEXT NOT NULL,
        event_id TEXT NOT NULL REFERENCES events (id),
        route TEXT NOT NULL,
        repository TEXT NOT NULL,
        event_type TEXT NOT NULL,
        client_payload TEXT NOT NULL,
        state TEXT NOT NULL,
        due_at REAL NOT NULL,
        lease_owner TEXT,
        attempts INTEGER NOT NULL,
        round_attempts INTEGER NOT NULL,
        round_started_at REAL NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL,
        last_status INTEGER,
        last_error TEXT,
        PRIMARY KEY (event_id, id)
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_pending ON deliveries (due_at) WHERE state IN ('queued', 'in_flight');
    CREATE INDEX deliveries_state ON deliveries (state);
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        delivery_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL NOT NULL,
        status INTEGER,
        outcome TEXT NOT NULL,
        response TEXT,
        wait REAL,
        worker TEXT
    );
    CREATE INDEX attempts_delivery ON attempts (delivery_id, attempt);
    """,
    # 2: the state index holds finished rows only; pending rows have their own index.
    """
    DROP INDEX deliveries_state;
    CREATE INDEX deliveries_finished ON deliveries (state) WHERE state IN ('delivered', 'dead');
    """,
    # 3: dedupe per source, request path and body (it was per source and body). Old rows
    # take their event's path; a row whose event was pruned is long out of any window.
    """
    CREATE TABLE dedupe_by_path (
        source TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        body_sha256 TEXT NOT NULL,
        event_id TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (source, endpoint, body_sha256)
    ) WITHOUT ROWID;
    INSERT INTO dedupe_by_path (source, endpoint, body_sha256, event_id, seen_at)
        SELECT d.source, e.endpoint, d.body_sha256, d.event_id, d.seen_at
        FROM dedupe d JOIN events e ON e.id = d.event_id;
    DROP TABLE dedupe;
    ALTER TABLE dedupe_by_path RENAME TO dedupe;
    """,
    # 4: rate-limit pauses, one per GitHub credential, shared by every worker.
    """
    CREATE TABLE pauses (credential TEXT PRIMARY KEY, until_at REAL NOT NULL) WITHOUT ROWID;
    """,
    # 5: one row that readiness checks rewrite, to learn whether a write commits.
    """
    CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), beat_at REAL NOT NULL);
    INSERT INTO heartbeat (id, beat_at) VALUES (1, 0);
    """,
    _runs_and_notifications("REAL"),
    _one_dispatch_per_run(),
    _pending_by_lane(),
    _registry("REAL", " WITHOUT ROWID"),
    _console("REAL", "INTEGER", " WITHOUT ROWID"),
)

POSTGRES: tuple[Script, ...] = (
    """
    CREATE TABLE events (
        id TEXT COLLATE "C" PRIMARY KEY,
        source TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        body_sha256 TEXT NOT NULL,
        body BYTEA NOT NULL
    );
    CREATE TABLE dedupe (
        source TEXT NOT NULL,
        body_sha256 TEXT NOT NULL,
        event_id TEXT NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (source, body_sha256)
    );
    CREATE TABLE deliveries (
        id TEXT COLLATE "C" NOT NULL,
        event_id TEXT COLLATE "C" NOT NULL REFERENCES events (id),
        route TEXT NOT NULL,
        repository TEXT NOT NULL,
        event_type TEXT NOT NULL,
        client_payload TEXT NOT NULL,
        state TEXT NOT NULL,
        due_at DOUBLE PRECISION NOT NULL,
        lease_owner TEXT,
        attempts INTEGER NOT NULL,
        round_attempts INTEGER NOT NULL,
        round_started_at DOUBLE PRECISION NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        last_status INTEGER,
        last_error TEXT,
        PRIMARY KEY (event_id, id)
    );
    CREATE INDEX deliveries_pending ON deliveries (due_at) WHERE state IN ('queued', 'in_flight');
    CREATE INDEX deliveries_state ON deliveries (state);
    CREATE TABLE attempts (
        id BIGSERIAL PRIMARY KEY,
        delivery_id TEXT COLLATE "C" NOT NULL,
        attempt INTEGER NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION NOT NULL,
        status INTEGER,
        outcome TEXT NOT NULL,
        response TEXT,
        wait DOUBLE PRECISION,
        worker TEXT
    );
    CREATE INDEX attempts_delivery ON attempts (delivery_id, attempt);
    """,
    # 2: the state index holds finished rows only; pending rows have their own index.
    """
    DROP INDEX deliveries_state;
    CREATE INDEX deliveries_finished ON deliveries (state) WHERE state IN ('delivered', 'dead');
    """,
    # 3: dedupe per source, request path and body (it was per source and body). Old rows
    # take their event's path; a row whose event was pruned is long out of any window.
    """
    ALTER TABLE dedupe ADD COLUMN endpoint TEXT;
    UPDATE dedupe SET endpoint = events.endpoint FROM events WHERE events.id = dedupe.event_id;
    DELETE FROM dedupe WHERE endpoint IS NULL;
    ALTER TABLE dedupe ALTER COLUMN endpoint SET NOT NULL;
    ALTER TABLE dedupe DROP CONSTRAINT dedupe_pkey;
    ALTER TABLE dedupe ADD PRIMARY KEY (source, endpoint, body_sha256);
    """,
    # 4: rate-limit pauses, one per GitHub credential, shared by every worker.
    """
    CREATE TABLE pauses (credential TEXT PRIMARY KEY, until_at DOUBLE PRECISION NOT NULL);
    """,
    # 5: one row that readiness checks rewrite, to learn whether a write commits.
    """
    CREATE TABLE heartbeat (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        beat_at DOUBLE PRECISION NOT NULL
    );
    INSERT INTO heartbeat (id, beat_at) VALUES (1, 0);
    """,
    _runs_and_notifications("DOUBLE PRECISION"),
    _one_dispatch_per_run(),
    _pending_by_lane(),
    _registry("DOUBLE PRECISION", ""),
    _console(
        "DOUBLE PRECISION",
        "BIGSERIAL",
        "",
        """
        ALTER TABLE runs ALTER COLUMN event_id TYPE TEXT COLLATE "C";
        ALTER TABLE watches ALTER COLUMN event_id TYPE TEXT COLLATE "C";
        """,
    ),
)
