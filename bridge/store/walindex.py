"""How much of a SQLite database's WAL is waiting for a checkpoint, read from its
wal-index (the ``-shm`` file beside it; layout in sqlite.org/walformat.html).

SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, while
the committing process still holds the bridge's write lock (:mod:`bridge.store.writelock`),
so every other writer queues behind its two fsyncs. The store instead checks, after it
lets go of the lock, how many frames are not yet copied back, and checkpoints then.
"""

from __future__ import annotations

import os
import sys
import threading

# Offsets in the wal-index, native byte order: the header's mxFrame (frames in the WAL)
# and, after the header's two 48-byte copies, the checkpoint info's nBackfill (frames
# already copied into the database).
_MX_FRAME = 16
_N_BACKFILL = 96


class WalIndex:
    def __init__(self, database_path: str) -> None:
        self.path = database_path + "-shm"
        self._fd = -1
        self._pid = -1
        self._opening = threading.Lock()

    def pending_frames(self) -> int | None:
        """Frames written to the WAL and not yet checkpointed; None when unknown."""
        try:
            if self._pid != os.getpid():  # first use, or after a fork: our own descriptor
                with self._opening:
                    if self._pid != os.getpid():
                        self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                        self._pid = os.getpid()
            head = os.pread(self._fd, _N_BACKFILL + 4, 0)
        except OSError:
            return None
        if len(head) < _N_BACKFILL + 4:
            return None
        written = int.from_bytes(head[_MX_FRAME : _MX_FRAME + 4], sys.byteorder)
        copied = int.from_bytes(head[_N_BACKFILL : _N_BACKFILL + 4], sys.byteorder)
        return max(0, written - copied)

    def close(self) -> None:
        """Let go of the descriptor; the next read opens the file again (a new database
        file has a new wal-index)."""
        with self._opening:
            if self._pid == os.getpid() and self._fd >= 0:
                os.close(self._fd)
            self._fd, self._pid = -1, -1
