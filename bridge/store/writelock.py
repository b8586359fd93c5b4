"""One SQLite writer at a time, across processes and threads, woken without polling.

SQLite's own busy handler sleeps and retries (1, 2, 5, 10 ms ...), so writers that
collide in several gunicorn processes spend more time asleep than writing. A kernel
``flock`` on a file beside the database queues them instead and wakes the next one the
moment the lock is free. SQLite's lock is still taken inside it; this only orders the
queue. Readers never take it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from types import TracebackType


class WriteLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._pid = -1
        self._fd = -1
        self._threads = threading.Lock()

    def _fd_here(self) -> int:
        if self._pid != os.getpid():  # after a fork: our own descriptor, our own lock
            self._threads = threading.Lock()
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def __enter__(self) -> WriteLock:
        fd = self._fd_here()
        self._threads.acquire()  # flock does not exclude threads sharing one descriptor
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def close(self) -> None:
        if self._pid == os.getpid() and self._fd >= 0:
            os.close(self._fd)
        self._fd, self._pid = -1, -1
