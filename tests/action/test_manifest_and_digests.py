"""The manifest parser, digests, the download plan, and small pure helpers."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import xxhash

from action.artifact import Artifact
from action.digests import expected_bytes, file_matches, is_supported, md5_hex
from action.errors import ApiError
from action.manifest import Entry, parse_manifest, safe_path
from action.plan import handler_url
from action.progress import human_bytes


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _manifest(contents: dict[str, object], layout: str = "V2", region: str = "") -> str:
    config = {"storageLayout": layout, **({"storageRegion": region} if region else {})}
    return json.dumps({"version": 1, "storagePolicyConfig": config, "contents": contents})


def test_parse_manifest() -> None:
    md5 = _b64(hashlib.md5(b"x", usedforsecurity=False).digest())
    manifest = parse_manifest(
        _manifest(
            {
                "b/c.txt": {"digest": md5, "size": 1, "birthArtifactID": "QQ=="},
                "a.txt": {"digest": md5, "size": 1, "extra": {"alg": "xxh128"}},
                "r": {"digest": "etag", "ref": "s3://b/r"},
            },
            region="coreweave-us",
        )
    )
    assert [e.path for e in manifest.entries] == ["a.txt", "b/c.txt", "r"]
    assert manifest.entries[0].algorithm == "XXH128"
    assert manifest.storage_region == "coreweave-us"
    assert [e.path for e in manifest.stored] == ["a.txt", "b/c.txt"]
    assert [e.path for e in manifest.references] == ["r"]
    assert manifest.entries[2].size is None


@pytest.mark.parametrize(
    "key", ["../x", "/etc/passwd", "a/../../x", "a//b", "", "c:/x", "a\\b", ".", "a/./b", "a\x00b"]
)
def test_unsafe_paths(key: str) -> None:
    with pytest.raises(ApiError, match="unsafe"):
        safe_path(key)


@pytest.mark.parametrize(
    "text",
    [
        "nope",
        "[]",
        '{"contents": []}',
        _manifest({"a": {"digest": 5}}),
        _manifest({"a": {"digest": "x", "size": -1}}),
        _manifest({"a": {"digest": "x", "size": True}}),
        _manifest({"a": {"digest": "x"}, "a/b": {"digest": "x"}}),
        "[" * 100_000,
    ],
)
def test_bad_manifests(text: str) -> None:
    with pytest.raises(ApiError, match="manifest"):
        parse_manifest(text)


def _entry(digest: str, algorithm: str = "MD5", size: int | None = 5) -> Entry:
    return Entry("dir/f.bin", digest, size, algorithm, "QXJ0aWZhY3Q6MQ==", "")


def test_digest_forms() -> None:
    raw = hashlib.md5(b"hello", usedforsecurity=False).digest()
    assert expected_bytes(_entry(_b64(raw))) == raw
    assert expected_bytes(_entry(f'"{raw.hex()}"')) == raw  # ETag form
    assert expected_bytes(_entry("not base64!")) is None
    assert expected_bytes(_entry(_b64(b"short"))) is None
    assert md5_hex(_entry(_b64(raw))) == raw.hex()
    assert not is_supported(_entry(_b64(raw), "SHA256"))


def test_file_matches(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    md5 = _b64(hashlib.md5(b"hello", usedforsecurity=False).digest())
    xxh = _b64(xxhash.xxh3_128(b"hello").digest())
    assert file_matches(path, _entry(md5))
    assert file_matches(path, _entry(xxh, "XXH128"))
    assert not file_matches(path, _entry(xxh))
    assert not file_matches(path, _entry(md5, size=6))
    assert not file_matches(tmp_path / "absent", _entry(md5))
    assert not file_matches(tmp_path, _entry(md5))


def test_handler_urls() -> None:
    artifact = Artifact(
        "id", "acme org", "wandb-registry-model", "churn", 3, (), "", "", "", 0, 0, ""
    )
    raw = hashlib.md5(b"hello", usedforsecurity=False).digest()
    entry = _entry(_b64(raw))
    v2 = parse_manifest(_manifest({}, region="eu"))
    assert handler_url("https://w.example", v2, artifact, entry) == (
        "https://w.example/artifactsV2/eu/acme%20org/wandb-registry-model/churn/"
        f"QXJ0aWZhY3Q6MQ%3D%3D/{raw.hex()}/f.bin"
    )
    v1 = parse_manifest(_manifest({}, layout="V1"))
    assert handler_url("https://w.example", v1, artifact, entry) == (
        f"https://w.example/artifacts/acme%20org/{raw.hex()}"
    )
    assert handler_url("https://w.example", v2, artifact, _entry("opaque")) == ""


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1024, 3 * 2**30)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "3.0 GiB",
    ]
