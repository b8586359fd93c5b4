"""Builds the multi-buffer MD5 library (``action/native/md5lanes.c``) for this machine.

``python -m action.md5build DIR`` is what action.yml's setup step runs; the tests and
the benchmark call :func:`build`. The library lands in DIR under a name that changes
with the source, so a cached venv never loads a stale build. Any C compiler that takes
``cc``'s usual flags will do (GCC, Clang); without one the action uses hashlib.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from action.md5lanes import Unavailable, load

SOURCE = Path(__file__).resolve().parent / "native" / "md5lanes.c"


def library_name(flags: Sequence[str] = ()) -> str:
    """The built library's file name: it changes whenever the source or flags do."""
    digest = hashlib.sha256(SOURCE.read_bytes() + "\0".join(flags).encode()).hexdigest()[:16]
    return f"libmd5lanes-{digest}.so"


def build(directory: Path, compiler: str = "", flags: Sequence[str] = ()) -> Path:
    """Compile the library into ``directory`` (kept when already there); its path.

    ``compiler`` defaults to $CC, else ``cc``; ``flags`` are added (the tests build
    the portable stubs with ``-DMD5LANES_NO_VECTOR``).
    """
    out = directory / library_name(flags)
    if out.is_file():
        return out
    directory.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(f".{os.getpid()}.tmp")
    command = [compiler or os.environ.get("CC") or "cc", "-O2", "-pthread", "-shared", "-fPIC"]
    try:
        done = subprocess.run(
            [*command, *flags, "-o", str(partial), str(SOURCE)], capture_output=True, text=True
        )
    except OSError as exc:
        raise Unavailable(f"no C compiler ({command[0]}: {exc.strerror or exc})") from exc
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise Unavailable(f"{command[0]} failed: {done.stderr.strip()[-500:]}")
    os.replace(partial, out)
    return out


def main(argv: list[str]) -> int:
    """``python -m action.md5build DIR``: build into DIR, print the library's path.

    Exit 0 with nothing printed when it cannot be built or used here: the action then
    hashes with hashlib, which is correct, only slower; the reason goes to stderr.
    Silent when the library was already there and works.
    """
    if len(argv) != 1:
        print("usage: python -m action.md5build DIR", file=sys.stderr)
        return 2
    directory = Path(argv[0])
    existed = (directory / library_name()).is_file()
    try:
        path = build(directory)
        lanes = load(str(path))
    except Unavailable as exc:
        print(f"Multi-buffer MD5 not used ({exc}); MD5 with hashlib.", file=sys.stderr)
        return 0
    if not existed:
        print(f"Built multi-buffer MD5 ({lanes.level}) at {path}", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
