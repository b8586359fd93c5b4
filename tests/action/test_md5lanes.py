"""Multi-buffer MD5 (``action/md5lanes.py`` + ``action/native/md5lanes.c``) against hashlib."""

from __future__ import annotations

import gc
import hashlib
import itertools
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from action.md5build import build
from action.md5lanes import Lanes, Unavailable, load
from tests.action.fake_wandb import FakeArtifact, FakeWandb
from tests.action.harness import Runner

REPO = Path(__file__).resolve().parents[2]


def md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


# RFC 1321, appendix A.5.
KNOWN = {
    b"": "d41d8cd98f00b204e9800998ecf8427e",
    b"a": "0cc175b9c0f1b6a831c399e269772661",
    b"abc": "900150983cd24fb0d6963f7d28e17f72",
    b"message digest": "f96b697d7cb7938d525a2f31aaf161d0",
    b"abcdefghijklmnopqrstuvwxyz": "c3fcd3d76192e4007dfb496cca67e13b",
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789": (
        "d174ab98d277d9f5a5611c2c9f419d9f"
    ),
    b"1234567890" * 8: "57edf4a22be3c955ac49da2e2107b67a",
}


def test_known_answers(lanes: Lanes) -> None:
    for message, hexdigest in KNOWN.items():
        stream = lanes.md5()
        stream.update(message)
        assert stream.hexdigest() == hexdigest, message
    assert [d.hex() for d in lanes.digests(list(KNOWN))] == list(KNOWN.values())


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=12))
def test_any_split_gives_hashlibs_digest(lanes: Lanes, data: bytes, cuts: list[int]) -> None:
    stream = lanes.md5()
    bounds = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    for n, (start, end) in enumerate(itertools.pairwise(bounds)):
        piece = data[start:end]
        stream.update(piece if n % 2 else bytearray(piece))  # read-only and writable
    assert stream.digest() == md5(data)


@pytest.mark.parametrize("level", [3, 2], ids=["avx512", "avx2"])
def test_each_instruction_set_gives_hashlibs_digests(lanes: Lanes, level: int) -> None:
    if lanes.limit(level) != level:
        lanes.limit(3)
        pytest.skip(f"this CPU lacks level {level}")
    try:
        rng = random.Random(level)
        # More messages than lanes, of uneven lengths (some under one block), so that
        # lanes end at different times and are refilled.
        sizes = [0, 1, 55, 56, 64, 65, 4096, 70_000]
        messages = [rng.randbytes(rng.choice(sizes)) for _ in range(21)]
        assert lanes.digests(messages) == [md5(m) for m in messages]
    finally:
        lanes.limit(3)


def test_many_threads_hash_at_once(lanes: Lanes) -> None:
    """Threads as the downloader runs them: two buffers each, read into in turn."""
    rng = random.Random(7)
    files = [rng.randbytes(rng.randint(0, 3 << 20)) for _ in range(24)]
    got: dict[int, bytes] = {}

    def worker(first: int) -> None:
        buffers = [bytearray(256 * 1024), bytearray(256 * 1024)]
        for n in range(first, len(files), 6):
            stream, data, size = lanes.md5(), files[n], len(buffers[0])
            for turn, start in enumerate(range(0, len(data), size)):
                piece = data[start : start + size]
                buffer = buffers[turn % 2]
                buffer[: len(piece)] = piece
                stream.update(memoryview(buffer)[: len(piece)])
            got[n] = stream.digest()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == {n: md5(f) for n, f in enumerate(files)}
    assert lanes.open_streams == 0


def test_a_dropped_stream_stops_counting(lanes: Lanes) -> None:
    before = lanes.open_streams
    stream = lanes.md5()
    stream.update(os.urandom(1 << 20))  # a run left in flight
    assert lanes.open_streams == before + 1
    del stream
    gc.collect()
    assert lanes.open_streams == before
    other = lanes.md5()
    other.update(b"abc")
    assert other.hexdigest() == KNOWN[b"abc"]


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_gets_its_own_engine(lanes: Lanes) -> None:
    stream = lanes.md5()
    stream.update(os.urandom(1 << 16))
    stream.digest()  # the parent's engine thread runs
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        child = lanes.md5()
        child.update(b"a" * 100_000)
        os._exit(0 if child.digest() == md5(b"a" * 100_000) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_no_compiler_or_a_failing_one_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="no C compiler"):
        build(tmp_path, compiler=str(tmp_path / "no-such-cc"))
    with pytest.raises(Unavailable, match="failed"):
        build(tmp_path, compiler="false")
    assert list(tmp_path.iterdir()) == []  # no partial library left


def test_a_build_without_vector_code_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = build(tmp_path, flags=["-DMD5LANES_NO_VECTOR"])
    with pytest.raises(Unavailable, match="x86-64 CPU with AVX2"):
        load(str(path))
    with pytest.raises(Unavailable, match="cannot load"):
        load(str(tmp_path / "missing.so"))


def test_the_command_builds_once_then_stays_quiet(tmp_path: Path, lanes: Lanes) -> None:
    def command(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "action.md5build", str(tmp_path / "lib")],
            cwd=REPO,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )

    first = command({})
    path = Path(first.stdout.strip())
    assert path.parent == tmp_path / "lib" and path.is_file()
    assert first.stderr == f"Built multi-buffer MD5 ({lanes.level}) at {path}\n"
    again = command({"CC": "false"})  # already built: the compiler is not run
    assert (again.stdout, again.stderr) == (first.stdout, "")

    refused = subprocess.run(
        [sys.executable, "-m", "action.md5build", str(tmp_path / "other")],
        cwd=REPO,
        env={**os.environ, "CC": "false"},
        capture_output=True,
        text=True,
    )
    assert (refused.returncode, refused.stdout) == (0, "")
    assert refused.stderr.startswith("Multi-buffer MD5 not used (false failed")
    assert refused.stderr.endswith("; MD5 with hashlib.\n")


def test_main_verifies_in_vector_lanes(
    runner: Runner, lanes: Lanes, md5_library: str, artifact: FakeArtifact
) -> None:
    run = runner.run(md5_library=md5_library)
    assert run.code == 0, run.stdout
    assert f"MD5 in {lanes.level} vector lanes\n" in run.stdout
    assert run.outputs["files"] == "5"


def test_main_hashes_one_file_at_a_time_with_hashlib(
    runner: Runner, md5_library: str, artifact: FakeArtifact
) -> None:
    """One lane alone is slower than OpenSSL's MD5: lanes pay only for several files."""
    run = runner.run(md5_library=md5_library, concurrency="1")
    assert run.code == 0, run.stdout
    assert "MD5 in" not in run.stdout and "MD5 with" not in run.stdout


def test_main_catches_a_corrupted_file_in_vector_lanes(
    runner: Runner, md5_library: str, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.corrupt("model/weights.bin")
    run = runner.run(md5_library=md5_library)
    assert run.code == 1
    assert "title=File verification failed" in run.stdout
    assert "model/weights.bin: MD5 digest" in run.stdout
    assert not runner.default_target.exists()


def test_main_falls_back_to_hashlib_and_says_why(
    runner: Runner, tmp_path: Path, artifact: FakeArtifact
) -> None:
    run = runner.run(md5_library=str(tmp_path / "missing.so"))
    assert run.code == 0, run.stdout
    assert f"MD5 with hashlib: cannot load {tmp_path / 'missing.so'}" in run.stdout
