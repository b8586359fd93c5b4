"""``main(environ)`` end to end against the fake W&B: what lands on disk and in outputs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import xxhash

from action.transfer import CHUNK_SIZE
from harness.fake_wandb import FakeArtifact, FakeWandb, demo_files
from tests.action.harness import API_KEY, Runner, md5_of, tree


def _assert_files(target: Path, artifact: FakeArtifact) -> None:
    """Exactly the artifact's stored files are at ``target``, each with its digest."""
    on_disk = tree(target)
    assert set(on_disk) == {f.path for f in artifact.stored}
    for f in artifact.stored:
        if f.algorithm == "XXH128":
            digest = base64.b64encode(xxhash.xxh3_128(on_disk[f.path]).digest()).decode()
        else:
            digest = md5_of(target / f.path)
        assert digest == f.digest, f.path
        assert len(on_disk[f.path]) == f.size


def test_fetches_the_artifact_the_dispatch_names(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    run = runner.run()

    assert run.code == 0, run.stdout
    target = runner.default_target
    _assert_files(target, artifact)
    assert (target / "empty.txt").read_bytes() == b""
    assert (target / "model/weights.bin").stat().st_size > 2 * CHUNK_SIZE  # several reads
    assert run.outputs == {
        "skipped": "false",
        "path": str(target),
        "artifact": "acme/churn/churn-model:v0",
        "version": "v0",
        "aliases": '["production", "latest"]',
        "digest": artifact.digest,
        "entity": "acme",
        "project": "churn",
        "collection": "churn-model",
        "type": "model",
        "event-type": "LINK_MODEL",
        "event-author": "alice",
        "files": "5",
        "bytes": str(artifact.size),
        "metadata": '{"accuracy": 0.93, "framework": "sklearn"}',
        "description": "Churn classifier.\nTrained on Q3 data.",
    }
    assert "description<<ghadelimiter_" in run.output_text  # multi-line as a heredoc
    assert "### W&B artifact acme/churn/churn-model:v0\n" in run.summary_text
    assert "| files | 5 (5 downloaded, 0 already present) |" in run.summary_text
    lines = run.stdout.splitlines()
    assert lines[0] == f"::add-mask::{API_KEY}"
    start = lines.index(next(x for x in lines if x.startswith("::group::")))
    end = lines.index("::endgroup::")
    assert sorted(x.split()[1] for x in lines[start + 1 : end]) == sorted(
        f.path for f in artifact.stored
    )
    # Pre-signed URLs are fetched without credentials; nothing went to the key handler.
    assert all(not r.authorized for r in fake.seen("storage") + fake.seen("manifest"))
    assert fake.seen("handler") == []
    assert not any(p.name.startswith(".") for p in runner.workspace.rglob("*"))  # no staging


def test_one_thread_fetches_every_file(runner: Runner, artifact: FakeArtifact) -> None:
    run = runner.run(concurrency="1")

    assert run.code == 0, run.stdout
    _assert_files(runner.default_target, artifact)


def test_artifact_version_id_when_no_version_string(runner: Runner, artifact: FakeArtifact) -> None:
    runner.dispatch("ADD_ARTIFACT_ALIAS", artifact_version=f"wandb-artifact://_id/{artifact.id}")
    run = runner.run()
    assert run.code == 0, run.stdout
    assert run.outputs["artifact"] == "acme/churn/churn-model:v0"
    assert run.outputs["event-type"] == "ADD_ARTIFACT_ALIAS"
    _assert_files(runner.default_target, artifact)


def test_event_type_from_client_payload_wins(runner: Runner, artifact: FakeArtifact) -> None:
    runner.dispatch(
        "DEPLOY_MODEL",
        event_type="ADD_ARTIFACT_ALIAS",
        artifact_version_string="acme/churn/churn-model:latest",
    )
    assert runner.run().outputs["event-type"] == "ADD_ARTIFACT_ALIAS"


def test_artifact_input_overrides_the_event(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact, tmp_path: Path
) -> None:
    second = fake.store.add_artifact("acme", "churn", "churn-model", {"only.txt": b"v1"})
    run = runner.run(artifact="acme/churn/churn-model:v1", path="out")
    assert run.code == 0, run.stdout
    assert run.outputs["version"] == "v1"
    assert run.outputs["aliases"] == '["latest"]'  # latest moved to v1
    assert run.outputs["path"] == str(runner.workspace / "out")
    _assert_files(runner.workspace / "out", second)


def test_payload_input_replaces_the_event(runner: Runner, artifact: FakeArtifact) -> None:
    runner.event_path.write_text(json.dumps({"ref": "refs/heads/main"}))  # a push event
    payload = json.dumps(
        {"artifact_version_string": "acme/churn/churn-model:production", "event_author": "bob"}
    )
    run = runner.run(payload=payload)
    assert run.code == 0, run.stdout
    assert run.outputs["event-author"] == "bob"
    assert run.outputs["event-type"] == ""
    _assert_files(runner.default_target, artifact)


def test_older_server_without_membership_fields(runner: Runner, fake: FakeWandb) -> None:
    fake.legacy = True
    artifact = fake.store.add_artifact("acme", "churn", "churn-model", demo_files())
    fake.store.set_aliases(artifact.source, ("production",))
    run = runner.run()
    assert run.code == 0, run.stdout
    assert run.outputs["artifact"] == "acme/churn/churn-model:v0"
    _assert_files(runner.default_target, artifact)
    operations = [r.operation for r in fake.seen("graphql")]
    assert operations == [
        "ArtifactMembership",  # refused: Cannot query field ... on type "Project"
        "ArtifactByName",
        "ArtifactManifest",
        "ArtifactFileUrls",
    ]


def test_registry_collection_under_the_org_entity(runner: Runner, fake: FakeWandb) -> None:
    source = fake.store.add_artifact("acme", "churn", "churn-model", demo_files())
    fake.store.add_artifact("acme", "churn", "churn-model", {"x": b"other version"})
    fake.store.org_of["acme"] = ("Acme Inc", "acme-org")
    fake.store.link(source, "acme-org", "wandb-registry-model", "churn", ("production",))
    runner.dispatch(
        "LINK_ARTIFACT", artifact_version_string="acme/wandb-registry-model/churn:production"
    )
    run = runner.run()
    assert run.code == 0, run.stdout
    assert run.outputs["artifact"] == "acme-org/wandb-registry-model/churn:v0"
    assert run.outputs["aliases"] == '["production"]'
    _assert_files(runner.workspace / "artifacts" / "churn", source)


def test_more_files_than_one_page(runner: Runner, fake: FakeWandb) -> None:
    files = {f"shards/{n:03d}.bin": bytes([n]) * (n * 10) for n in range(120)}
    artifact = fake.store.add_artifact("acme", "churn", "many", files)
    run = runner.run(artifact="acme/churn/many:latest")
    assert run.code == 0, run.stdout
    assert run.outputs["files"] == "120"
    _assert_files(runner.workspace / "artifacts" / "many", artifact)
    pages = [r for r in fake.seen("graphql") if r.operation == "MembershipFileUrls"]
    assert len(pages) == 3  # page size 50


def test_files_already_in_place_are_not_fetched_again(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    target = runner.default_target
    target.mkdir(parents=True)
    (target / "README.md").write_bytes(demo_files()["README.md"])  # right digest: kept
    (target / "model").mkdir()
    (target / "model/config.json").write_bytes(b"stale")  # wrong: replaced
    run = runner.run()
    assert run.code == 0, run.stdout
    _assert_files(target, artifact)
    fetched = {r.path.rsplit("/", 1)[-1] for r in fake.seen("storage")}
    assert "README.md" not in fetched
    assert "config.json" in fetched
    assert "| files | 5 (4 downloaded, 1 already present) |" in run.summary_text
    assert "::warning" not in run.stdout

    fake.requests.clear()
    again = runner.run()  # a restored actions/cache: nothing to download
    assert again.code == 0
    assert fake.seen("storage") == []
    assert "(0 downloaded, 5 already present)" in again.summary_text


@pytest.mark.parametrize("wanted", ["LINK_ARTIFACT", "link_model, CREATE_ARTIFACT"])
def test_event_types_match_link_model_and_link_artifact(
    runner: Runner, artifact: FakeArtifact, wanted: str
) -> None:
    run = runner.run(event_types=wanted)  # the event says LINK_MODEL
    assert run.code == 0
    assert run.outputs["skipped"] == "false"


def test_event_type_not_wanted_skips_without_a_request(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    run = runner.run(event_types="ADD_ARTIFACT_ALIAS")
    assert run.code == 0
    assert run.outputs == {
        "skipped": "true",
        "path": "",
        "files": "0",
        "bytes": "0",
        "event-type": "LINK_MODEL",
        "event-author": "alice",
    }
    assert fake.requests == []
    assert not runner.default_target.exists()
    assert "skipped" in run.summary_text


def test_alias_not_wanted_skips_after_resolving(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    run = runner.run(aliases="staging, canary")
    assert run.code == 0
    assert run.outputs["skipped"] == "true"
    assert run.outputs["artifact"] == "acme/churn/churn-model:v0"
    assert run.outputs["aliases"] == '["production", "latest"]'
    assert {r.route for r in fake.requests} == {"graphql"}
    assert not runner.default_target.exists()
    assert runner.run(aliases="canary,production").outputs["skipped"] == "false"


def test_verify_false_skips_the_digest_but_not_the_size(
    runner: Runner, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.corrupt("README.md")
    run = runner.run(verify="false")
    assert run.code == 0, run.stdout
    assert (runner.default_target / "README.md").read_bytes() != demo_files()["README.md"]


def test_progress_lines_for_long_downloads(runner: Runner, artifact: FakeArtifact) -> None:
    ticks = iter(range(1000))
    run = runner.run(clock=lambda: float(next(ticks)), progress_interval="5")
    progress = [x for x in run.stdout.splitlines() if x.startswith("progress: ")]
    assert progress, run.stdout
    assert "MiB of 9.0 MiB" in progress[-1] and "/s" in progress[-1]


def test_without_github_output_the_outputs_are_printed(
    runner: Runner, artifact: FakeArtifact
) -> None:
    env = runner.environ()
    del env["GITHUB_OUTPUT"], env["GITHUB_STEP_SUMMARY"]
    run = runner.run(env)
    assert run.code == 0
    assert "  artifact=acme/churn/churn-model:v0" in run.stdout


def test_api_key_from_wandb_api_key(runner: Runner, artifact: FakeArtifact) -> None:
    env = runner.environ()
    env["WANDB_API_KEY"] = env.pop("WANDB_ACTION_API_KEY")
    run = runner.run(env)
    assert run.code == 0, run.stdout
    assert run.stdout.splitlines()[0] == f"::add-mask::{API_KEY}"


def test_files_not_in_the_artifact_are_left_and_named(
    runner: Runner, artifact: FakeArtifact
) -> None:
    target = runner.default_target
    (target / "old").mkdir(parents=True)
    (target / "old/shard-9.bin").write_bytes(b"from an older version")
    run = runner.run()
    assert run.code == 0
    assert (target / "old/shard-9.bin").exists()
    assert (
        "::warning title=Extra files at path::1 files at "
        f"{target} are not part of acme/churn/churn-model:v0 and were left in place: "
        "old/shard-9.bin." in run.stdout
    )


def test_an_artifact_without_files(runner: Runner, fake: FakeWandb) -> None:
    fake.store.add_artifact("acme", "churn", "empty-model", {})
    run = runner.run(artifact="acme/churn/empty-model:v0")
    assert run.code == 0, run.stdout
    assert run.outputs["files"] == "0"
    assert (runner.workspace / "artifacts" / "empty-model").is_dir()
