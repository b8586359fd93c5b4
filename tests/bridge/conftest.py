"""Fixtures for the bridge's tests: stores on every backend, running bridges."""

from __future__ import annotations

import os

import pytest

from bridge.store import open_store
from harness import pg

# --- store backends: SQLite and PostgreSQL (server: harness/pg.py) -----------------------
#
# ``postgres_server`` (session): a harness.pg.PostgresServer; ``.new_database()`` returns the
#     URL of a new, empty database on it. Skips when there is no server, fails under CI=true.
# ``postgres_url``: the URL of a fresh database for one test, dropped after it.
# ``store_url``: one store URL per backend, "sqlite" and "postgresql" (marked ``postgres``).

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def postgres_unavailable(reason: str) -> None:
    """Skip a test that needs PostgreSQL; under CI=true, where it must run, fail it."""
    message = f"PostgreSQL tests need a server: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: .ci/run must provide PostgreSQL)", pytrace=False)
    pytest.skip(f"{message}\nTo run them: {pg.HOW_TO_ENABLE}")


@pytest.fixture(scope="session")
def postgres_server():
    server, reason = pg.start()
    if server is None:
        postgres_unavailable(reason)
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres_server):
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path}/bridge.db"


# --- end of store backends ------------------------------------------------------------


@pytest.fixture
def store_factory(store_url):
    opened = []

    def make():
        s = open_store(store_url)
        opened.append(s)
        return s

    make().migrate()
    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(store_factory):
    return store_factory()


@pytest.fixture
def sqlite_store(tmp_path):
    """A migrated SQLite store alone, for what only SQLite has (its file, its locking)."""
    store = open_store(f"sqlite:///{tmp_path}/bridge.db")
    store.migrate()
    yield store
    store.close()
