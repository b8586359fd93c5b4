"""What reaches the disk through ``main(environ)``: a failed run leaves ``path`` as it was,
file for file; nothing is written outside ``path``; no file passes unchecked."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.fake_wandb import FakeArtifact, FakeWandb, md5_b64
from tests.action.harness import Run, Runner, failed_with, snapshot, tree

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_SERIAL = itertools.count()


def _failed(run: Run, *fragments: str) -> None:
    failed_with(run, *fragments)
    assert "Internal error" not in run.stdout


def _raw_manifest(artifact: FakeArtifact, contents: dict[str, Any]) -> None:
    """Serve ``contents`` as the artifact's manifest instead of the real one."""
    body = {"version": 1, "storagePolicyConfig": {"storageLayout": "V2"}, "contents": contents}
    artifact.raw_manifest = json.dumps(body).encode()


def _add(fake: FakeWandb, files: dict[str, bytes], collection: str = "churn-model") -> FakeArtifact:
    return fake.store.add_artifact("acme", "churn", collection, files, aliases=("production",))


# -- 12: all or nothing ---------------------------------------------------------------


def test_a_file_that_is_also_a_directory_changes_nothing(runner: Runner, fake: FakeWandb) -> None:
    target = runner.default_target
    target.mkdir(parents=True)
    (target / "big.bin").write_bytes(b"previous version")
    _add(fake, {"big.bin": os.urandom(3 << 20), "a": b"file", "a/b": b"and a directory"})
    _failed(runner.run(), "a is listed as a file and as the directory of a/b")
    assert snapshot(runner.workspace) == {
        "artifacts": "dir",
        "artifacts/churn-model": "dir",
        "artifacts/churn-model/big.bin": b"previous version",
    }


def test_a_file_in_the_way_of_a_directory_changes_nothing(runner: Runner, fake: FakeWandb) -> None:
    target = runner.default_target
    target.mkdir(parents=True)
    (target / "big.bin").write_bytes(b"previous version")
    (target / "sub").write_bytes(b"a file, where the artifact has a directory")
    _add(fake, {"big.bin": b"new", "sub/x.txt": b"x"})
    before = snapshot(runner.workspace)
    _failed(runner.run(), "is a file where a directory must be")
    assert snapshot(runner.workspace) == before
    assert fake.seen("storage") == []  # refused before any download


def test_a_rename_that_fails_midway_is_undone(
    runner: Runner, fake: FakeWandb, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = runner.default_target
    (target / "old").mkdir(parents=True)
    (target / "a.txt").write_bytes(b"previous a")
    (target / "old/keep.txt").write_bytes(b"mine")
    _add(fake, {"a.txt": b"new a", "b/c/d.txt": b"new d", "z.txt": b"new z"})
    before = snapshot(runner.workspace)
    real = os.replace
    calls = itertools.count()

    def replace(src: Any, dst: Any) -> None:
        if Path(dst).name == "z.txt" and next(calls) == 0:
            raise OSError(28, "No space left on device", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    _failed(runner.run(), "No space left on device", "was left as it was")
    assert snapshot(runner.workspace) == before


@SETTINGS
@given(
    old=st.dictionaries(st.sampled_from(["a", "b", "d/e", "d/f", "g/h/i"]), st.binary(max_size=9)),
    new=st.dictionaries(
        st.sampled_from(["a", "b", "d/e", "d/x", "g/h/i", "k/l"]),
        st.binary(min_size=1, max_size=9),
        min_size=1,
    ),
    failure=st.sampled_from(["corrupt", "unavailable", "directory", "link", "conflict"]),
    data=st.data(),
)
def test_any_failure_leaves_path_as_it_was(
    tmp_path_factory: pytest.TempPathFactory,
    fake: FakeWandb,
    old: dict[str, bytes],
    new: dict[str, bytes],
    failure: str,
    data: st.DataObject,
) -> None:
    runner = Runner(tmp_path_factory.mktemp("job"), fake.url)
    target = runner.workspace / "model"
    target.mkdir()
    for name, content in old.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(content)
    victim = data.draw(st.sampled_from(sorted(new)))
    files = dict(new)
    if old.get(victim) == files[victim]:  # else it is kept as present, never fetched
        files[victim] += b"!"
    collection = f"m{next(_SERIAL)}"
    if failure == "directory":  # a directory where the victim's file goes
        if (target / victim).is_file():
            (target / victim).unlink()
        (target / victim / "inside").mkdir(parents=True, exist_ok=True)
    elif failure == "link":  # a link where the victim's directory goes
        victim = "k/l"
        files[victim] = b"through the link"
        if not (target / "k").is_symlink():
            (target / "k").symlink_to(runner.root)
    elif failure == "conflict":
        files[victim + "/under"] = b"makes the victim a directory too"
    artifact = _add(fake, files, collection)
    if failure == "corrupt":
        fake.corrupt(victim)
    elif failure == "unavailable":
        fake.refuse(victim)
        fake.fail("handler", *[503] * 6)
    before = snapshot(runner.workspace)
    run = runner.run(artifact=f"acme/churn/{collection}:v0", path="model")
    fake.heal()
    assert run.code == 1, (failure, run.stdout)
    assert "Internal error" not in run.stdout
    assert snapshot(runner.workspace) == before
    assert not (runner.root / "l").exists()
    assert artifact  # fetched from its own collection


# -- 13: verification never fails open ------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"digest": "not-a-digest"}, "unknown form"),
        ({}, "no digest"),
        ({"digest": ""}, "empty digest"),
        ({"digest": "XUFAKrxLKna5cZ2REBfFkg==", "extra": {"alg": "SHA256"}}, "other hash"),
        ({"digest": "XUFAKrxLKna5cZ2REBfFkg==", "extra": {"alg": 5}}, "odd alg"),
    ],
)
def test_a_file_that_cannot_be_checked_fails_with_verify(
    runner: Runner, fake: FakeWandb, entry: dict[str, Any], named: str
) -> None:
    artifact = _add(fake, {"ok.txt": b"fine", "odd.bin": b"served corrupted"})
    fake.corrupt("odd.bin")
    good = {"digest": md5_b64(b"fine"), "size": 4, "birthArtifactID": artifact.id}
    _raw_manifest(artifact, {"ok.txt": good, "odd.bin": {**entry, "birthArtifactID": artifact.id}})
    _failed(runner.run(), "title=File verification failed", "odd.bin", "verify: false")
    assert tree(runner.workspace) == {}
    run = runner.run(verify="false")  # the user accepts an unchecked file
    assert run.code == 0, (named, run.stdout)


