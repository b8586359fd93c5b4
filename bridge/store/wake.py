"""Waking delivery workers when work is queued, so none waits for a polling tick.

Two paths, both only hints (a lost wake-up costs a worker's fallback timeout, never an
event):

- In this process, a :class:`Bell` per database: a commit rings it and every waiter of
  that database here wakes at once, whichever store object made the commit (the app and
  the delivery worker each open their own).
- From other processes, a listener thread per process and database rings the same bell:
  for SQLite it reads a named pipe beside the database file (``notify`` writes to it
  after a commit); PostgreSQL LISTENs (see :mod:`bridge.store.postgres`). A process
  that has a worker of its own leaves the others be: its own worker takes the work, with
  no system call per commit (``serve`` runs one in every process).

A committer tags its pipe bytes or NOTIFY payload with this process's token, and the
listener skips its own: those waiters were rung directly already.
"""

from __future__ import annotations

import logging
import os
import secrets
import select
import stat
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Protocol

log = logging.getLogger(__name__)

TOKEN_BYTES = 8  # one token per pipe write: well under PIPE_BUF, so writes never interleave
POLL_SECONDS = 1.0  # how often a listener looks whether its waiters are all gone


class Waiter(Protocol):
    """Blocks a worker until work may have arrived (or the timeout passes)."""

    def wait(self, timeout: float) -> bool: ...
    def close(self) -> None: ...


# Keyed by (pid, database): a child after fork() starts with bells of its own, never with
# one whose lock a parent's thread held at the fork. dict.setdefault is atomic.
_bells: dict[tuple[int, str], Bell] = {}
_tokens: dict[int, bytes] = {}


def bell(database: str) -> Bell:
    """This process's bell for ``database`` (a file's real path, or host:port/name)."""
    key = (os.getpid(), database)
    found = _bells.get(key)
    return found if found is not None else _bells.setdefault(key, Bell())


def process_token() -> bytes:
    """A random token naming this process (pids repeat across hosts and containers)."""
    pid = os.getpid()
    found = _tokens.get(pid)
    return found if found is not None else _tokens.setdefault(pid, secrets.token_bytes(TOKEN_BYTES))


class Bell:
    """A counter under a condition: ringing bumps it and wakes every waiter."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rung = 0
        self._waiters = 0
        self._listener: threading.Thread | None = None

    def ring(self) -> None:
        with self._cond:
            self._rung += 1
            self._cond.notify_all()

    def has_waiters(self) -> bool:
        """Whether a worker of this process waits on this bell (and so will take work)."""
        with self._cond:
            return self._waiters > 0

    def waiter(self, listen: Callable[[Bell], None]) -> BellWaiter:
        """A new waiter. Starts ``listen(bell)`` in a thread unless one runs already; it
        should return once ``listening()`` is False."""
        with self._cond:
            self._waiters += 1
            if self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(
                    target=listen, args=(self,), daemon=True, name="store-wake-listener"
                )
                self._listener.start()
            return BellWaiter(self, self._rung)

    def listening(self) -> bool:
        """Whether a listener should go on: False (and it must stop) once no waiter is left."""
        with self._cond:
            if self._waiters == 0 and self._listener is threading.current_thread():
                self._listener = None
            return self._listener is threading.current_thread()

    def _wait(self, waiter: BellWaiter, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(
                lambda: self._rung != waiter._seen or not waiter._open, max(0.0, timeout)
            )
            return self._rung

    def _release(self) -> None:
        with self._cond:
            self._waiters -= 1
            self._cond.notify_all()  # a wait on the closed waiter returns now


class BellWaiter:
    """One worker's view of a bell: woken by rings after the last one it saw."""

    def __init__(self, bell: Bell, seen: int) -> None:
        self._bell = bell
        self._seen = seen
        self._open = True

    def wait(self, timeout: float) -> bool:
        """True when rung since the last wait (or since created), False after ``timeout``
        or once the waiter is closed (closing it from another thread ends a wait at once)."""
        rung = self._bell._wait(self, timeout)
        woken, self._seen = rung != self._seen, rung
        return woken

    def close(self) -> None:
        with self._bell._cond:
            if not self._open:
                return
            self._open = False
        self._bell._release()


# -- SQLite: a named pipe beside the database ----------------------------------------------


def notify(path: str) -> None:
    """Wake a worker in another process through the pipe at ``path``, if one listens.

    Never blocks and never raises: the caller's transaction is committed already, and a
    wake-up is only a hint. Writes nothing unless ``path`` is a pipe.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except Exception:  # ENXIO: nobody listens; ENOENT: nobody ever did; and anything odd
        return
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, process_token())
    except Exception:  # EAGAIN: the pipe is full, so a wake-up is pending anyway
        return
    finally:
        with suppress(OSError):
            os.close(fd)


def listen_to_pipe(path: str, bell: Bell) -> None:
    """A SQLite database's listener: ring ``bell`` for bytes other processes write to the
    pipe at ``path``, until ``bell.listening()`` ends."""
    own, fd, failing = process_token(), -1, False
    try:
        while bell.listening():
            try:
                if fd < 0:
                    fd = _open_pipe(path)
                poll = select.poll()
                poll.register(fd, select.POLLIN)
                if poll.poll(POLL_SECONDS * 1000) and _drain(fd).replace(own, b""):
                    bell.ring()
                failing = False
            except OSError as exc:
                if not failing:
                    log.warning(
                        "cannot listen on the wake-up pipe %s (%s); workers in this process "
                        "see work queued by other processes only when they poll",
                        path,
                        exc,
                    )
                failing = True
                if fd >= 0:
                    os.close(fd)
                    fd = -1
                time.sleep(POLL_SECONDS)
    finally:
        if fd >= 0:
            os.close(fd)


def _open_pipe(path: str) -> int:
    """Open (making it if need be) the pipe for reading; read-write, so never at EOF."""
    with suppress(FileExistsError):
        os.mkfifo(path, 0o600)
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} exists and is not a named pipe; remove it")
    return fd


def _drain(fd: int) -> bytes:
    data = b""
    try:
        while chunk := os.read(fd, 4096):
            data += chunk
    except BlockingIOError:
        pass
    return data
