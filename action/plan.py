"""From a manifest and the file URLs to a list of download jobs (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from action.artifact import Artifact
from action.digests import is_supported, md5_hex
from action.download import Job
from action.errors import ApiError, UnsupportedReferenceError
from action.manifest import Entry, Manifest

FETCHABLE_SCHEMES = ("https", "http")
LISTED = 10


@dataclass(frozen=True)
class Plan:
    jobs: tuple[Job, ...]
    skipped_refs: tuple[str, ...]
    unverifiable: tuple[str, ...]


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
    """Jobs for every file; raise when references would be left out unasked."""
    refs = manifest.references
    if skip_references:
        skipped = tuple(f"{e.path} -> {e.ref}" for e in refs)
        refs = ()
    else:
        skipped = ()
        foreign = [e for e in refs if _scheme(e.ref) not in FETCHABLE_SCHEMES]
        if foreign:
            shown = "; ".join(f"{e.path} -> {e.ref}" for e in foreign[:LISTED])
            more = f" (and {len(foreign) - LISTED} more)" if len(foreign) > LISTED else ""
            raise UnsupportedReferenceError(
                f"{len(foreign)} entries of {artifact.name} are references the action cannot "
                f"fetch: {shown}{more}.",
                fix="Set `skip-references: true` to download the rest, and fetch those "
                "with their own tools (e.g. the aws or gcloud CLI).",
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
    unverifiable = []
    for entry in refs:
        checkable = is_supported(entry)
        if verify and not checkable:
            unverifiable.append(entry.path)
        jobs.append(Job(entry, target / entry.path, entry.ref, "", verify and checkable))
    return Plan(tuple(jobs), skipped, tuple(unverifiable))


def _scheme(url: str) -> str:
    scheme, found, _ = url.partition("://")
    return scheme.lower() if found else ""
