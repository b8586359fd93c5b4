"""MD5 for many files at once: the downloader's threads pool their hashing.

One MD5 stream cannot be split, and one core hashing it waits on the latency of a chain
of dependent steps, not on arithmetic (about 750 MB/s). ``native/md5lanes.c`` runs up
to eight streams side by side in the lanes of one vector register, each at nearly the
speed of one alone. For that it needs several streams' data at the same moment: the
library runs one hashing thread (native, so no GIL) that takes each queued piece into
a free lane within tens of microseconds. A download thread queues its piece and goes
on reading the next into its other buffer, and waits only if the earlier piece is
still not hashed when it needs that buffer again. With eight downloads in flight the
lanes stay as full as there are files; a lone file hashes a little slower than with
hashlib.

The library is built from source by ``python -m action.md5build DIR`` (the action's
setup step, the tests and the benchmark) and loaded with :func:`load`; where it cannot
be built or the CPU lacks AVX2, :func:`choose` says why and the downloader uses hashlib.
"""

from __future__ import annotations

import ctypes
import struct
import threading
import weakref
from collections.abc import Callable, Sequence

_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)
_State = ctypes.c_uint32 * 4


class Unavailable(Exception):
    """The native library cannot be built or used here; the message says why.

    Never reaches the user as a failure: the action then hashes with hashlib.
    """


def choose(path: str) -> tuple[Lanes | None, str]:
    """The library at ``path`` if it can run here, and a log line saying which MD5 runs."""
    try:
        lanes = load(path)
    except Unavailable as exc:
        return None, f"MD5 with hashlib: {exc}"
    return lanes, f"MD5 in {lanes.level} vector lanes"


def load(path: str) -> Lanes:
    """The library at ``path`` as a :class:`Lanes`; :class:`Unavailable` if unusable."""
    try:
        lib = ctypes.CDLL(path)  # CDLL, not PyDLL: calls run without the GIL
    except OSError as exc:
        raise Unavailable(f"cannot load {path}: {exc}") from exc
    lib.md5lanes_hash.argtypes = [ctypes.POINTER(_Run), ctypes.c_int]
    lib.md5lanes_submit.argtypes = [ctypes.POINTER(_Run)]
    lib.md5lanes_wait.argtypes = [ctypes.POINTER(_Run)]
    lib.md5lanes_wait.restype = None
    lib.md5lanes_streams.argtypes = [ctypes.c_int]
    lib.md5lanes_limit.argtypes = [ctypes.c_int]
    if lib.md5lanes_level() < 2:
        raise Unavailable("it needs an x86-64 CPU with AVX2")
    return Lanes(lib)


class _Run(ctypes.Structure):
    """``struct md5lanes_run``: whole blocks of one stream, to be hashed."""

    keep: object  # the state and data the run points at, alive as long as it is

    _fields_ = [
        ("next", ctypes.c_void_p),
        ("state", ctypes.POINTER(ctypes.c_uint32)),
        ("data", ctypes.c_void_p),
        ("blocks", ctypes.c_size_t),
        ("done", ctypes.c_int),
    ]


def _padded(tail: bytes | bytearray, length: int) -> bytes:
    """The last block(s) of a message of ``length`` bytes ending in ``tail`` (RFC 1321)."""
    bits = struct.pack("<Q", (length * 8) % (1 << 64))
    return bytes(tail) + b"\x80" + bytes((55 - length) % 64) + bits


