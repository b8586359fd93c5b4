"""Wake delivery workers on one machine through a named pipe beside the SQLite file.

Intake writes one byte after it commits; a waiting worker's poll() returns at once, so a
queued delivery is picked up without a polling delay. The pipe is only a hint: a lost
byte (no reader, a full pipe) costs at most the worker's fallback timeout, never an event.
"""

from __future__ import annotations

import errno
import os
import select
import stat


def ensure_pipe(path: str) -> None:
    try:
        os.mkfifo(path, 0o600)
    except FileExistsError:
        if not stat.S_ISFIFO(os.stat(path).st_mode):
            raise


def notify(path: str) -> None:
    """Wake one waiting worker, if any; never blocks, never fails the caller."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # ENXIO: no worker is listening; ENOENT: none has ever started
    try:
        os.write(fd, b"\x01")
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EPIPE):
            raise
    finally:
        os.close(fd)


class PipeWaiter:
    """A worker's end of the pipe. Opened read-write so it never sees end-of-file."""

    def __init__(self, path: str) -> None:
        ensure_pipe(path)
        self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)

    def wait(self, timeout: float) -> bool:
        """True when woken, False when ``timeout`` seconds passed first."""
        if not self._poll.poll(max(0.0, timeout) * 1000):
            return False
        try:
            while os.read(self._fd, 4096):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
