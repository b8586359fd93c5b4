"""Wait for a condition without a timed assertion: poll it with a short sleep until it
holds or a deadline passes, then fail saying what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class NeverHappened(AssertionError):
    """The condition :func:`wait_until` waited for did not hold before its deadline.

    An ``AssertionError``, so that pytest reports it as a failed check."""


def wait_until(
    condition: Callable[[], T],
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.05,
) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something true, and
    return that; raise :class:`NeverHappened` naming ``what`` after ``timeout`` seconds
    (``condition`` is called once more at the deadline, so a slow machine only waits)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise NeverHappened(f"{what}: not so after {timeout:g} s")
        time.sleep(interval)
