"""Large files fetched as byte ranges, through ``main(environ)`` against the fake W&B.

``part_size`` is made 1 MiB here, so the demo artifact's ``model/weights.bin`` (9 MiB and
224 bytes) comes in ten ranges, the last of 224 bytes; its other files come whole.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import threading

import pytest

from action.download import _Ranged
from action.manifest import Entry
from action.plan import Job
from harness.fake_wandb import FakeArtifact, FakeWandb
from tests.action.harness import Run, Runner, failed_with, md5_of, tree

PART = 1 << 20
WEIGHTS = "model/weights.bin"


@pytest.fixture(autouse=True)
def _small_parts(runner: Runner) -> None:
    runner.part_size = PART


def _weights(artifact: FakeArtifact) -> tuple[int, str]:
    found = next(f for f in artifact.files if f.path == WEIGHTS)
    return found.size, found.digest


def _ranges(fake: FakeWandb, route: str = "storage") -> list[tuple[int, int]]:
    """The byte ranges asked for the weights, in order of their first byte."""
    asked = [r.range for r in fake.seen(route) if r.path.endswith("/weights.bin")]
    spans = [re.fullmatch(r"bytes=(\d+)-(\d+)", text) for text in asked]
    assert all(spans), asked
    return sorted((int(m[1]), int(m[2])) for m in spans if m)


def _failed_cleanly(runner: Runner, run: Run, *fragments: str) -> None:
    failed_with(run, *fragments)
    assert "Traceback" not in run.stdout
    assert run.output_text == ""
    assert tree(runner.workspace) == {}  # nothing placed, the staging directory gone


def test_a_large_file_comes_in_ranges_and_is_verified(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    run = runner.run()
    assert run.code == 0, run.stdout
    size, digest = _weights(artifact)
    assert md5_of(runner.default_target / WEIGHTS) == digest
    spans = _ranges(fake)
    assert len(spans) == 10 and spans[0][0] == 0 and spans[-1] == (9 * PART, size - 1)
    assert all(end + 1 == nxt for (_, end), (nxt, _) in itertools.pairwise(spans))
    others = [r for r in fake.seen("storage") if not r.path.endswith("/weights.bin")]
    assert others and all(r.range == "" for r in others)  # small files come whole
    assert run.stdout.count(f"downloaded  {WEIGHTS}") == 1
    assert run.outputs["bytes"] == str(artifact.size)


def test_a_server_without_ranges_gets_the_file_in_one_piece(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.ranges = False  # every Range answered 200 with the whole body
    run = runner.run()
    assert run.code == 0, run.stdout
    assert md5_of(runner.default_target / WEIGHTS) == _weights(artifact)[1]
    assert f"{WEIGHTS}: the storage does not serve ranges" in run.stdout
    unranged = [r for r in fake.seen("storage") if r.path.endswith("/weights.bin") and not r.range]
    assert len(unranged) == 1


def test_a_content_range_for_other_bytes_fails_the_run(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.skew(WEIGHTS)  # 206 with the bytes asked for, but a Content-Range one byte off
    run = runner.run()
    _failed_cleanly(runner, run, "title=File verification failed", WEIGHTS, "Content-Range")
    assert not run.sleeps  # refused at once, not retried


def test_a_range_cut_short_is_fetched_again(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.cut(WEIGHTS, times=2)  # two ranged answers drop the connection halfway
    run = runner.run()
    assert run.code == 0, run.stdout
    assert len(run.sleeps) == 2
    assert md5_of(runner.default_target / WEIGHTS) == _weights(artifact)[1]
    spans = _ranges(fake)
    assert len(spans) == 12 and len(set(spans)) == 10  # two ranges asked again, in full


def test_a_corrupted_range_fails_the_digest_and_places_nothing(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.corrupt(WEIGHTS)  # one byte changed, inside one of the ranges
    run = runner.run()
    _failed_cleanly(runner, run, "title=File verification failed", WEIGHTS, "MD5 digest")
    assert len(_ranges(fake)) == 10


def test_a_refused_direct_url_moves_every_range_to_the_handler(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.refuse(WEIGHTS)
    run = runner.run()
    assert run.code == 0, run.stdout
    assert md5_of(runner.default_target / WEIGHTS) == _weights(artifact)[1]
    assert len(_ranges(fake, "handler")) == 10
    assert run.stdout.count(f"direct URL of {WEIGHTS} refused") == 1


def test_a_size_missing_from_the_manifest_means_one_piece(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    manifest = json.loads(artifact.manifest())
    del manifest["contents"][WEIGHTS]["size"]
    artifact.raw_manifest = json.dumps(manifest).encode()
    run = runner.run()
    assert run.code == 0, run.stdout
    assert md5_of(runner.default_target / WEIGHTS) == _weights(artifact)[1]
    asked = [r.range for r in fake.seen("storage") if r.path.endswith("/weights.bin")]
    assert asked == [""]


@pytest.mark.parametrize("seed", range(5))
def test_ranges_landing_in_any_order_from_many_threads_hash_to_the_file(tmp_path, seed) -> None:
    """The running hash takes each range once, in file order, whichever thread lands it
    and whenever; exactly one call gets the digest, and only after the last range."""
    data = random.Random(seed).randbytes(37 * 1000 + 11)
    staged = tmp_path / "file.part"
    staged.write_bytes(data)
    entry = Entry(
        "f.bin", hashlib.md5(data, usedforsecurity=False).hexdigest(), len(data), "MD5", "", ""
    )
    job = Job(entry=entry, dest=tmp_path / "f.bin", url="", fallback="", verify=True)
    ranged = _Ranged(job, staged, len(data), 1000)
    order = list(range(len(ranged.spans)))
    random.Random(seed).shuffle(order)
    digests: list[bytes] = []
    start = threading.Barrier(4)

    def land(indices: list[int]) -> None:
        start.wait()
        for n in indices:
            if (digest := ranged.land(n)) is not None:
                digests.append(digest)

    threads = [threading.Thread(target=land, args=(order[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert digests == [hashlib.md5(data, usedforsecurity=False).digest()]