def _run(state: ctypes.Array[ctypes.c_uint32], data: bytes | bytearray | memoryview) -> _Run:
    """A run over ``data`` (whole blocks) in place; read-only data is copied first.

    The run holds its state and data, so that neither goes while the engine uses them.
    """
    view = memoryview(data)
    kind = ctypes.c_char * len(view)
    keep = kind.from_buffer_copy(view) if view.readonly else kind.from_buffer(view)
    run = _Run(None, state, ctypes.addressof(keep), len(view) // 64, 0)
    run.keep = (state, keep)
    return run


class Lanes:
    """The native library: a hashing engine, and :meth:`md5` objects that feed it."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._lock = threading.Lock()
        self._in_flight: list[_Run] = []  # kept alive until the engine is done with them

    @property
    def level(self) -> str:
        return {3: "AVX-512", 2: "AVX2"}.get(self._lib.md5lanes_level(), "none")

    def limit(self, level: int) -> int:
        """Use at most this instruction set (3 AVX-512, 2 AVX2) for :meth:`hash`.

        The engine keeps the set it started with; tests compare the builds through
        :meth:`hash`.
        """
        return int(self._lib.md5lanes_limit(level))

    def md5(self) -> LaneMd5:
        return LaneMd5(self)

    def open_stream(self, owner: object) -> Callable[[], object]:
        """Count a stream as open until the returned finalizer runs (or ``owner`` goes)."""
        self._lib.md5lanes_streams(1)
        return weakref.finalize(owner, self._lib.md5lanes_streams, -1)

    @property
    def open_streams(self) -> int:
        """Streams begun and neither finished nor dropped (what the engine waits for)."""
        return int(self._lib.md5lanes_streams(0))

    def digests(self, messages: Sequence[bytes]) -> list[bytes]:
        """The MD5 of each whole message, all hashed side by side in this thread."""
        states = [_State(*_INIT) for _ in messages]
        self.hash([_run(st, _padded(m, len(m))) for st, m in zip(states, messages, strict=True)])
        return [struct.pack("<4I", *st) for st in states]

    def submit(self, run: _Run) -> None:
        """Queue ``run`` for the engine and return at once (or hash it here, done, when
        the engine's thread cannot be started)."""
        with self._lock:
            self._in_flight = [r for r in self._in_flight if not r.done]
            self._in_flight.append(run)
        if self._lib.md5lanes_submit(ctypes.byref(run)) != 0:
            self.hash([run])

    def wait(self, run: _Run) -> None:
        """Return once the engine has hashed ``run`` (without holding the GIL)."""
        self._lib.md5lanes_wait(ctypes.byref(run))

    def hash(self, runs: list[_Run]) -> None:
        """Hash ``runs`` (of distinct streams) in this thread, side by side."""
        array = (_Run * len(runs))(*runs)
        # Cannot fail: load() checked that the CPU runs the vector code.
        self._lib.md5lanes_hash(array, len(runs))
        for run, done in zip(runs, array, strict=True):
            run.done = done.done


class LaneMd5:
    """MD5 of one stream through :class:`Lanes`, with hashlib's ``update`` and ``digest``.

    ``update`` queues the piece's whole 64-byte blocks and returns before they are
    hashed: the caller must leave the piece's bytes alone until its next ``update`` or
    ``digest`` returns (the downloader alternates two buffers, reading into one while
    the other is hashed). A remainder under one block is kept in a small tail.
    """

    def __init__(self, lanes: Lanes) -> None:
        self._lanes = lanes
        self._state = _State(*_INIT)
        self._tail = bytearray()
        self._length = 0
        self._pending: _Run | None = None
        # Open in the engine's count until the digest, or until dropped half-way.
        self._close = lanes.open_stream(self)

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._settle()
        view = memoryview(data).cast("B")
        self._length += len(view)
        if self._tail:
            take = min(64 - len(self._tail), len(view))
            self._tail += view[:take]
            view = view[take:]
            if len(self._tail) < 64:
                return
            self._lanes.hash([_run(self._state, bytes(self._tail))])  # one block: here
            self._tail.clear()
        whole = len(view) & ~63
        if whole:
            self._pending = _run(self._state, view[:whole])
            self._lanes.submit(self._pending)
        self._tail += view[whole:]

    def digest(self) -> bytes:
        """The MD5 of everything given to :meth:`update` (the stream can go on)."""
        self._settle()
        self._close()
        state = _State(*self._state)
        self._lanes.hash([_run(state, _padded(self._tail, self._length))])
        return struct.pack("<4I", *state)

    def hexdigest(self) -> str:
        return self.digest().hex()

    def _settle(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._lanes.wait(pending)
