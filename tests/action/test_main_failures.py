"""``main(environ)`` when things go wrong: retries, fallbacks, refusals, and clean failure."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness.fake_wandb import FakeArtifact, FakeWandb, demo_files, md5_b64
from tests.action.harness import Run, Runner, failed_with, tree


def _failed(run: Run, *fragments: str) -> str:
    """:func:`failed_with`, with no traceback and no output written; return the error line."""
    error = failed_with(run, *fragments)
    assert "Traceback" not in run.stdout
    assert run.output_text == ""
    return error


def _untouched(runner: Runner) -> None:
    """Nothing was written next to or under the default target."""
    assert tree(runner.workspace) == {}


def test_expired_direct_urls_fall_back_to_the_download_handler(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.expire("model/weights.bin", "empty.txt")
    fake.refuse("README.md")
    run = runner.run()
    assert run.code == 0, run.stdout
    handled = {r.path.rsplit("/", 1)[-1] for r in fake.seen("handler")}
    assert handled == {"weights.bin", "empty.txt", "README.md"}
    assert all(r.authorized for r in fake.seen("handler"))
    for f in artifact.stored:
        assert md5_b64(tree(runner.default_target)[f.path]) == f.digest or f.algorithm != "MD5"
    assert "using W&B's download handler" in run.stdout


def test_layout_v1_handler(runner: Runner, fake: FakeWandb) -> None:
    artifact = fake.store.add_artifact(
        "acme", "churn", "churn-model", {"a.bin": b"abc"}, aliases=("production",), layout="V1"
    )
    fake.refuse("a.bin")
    run = runner.run()
    assert run.code == 0, run.stdout
    assert [r.path for r in fake.seen("handler")] == [f"/artifacts/acme/{artifact.files[0].hex}"]


@pytest.mark.parametrize("route", ["graphql", "storage", "manifest"])
def test_5xx_429_and_dropped_connections_are_retried(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact, route: str
) -> None:
    fake.fail(route, 503, 0, 429, 500)
    run = runner.run()
    assert run.code == 0, run.stdout
    assert len(run.sleeps) == 4 and all(s > 0 for s in run.sleeps)
    assert any(s >= 1 for s in run.sleeps)  # Retry-After: 1 on the 429 (threads: any order)
    assert tree(runner.default_target).keys() == {f.path for f in artifact.stored}


def test_a_body_cut_short_is_fetched_again(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.cut("model/weights.bin", times=2)
    run = runner.run()
    assert run.code == 0, run.stdout
    assert len(run.sleeps) == 2
    weights = next(f for f in artifact.files if f.path == "model/weights.bin")
    assert md5_b64(tree(runner.default_target)["model/weights.bin"]) == weights.digest
    assert len([r for r in fake.seen("storage") if r.path.endswith("weights.bin")]) == 3


def test_retries_give_up_and_leave_nothing(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.fail("storage", *[503] * 100)
    run = runner.run()
    _failed(run, "download failed after 6 attempts (HTTP 503)", "re-run the job later")
    _untouched(runner)


def test_corrupted_file_fails_and_leaves_nothing(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.corrupt("model/weights.bin")
    run = runner.run()
    _failed(run, "title=File verification failed", "model/weights.bin", "MD5 digest")
    _untouched(runner)
    assert "### W&B artifact: failed" in run.summary_text


def test_corrupted_xxh128_file_is_caught(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.corrupt("model/config.json")
    _failed(runner.run(), "model/config.json", "XXH128 digest")


def test_a_failed_run_keeps_what_was_at_path(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    target = runner.default_target
    target.mkdir(parents=True)
    (target / "README.md").write_bytes(b"previous version")
    (target / "notes.txt").write_bytes(b"mine")
    fake.corrupt("data/nested/deep/labels.csv")
    _failed(runner.run(), "labels.csv")
    assert tree(runner.workspace) == {
        "artifacts/churn-model/README.md": b"previous version",
        "artifacts/churn-model/notes.txt": b"mine",
    }


def test_wrong_key(runner: Runner, fake: FakeWandb, artifact: FakeArtifact) -> None:
    fake.api_key = "local-0000000000000000000000000000000000000000"
    run = runner.run()
    _failed(run, "title=W&B rejected the API key", "HTTP 401", "api-key")
    _untouched(runner)


def test_wrong_key_at_the_download_handler(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.refuse("README.md")
    fake.fail("handler", 401)
    _failed(runner.run(), "README.md", "download handler rejected the API key (HTTP 401)")
    _untouched(runner)


def test_unknown_alias_names_what_and_where(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    runner.dispatch("LINK_MODEL", artifact_version_string="acme/churn/churn-model:staging")
    _failed(
        runner.run(),
        "title=W&B artifact not found",
        "churn-model:staging",
        f"project acme/churn at {fake.url}",
    )
    _untouched(runner)


def test_unknown_project(runner: Runner, artifact: FakeArtifact) -> None:
    runner.dispatch("LINK_MODEL", artifact_version_string="acme/nope/churn-model:v0")
    _failed(runner.run(), "project acme/nope was not found")


def test_unknown_id(runner: Runner, artifact: FakeArtifact) -> None:
    runner.dispatch("LINK_MODEL", artifact_version="wandb-artifact://_id/QXJ0aWZhY3Q6OTk5")
    _failed(runner.run(), "no artifact with id 'QXJ0aWZhY3Q6OTk5'")


def test_an_id_with_a_line_break_is_refused_before_any_request(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    runner.dispatch("LINK_MODEL", artifact_version=f"wandb-artifact://_id/{artifact.id}\nX")
    _failed(runner.run(), "title=Invalid input", "the id holds a line break")
    assert fake.requests == []
    _untouched(runner)


def test_uncommitted_version_is_refused(runner: Runner, fake: FakeWandb) -> None:
    fake.store.add_artifact(
        "acme", "churn", "churn-model", demo_files(), aliases=("production",), state="PENDING"
    )
    _failed(runner.run(), "title=W&B artifact is not committed", "PENDING, not COMMITTED")
    assert fake.seen("storage") == []
    _untouched(runner)


def _with_refs(fake: FakeWandb, refs: dict[str, tuple[str, str, int]]) -> FakeArtifact:
    return fake.store.add_artifact(
        "acme", "churn", "churn-model", {"local.txt": b"local"}, aliases=("production",), refs=refs
    )


def test_https_references_are_fetched_and_verified(runner: Runner, fake: FakeWandb) -> None:
    data = b"external weights" * 1000
    url = fake.external_url("weights.bin", data)
    etag = hashlib.md5(b"x", usedforsecurity=False).hexdigest()
    other = fake.external_url("other.bin", b"x")
    _with_refs(
        fake,
        {
            "ext/weights.bin": (url, md5_b64(data), len(data)),
            "ext/other.bin": (other, f'"{etag}"', 1),  # an S3-style ETag: a hex MD5
        },
    )
    run = runner.run()
    assert run.code == 0, run.stdout
    assert tree(runner.default_target) == {
        "local.txt": b"local",
        "ext/weights.bin": data,
        "ext/other.bin": b"x",
    }


def test_a_reference_whose_digest_cannot_be_checked_needs_verify_false(
    runner: Runner, fake: FakeWandb
) -> None:
    url = fake.external_url("opaque.bin", b"opaque")
    _with_refs(fake, {"ext/opaque.bin": (url, '"0a1b2c-3"', 6)})  # a multipart S3 ETag
    _failed(runner.run(), "title=File verification failed", "ext/opaque.bin", "verify: false")
    _untouched(runner)
    run = runner.run(verify="false")
    assert run.code == 0, run.stdout
    assert tree(runner.default_target) == {"local.txt": b"local", "ext/opaque.bin": b"opaque"}


def test_https_reference_with_wrong_md5_fails(runner: Runner, fake: FakeWandb) -> None:
    url = fake.external_url("w.bin", b"changed since logging")
    _with_refs(fake, {"w.bin": (url, md5_b64(b"original bytes here!!"), 21)})
    _failed(runner.run(), "w.bin")
    _untouched(runner)


def test_unreachable_reference_url(runner: Runner, fake: FakeWandb) -> None:
    _with_refs(fake, {"w.bin": (fake.external_url("w.bin", b"w"), md5_b64(b"w"), 1)})
    fake.fail("external", *[0] * 6)  # every attempt's connection dropped
    _failed(runner.run(), "title=Download failed", "w.bin", "after 6 attempts")
    _untouched(runner)


def test_invalid_reference_url(runner: Runner, fake: FakeWandb) -> None:
    _with_refs(fake, {"w.bin": ("http://[::1/bad", md5_b64(b"w"), 1)})
    _failed(runner.run(), "title=Download failed", "w.bin", "InvalidURL")
    _untouched(runner)


def test_other_references_fail_listing_them(runner: Runner, fake: FakeWandb) -> None:
    _with_refs(
        fake,
        {
            "s3/a.parquet": ("s3://bucket/a.parquet", md5_b64(b"a"), 1),
            "gs/b.parquet": ("gs://bucket/b.parquet", md5_b64(b"b"), 1),
        },
    )
    error = _failed(runner.run(), "2 entries", "s3://bucket/a.parquet", "gs://bucket/b.parquet")
    assert "skip-references: true" in error
    _untouched(runner)


def test_skip_references(runner: Runner, fake: FakeWandb) -> None:
    url = fake.external_url("w.bin", b"w")
    _with_refs(
        fake,
        {
            "s3/a.parquet": ("s3://bucket/a.parquet", md5_b64(b"a"), 1),
            "w.bin": (url, md5_b64(b"w"), 1),
        },
    )
    run = runner.run(skip_references="true")
    assert run.code == 0, run.stdout
    assert tree(runner.default_target) == {"local.txt": b"local"}
    assert "::warning::skipped 2 references" in run.stdout
    assert run.outputs["files"] == "1"
    assert "| skipped references | 2 |" in run.summary_text


def test_unsafe_manifest_path_is_refused(runner: Runner, fake: FakeWandb) -> None:
    fake.store.add_artifact(
        "acme", "churn", "churn-model", {"../escape.txt": b"x"}, aliases=("production",)
    )
    _failed(runner.run(), "unsafe file path '../escape.txt'")
    assert not (runner.workspace / "artifacts" / "escape.txt").exists()


@pytest.mark.parametrize(
    ("inputs", "fragments"),
    [
        (
            {"verify": "maybe", "concurrency": "0"},
            ["'verify' must be true or false", "'concurrency'"],
        ),
        ({"payload": "{not json"}, ["'payload' is not valid JSON"]),
        ({"payload": "[1]"}, ["must be a JSON object"]),
        ({"artifact": "just-a-name"}, ["neither entity/project/collection:alias"]),
        ({"base_url": "api.wandb.ai"}, ["'base-url' must be an http(s) URL"]),
        ({"api_key": ""}, ["no W&B API key"]),
    ],
)
def test_bad_inputs(
    runner: Runner, fake: FakeWandb, inputs: dict[str, str], fragments: list[str]
) -> None:
    run = runner.run(**inputs)
    _failed(run, "title=Invalid input", *fragments)
    assert fake.requests == []


def test_no_artifact_anywhere(runner: Runner, fake: FakeWandb, tmp_path: Path) -> None:
    runner.dispatch("LINK_MODEL", event_author="alice")
    _failed(runner.run(), "no artifact to fetch", "artifact_version_string")
