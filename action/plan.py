"""From a manifest and the file URLs to a list of download jobs (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from action.artifact import Artifact
from action.digests import is_supported, md5_hex
from action.errors import ApiError, UnsupportedReferenceError, VerificationError
from action.http import redact_url
from action.manifest import Entry, Manifest

FETCHABLE_SCHEMES = ("https", "http")
LISTED = 10


@dataclass(frozen=True)
class Job:
    """One file to put at ``dest``: from ``url`` (no credentials), else ``fallback``.

    ``fallback`` is W&B's download handler, which takes the API key; with no ``url`` it
    is the first choice.
    """

    entry: Entry
    dest: Path
    url: str
    fallback: str = ""
    verify: bool = True


@dataclass(frozen=True)
class Plan:
    jobs: tuple[Job, ...]
    skipped_refs: tuple[str, ...]


def handler_url(base_url: str, manifest: Manifest, artifact: Artifact, entry: Entry) -> str:
    """W&B's own download handler for a stored file (needs the API key), or ``""``."""
    digest_hex = md5_hex(entry)
    if not digest_hex:
        return ""
    if manifest.storage_layout.upper() == "V2":
        parts = [
            manifest.storage_region or "default",
            artifact.entity,
            artifact.project,
            artifact.collection,
            entry.birth_artifact_id,
            digest_hex,
            entry.basename,
        ]
        return f"{base_url}/artifactsV2/" + "/".join(quote(p, safe="") for p in parts)
    return f"{base_url}/artifacts/{quote(artifact.entity, safe='')}/{digest_hex}"


def plan(
    manifest: Manifest,
    urls: dict[str, str],
    artifact: Artifact,
    *,
    target: Path,
    base_url: str,
    verify: bool,
    skip_references: bool,
) -> Plan:
    """Jobs for every file; raise when references would be left out unasked, or when
    ``verify`` is on and an entry's digest cannot be checked."""
    refs = manifest.references
    if skip_references:
        skipped = tuple(_show(e) for e in refs)
        refs = ()
    else:
        skipped = ()
        foreign = [e for e in refs if _scheme(e.ref) not in FETCHABLE_SCHEMES]
        if foreign:
            raise UnsupportedReferenceError(
                f"{len(foreign)} entries of {artifact.name} are references the action cannot "
                f"fetch: {_listed([_show(e) for e in foreign])}.",
                fix="Set `skip-references: true` to download the rest, and fetch those "
                "with their own tools (e.g. the aws or gcloud CLI).",
            )
    entries = (*manifest.stored, *refs)
    if verify:
        unknown = [e.path for e in entries if not is_supported(e)]
        if unknown:
            raise VerificationError(
                f"{len(unknown)} files of {artifact.name} have no digest the action can check "
                f"(missing, or not a base64 MD5 / XXH128, or an opaque ETag): "
                f"{_listed(unknown)}.",
                fix="Log the artifact again with a current W&B client, or set `verify: false` "
                "to accept these files after a size check only.",
            )
    jobs = []
    for entry in manifest.stored:
        direct = urls.get(entry.path, "")
        fallback = handler_url(base_url, manifest, artifact, entry)
        if not direct and not fallback:
            raise ApiError(
                f"W&B listed no download URL for {entry.path} of {artifact.name}.",
                fix="Re-run the job; report it to W&B if it persists.",
            )
        jobs.append(Job(entry, target / entry.path, direct, fallback, verify))
    jobs.extend(Job(entry, target / entry.path, entry.ref, "", verify) for entry in refs)
    return Plan(tuple(jobs), skipped)


def _show(entry: Entry) -> str:
    return f"{entry.path} -> {redact_url(entry.ref)}"


def _listed(items: list[str]) -> str:
    more = f" (and {len(items) - LISTED} more)" if len(items) > LISTED else ""
    return "; ".join(items[:LISTED]) + more


def _scheme(url: str) -> str:
    scheme, found, _ = url.partition("://")
    return scheme.lower() if found else ""
