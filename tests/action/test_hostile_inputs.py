"""Malformed inputs, events and W&B answers through ``main(environ)``: always one
``::error::`` naming cause and fix, never a traceback, never the key or userinfo."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.fake_wandb import FakeArtifact, FakeWandb
from tests.action.harness import API_KEY, Run, Runner

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
INPUTS = [
    "api_key",
    "base_url",
    "artifact",
    "payload",
    "path",
    "event_types",
    "aliases",
    "verify",
    "skip_references",
    "concurrency",
    "progress_interval",
]
ODD_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "http://127.0.0.1:99999",
            "https://user:hunter2secret@w.example",
            "http://[::1",
            "http://:80",
            "https://w.example/?q=1",
            "ftp://w.example",
            "1e400",
            "nan",
            "-0",
            "8.5",
            "[" * 5000,
            '{"a": ' * 3000,
            "\x00",
            "wandb-artifact://_id/",
            "a/b/c:d:e",
            "../../etc",
            "€uro-key-0123456789012345678901234567890123456789",
        ]
    ),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _clean(run: Run, *secrets: str) -> None:
    tail = run.stdout[-3000:]
    assert run.code in (0, 1), tail
    assert "Traceback" not in run.stdout and "Internal error" not in run.stdout, tail
    if run.code:
        assert len(run.errors) == 1, tail
        assert run.errors[0].startswith("::error title="), tail
    lines = [x for x in run.stdout.splitlines() if not x.startswith("::add-mask::")]
    shown = "\n".join([*lines, run.summary, run.output_text])
    for secret in (API_KEY, *secrets):
        assert secret not in shown


@SETTINGS
@given(st.dictionaries(st.sampled_from(INPUTS), ODD_TEXT, min_size=1))
def test_any_inputs(runner: Runner, artifact: FakeArtifact, inputs: dict[str, str]) -> None:
    others = [v for k, v in inputs.items() if k != "base_url"]
    userinfo = () if any("hunter2secret" in v for v in others) else ("hunter2secret",)
    _clean(runner.run(**inputs), *userinfo)


@SETTINGS
@given(payload=JSON, action=JSON)
def test_any_event(runner: Runner, artifact: FakeArtifact, payload: Any, action: Any) -> None:
    event = {"action": action, "client_payload": payload}
    runner.event_path.write_text(json.dumps(event), encoding="utf-8")
    _clean(runner.run())


@SETTINGS
@given(node=JSON, operation=st.sampled_from(["ArtifactMembership", "ArtifactManifest"]))
def test_any_graphql_answer(runner: Runner, fake: FakeWandb, node: Any, operation: str) -> None:
    artifact = fake.store.add_artifact("acme", "churn", "churn-model", {"a": b"a"})
    fake.store.set_aliases(artifact.source, ("production",))
    fake.answers = {operation: (200, {"data": node})}
    _clean(runner.run())
    fake.answers = {operation: (200, {"data": {"project": {"artifactCollectionMembership": node}}})}
    _clean(runner.run())


@SETTINGS
@given(manifest=JSON, contents=st.dictionaries(st.text(max_size=6), JSON, max_size=4))
def test_any_manifest(runner: Runner, fake: FakeWandb, manifest: Any, contents: Any) -> None:
    artifact = fake.store.add_artifact("acme", "churn", "churn-model", {"a": b"a"})
    fake.store.set_aliases(artifact.source, ("production",))
    artifact.raw_manifest = json.dumps(manifest).encode()
    _clean(runner.run())
    artifact.raw_manifest = json.dumps({"contents": contents}).encode()
    _clean(runner.run())


@pytest.mark.parametrize(
    ("inputs", "fragments"),
    [
        ({"base_url": "http://127.0.0.1:99999"}, ["'base-url'", "invalid host or port"]),
        (
            {"base_url": "https://user:hunter2secret@w.example"},
            ["must not hold a user name or password", "https://w.example"],
        ),
        ({"api_key": "local-" + "€" * 40}, ["holds characters no W&B key has"]),
        ({"api_key": "local-0123456789\n0123456789012345678901234567890"}, ["pasted wrongly"]),
        ({"concurrency": "8.5"}, ["'concurrency' must be a whole number"]),
        ({"path": "a\x00b"}, ["WANDB_ACTION_PATH holds a NUL character"]),
        ({"payload": "[" * 100_000}, ["'payload' is not valid JSON", "Pass a JSON object"]),
    ],
)
def test_the_inputs_from_the_issue(
    runner: Runner, fake: FakeWandb, inputs: dict[str, str], fragments: list[str]
) -> None:
    run = runner.run(**inputs)
    _clean(run, "hunter2secret")
    assert run.code == 1
    for fragment in fragments:
        assert fragment in run.errors[0], run.errors[0]
    assert fake.requests == []


def test_a_manifest_key_dot(runner: Runner, artifact: FakeArtifact) -> None:
    artifact.raw_manifest = json.dumps({"contents": {".": {"digest": "x"}}}).encode()
    run = runner.run()
    _clean(run)
    assert "unsafe file path '.'" in run.errors[0]


def test_a_collection_name_that_is_no_directory_name(runner: Runner, fake: FakeWandb) -> None:
    fake.answers["ArtifactMembership"] = (
        200,
        {
            "data": {
                "project": {
                    "artifactCollectionMembership": {
                        "versionIndex": 0,
                        "aliases": [],
                        "artifactCollection": {
                            "name": "..",
                            "project": {"name": "churn", "entity": {"name": "acme"}},
                        },
                        "artifact": {"id": "x", "state": "COMMITTED"},
                    }
                }
            }
        },
    )
    run = runner.run()
    _clean(run)
    assert "the collection name '..' cannot be a directory name" in run.errors[0]
    assert "Set the `path` input" in run.errors[0]