@SETTINGS
@given(digest=st.text(max_size=40))
def test_any_digest_is_checked_or_refused(runner: Runner, fake: FakeWandb, digest: str) -> None:
    """The served bytes always differ from the digest's claim: no run may pass."""
    collection = f"m{next(_SERIAL)}"
    artifact = _add(fake, {"f.bin": b"served bytes"}, collection)
    _raw_manifest(artifact, {"f.bin": {"digest": digest, "birthArtifactID": artifact.id}})
    run = runner.run(artifact=f"acme/churn/{collection}:v0", path=collection)
    assert run.code == 1, run.stdout
    assert "Internal error" not in run.stdout
    assert not (runner.workspace / collection).exists()


def test_known_answer_digests(runner: Runner, fake: FakeWandb) -> None:
    """base64 and hex forms of MD5("hello"), and XXH128 ("hello") in both forms."""
    artifact = _add(fake, {"a": b"hello", "b": b"hello", "c": b"hello", "d": b"hello"})
    _raw_manifest(
        artifact,
        {
            "a": {"digest": "XUFAKrxLKna5cZ2REBfFkg==", "size": 5},
            "b": {"digest": '"5d41402abc4b2a76b9719d911017c592"', "size": 5},
            "c": {"digest": "tenBrQcbPn/Hec+qXlI4GA==", "extra": {"alg": "XXH128"}},
            "d": {"digest": "b5e9c1ad071b3e7fc779cfaa5e523818", "extra": {"alg": "xxh128"}},
        },
    )
    run = runner.run()
    assert run.code == 0, run.stdout
    assert tree(runner.default_target) == dict.fromkeys("abcd", b"hello")


# -- 14: nothing outside path ---------------------------------------------------------


def test_a_link_inside_path_is_not_followed(runner: Runner, fake: FakeWandb) -> None:
    outside = runner.root / "outside"
    outside.mkdir()
    target = runner.default_target
    target.mkdir(parents=True)
    (target / "sub").symlink_to(outside)
    _add(fake, {"sub/evil.txt": b"evil", "ok.txt": b"ok"})
    before = snapshot(runner.workspace)
    _failed(runner.run(), "sub is a symbolic link", "Remove what is in the way")
    assert list(outside.iterdir()) == []
    assert snapshot(runner.workspace) == before


def test_a_link_where_a_file_goes_is_replaced_not_written_through(
    runner: Runner, fake: FakeWandb
) -> None:
    outside = runner.root / "outside.txt"
    outside.write_bytes(b"not yours")
    target = runner.default_target
    target.mkdir(parents=True)
    (target / "model.bin").symlink_to(outside)
    _add(fake, {"model.bin": b"weights"})
    run = runner.run()
    assert run.code == 0, run.stdout
    assert outside.read_bytes() == b"not yours"
    assert not (target / "model.bin").is_symlink()
    assert (target / "model.bin").read_bytes() == b"weights"


def test_a_link_with_the_right_bytes_is_not_kept_as_present(
    runner: Runner, fake: FakeWandb
) -> None:
    outside = runner.root / "outside.txt"
    outside.write_bytes(b"weights")
    (runner.default_target).mkdir(parents=True)
    (runner.default_target / "model.bin").symlink_to(outside)
    _add(fake, {"model.bin": b"weights"})
    run = runner.run()
    assert run.code == 0, run.stdout
    assert not (runner.default_target / "model.bin").is_symlink()


KEY_PART = st.sampled_from(["..", ".", "", "a", "b", "/", "\\", "\x00", "c:", "~", " "])


@SETTINGS
@given(key=st.lists(KEY_PART, min_size=1, max_size=5).map("".join))
def test_no_manifest_key_escapes_path(runner: Runner, fake: FakeWandb, key: str) -> None:
    collection = f"m{next(_SERIAL)}"
    artifact = _add(fake, {"x": b"payload"}, collection)
    entry = {"digest": md5_b64(b"payload"), "size": 7, "birthArtifactID": artifact.id}
    _raw_manifest(artifact, {key: entry})
    target = runner.workspace / "deep" / "target"
    before = {p for p in runner.workspace.rglob("*") if not p.is_relative_to(target)}
    run = runner.run(artifact=f"acme/churn/{collection}:v0", path="deep/target")
    assert run.code in (0, 1), run.stdout
    assert "Internal error" not in run.stdout
    after = {p for p in runner.workspace.rglob("*") if not p.is_relative_to(target)}
    assert after - before <= {runner.workspace / "deep"}
    for path in target.rglob("*") if target.exists() else ():
        assert path.resolve().is_relative_to(target.resolve())
