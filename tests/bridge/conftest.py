"""Fixtures for the bridge's tests: stores on every backend, running bridges."""

from __future__ import annotations

import pytest

from bridge.store import open_store


def _backend_urls(tmp_path):
    return {"sqlite": f"sqlite:///{tmp_path}/bridge.db"}


@pytest.fixture(params=["sqlite"])
def store_url(request, tmp_path):
    return _backend_urls(tmp_path)[request.param]


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
