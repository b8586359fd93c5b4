"""``action.plan``: from manifest entries to jobs, and what it refuses up front."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from action.artifact import Artifact
from action.errors import ApiError, UnsupportedReferenceError, VerificationError
from action.manifest import parse_manifest
from action.plan import plan

MD5_HELLO = "XUFAKrxLKna5cZ2REBfFkg=="  # base64 of MD5("hello")
ARTIFACT = Artifact("id", "acme", "proj", "model", 2, (), "", "model", "COMMITTED", 0, 0, "")
ROOT = Path("/w/model")


def _plan(contents: dict[str, Any], urls: dict[str, str] | None = None, **kw: Any) -> Any:
    manifest = parse_manifest(
        json.dumps({"storagePolicyConfig": {"storageLayout": "V2"}, "contents": contents})
    )
    options = {"verify": True, "skip_references": False, **kw}
    return plan(
        manifest, urls or {}, ARTIFACT, target=ROOT, base_url="https://w.example", **options
    )


def test_stored_files_use_the_direct_url_then_the_handler() -> None:
    work = _plan(
        {"a/b.txt": {"digest": MD5_HELLO, "size": 5, "birthArtifactID": "QQ=="}},
        {"a/b.txt": "https://storage.example/o?sig=1"},
    )
    (job,) = work.jobs
    assert job.dest == ROOT / "a/b.txt" and job.url == "https://storage.example/o?sig=1"
    assert job.fallback == (
        "https://w.example/artifactsV2/default/acme/proj/model/QQ%3D%3D/"
        "5d41402abc4b2a76b9719d911017c592/b.txt"
    )
    assert job.verify


def test_a_file_without_a_checkable_digest_needs_verify_false() -> None:
    contents = {"x": {"digest": "opaque", "size": 5}, "y": {"size": 1}}
    with pytest.raises(VerificationError, match=r"2 files .*: x; y"):
        _plan(contents, {"x": "https://s/x", "y": "https://s/y"})
    work = _plan(contents, {"x": "https://s/x", "y": "https://s/y"}, verify=False)
    assert [j.entry.path for j in work.jobs] == ["x", "y"]


def test_no_url_at_all_is_an_api_error() -> None:
    with pytest.raises(ApiError, match="no download URL for x"):
        _plan({"x": {"digest": "opaque"}}, verify=False)


def test_references() -> None:
    contents = {
        "h": {"digest": MD5_HELLO, "ref": "https://user:pw@e.example/h?sig=2"},
        "s": {"digest": MD5_HELLO, "ref": "s3://bucket/s"},
    }
    with pytest.raises(UnsupportedReferenceError, match="s -> s3://bucket/s") as caught:
        _plan(contents)
    assert "pw" not in str(caught.value)
    work = _plan(contents, skip_references=True)
    assert work.jobs == () and work.skipped_refs == (
        "h -> https://e.example/h",
        "s -> s3://bucket/s",
    )
    only_http = _plan({"h": contents["h"]})
    assert [j.url for j in only_http.jobs] == ["https://user:pw@e.example/h?sig=2"]
