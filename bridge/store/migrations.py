"""The schema of each backend, one script per version; ``migrate`` runs those not yet run.

A script is split on ``;`` and run in one transaction with its version number. Never
edit a released script: add the next one. The two backends keep the same tables and
columns; SQLite clusters its tables on their keys (WITHOUT ROWID), with each delivery
keyed under its event.
"""

from __future__ import annotations


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


SQLITE: tuple[str, ...] = (
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
)

POSTGRES: tuple[str, ...] = (
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
)
