from __future__ import annotations

import pytest

# Its asserts report as a test's own do.
pytest.register_assert_rewrite("tests.fakes.helpers")

from tests.fakes.helpers import FakeClock  # noqa: E402


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
