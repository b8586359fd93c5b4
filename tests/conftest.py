"""Settings for every test: hypothesis runs without its per-example deadline, because
the suite's machines are shared and noisy and a timed assertion there fails at random;
and the root logger is put back after each test."""

import logging

import pytest
from hypothesis import settings

settings.register_profile("bridge", deadline=None)
settings.load_profile("bridge")


@pytest.fixture(autouse=True)
def _root_logging_put_back():
    """A command run in-process (``bridge.cli.main``) configures logging for its process:
    a handler on the root logger writing to the ``sys.stderr`` of that moment, which is
    this test's capture. Put the root logger back, so no later test logs into a closed
    capture."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
