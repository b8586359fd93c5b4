"""Durable storage of events, deliveries and attempts (SQLite or PostgreSQL).

:class:`~bridge.store.sql.SqlStore` holds the statements both backends share;
:mod:`bridge.store.sqlite` and :mod:`bridge.store.postgres` supply connections,
transactions and wake-ups; :mod:`bridge.store.migrations` the schema;
:mod:`bridge.store.wake` how waiting workers learn of new work.
"""

from __future__ import annotations

from bridge.store.sql import SqlStore, Waiter

__all__ = ["SqlStore", "Waiter", "open_store"]


def open_store(url: str) -> SqlStore:
    """The store a ``store:`` URL names; the schema is created or upgraded by ``migrate``
    (only upgraded by ``migrate(create=False)``, for commands that need an existing one)."""
    if url.startswith("sqlite:///"):
        from bridge.store.sqlite import SqliteStore

        return SqliteStore(url)
    from bridge.store.postgres import PostgresStore

    return PostgresStore(url)
