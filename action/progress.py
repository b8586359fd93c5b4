"""Progress lines for long downloads: bytes done, share, rate, at a fixed interval.

Downloads that finish within one interval print nothing; the default interval (10 s)
keeps a multi-gigabyte download to a few dozen lines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from action.commands import Console

Clock = Callable[[], float]


def human_bytes(count: float) -> str:
    """``1.5 GiB``-style sizes."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Thread-safe byte counter that logs at most once per ``interval`` seconds."""

    def __init__(self, total: int, *, interval: float, clock: Clock, console: Console) -> None:
        self.total = total
        self.done = 0
        self._interval = interval
        self._clock = clock
        self._console = console
        self._lock = threading.Lock()
        self._start = clock()
        self._last = self._start

    def add(self, count: int) -> None:
        line = None
        with self._lock:
            self.done += count
            now = self._clock()
            if count > 0 and now - self._last >= self._interval:
                self._last = now
                line = self._line(now)
        if line:
            self._console.line(line)

    def _line(self, now: float) -> str:
        elapsed = max(now - self._start, 1e-9)
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        return (
            f"progress: {human_bytes(self.done)} of {human_bytes(self.total)}{share}, "
            f"{human_bytes(self.done / elapsed)}/s"
        )
