"""The download threads' read buffers: large, reused across files, bounded in total.

Each thread reads bodies into its own ``BUFFERS`` buffers in turn, so that one piece
stays intact while it is hashed and the next is read into the other. They are made
once per thread: a fresh (zeroed) buffer per file costs more than a small file's read.
"""

from __future__ import annotations

import threading

CHUNK_SIZE = 1 << 22  # 4 MiB: fewer trips through Python and the kernel per byte
BUFFERS = 2  # per thread: one is read into while the other's piece is hashed
BUFFER_BUDGET = 1 << 26  # 64 MiB for all threads' buffers, whatever the concurrency


def chunk_size_for(concurrency: int) -> int:
    """CHUNK_SIZE, smaller when that many threads' buffers would pass BUFFER_BUDGET."""
    return max(1 << 16, min(CHUNK_SIZE, BUFFER_BUDGET // (BUFFERS * max(1, concurrency))))


class ThreadBuffers:
    """``BUFFERS`` buffers of ``size`` bytes for each thread that asks."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._local = threading.local()

    def get(self) -> tuple[memoryview, ...]:
        """The calling thread's buffers, made on its first call."""
        views: tuple[memoryview, ...] | None = getattr(self._local, "views", None)
        if views is None:
            views = tuple(memoryview(bytearray(self.size)) for _ in range(BUFFERS))
            self._local.views = views
        return views
