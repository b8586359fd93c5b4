"""The action's entry point: ``main(environ)`` returns the process exit status."""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import requests

from action import summary
from action.artifact import Artifact, outputs
from action.commands import Console, append_summary, write_outputs
from action.download import PART_SIZE, Downloader, Outcome
from action.errors import ActionError, ApiError, DownloadError, InputError
from action.event import event_type_matches, load_event, read_trigger
from action.graphql import GraphQLClient
from action.guard import reference_session
from action.http import RetryPolicy, Sleep, make_session, redact_url, request_once, retrying
from action.inputs import PREFIX, Settings, read_settings
from action.manifest import Manifest, is_safe_path, parse_manifest
from action.plan import plan
from action.progress import Clock, Progress
from action.refs import parse_ref
from action.staging import check_target, install, make_staging
from action.wandb_api import WandbApi

BUG_FIX = "This is a bug in the action: please report it with this line and the W&B version."


def main(
    environ: Mapping[str, str],
    *,
    stdout: TextIO | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
    policy: RetryPolicy | None = None,
    part_size: int = PART_SIZE,
) -> int:
    """Run the action; 0 on success or skip, 1 on a failure reported as ``::error::``.

    ``part_size`` is the size of the ranges large files are fetched in (tests make it small).
    """
    console = Console(stdout if stdout is not None else sys.stdout)
    # Mask the key before anything else can print: a parse error may follow.
    for key in (environ.get(PREFIX + "API_KEY", ""), environ.get("WANDB_API_KEY", "")):
        for line in key.splitlines():
            console.add_mask(line.strip())
    summary_file = environ.get("GITHUB_STEP_SUMMARY", "")
    try:
        settings = read_settings(environ)
        return _run(settings, console, sleep, clock, policy or RetryPolicy(), part_size)
    except ActionError as exc:
        title, message = exc.title, str(exc)
    except Exception as exc:  # a bug: named by its type and place, never a traceback
        last = traceback.extract_tb(exc.__traceback__)[-1]
        title = "Internal error"
        message = f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno}. {BUG_FIX}"
    console.error(message, title=title)
    with contextlib.suppress(ActionError, ValueError):
        append_summary(summary_file, summary.failure(title, message))
    return 1


def _run(
    settings: Settings,
    console: Console,
    sleep: Sleep,
    clock: Clock,
    policy: RetryPolicy,
    part_size: int,
) -> int:
    started = clock()
    trigger = read_trigger(load_event(settings.event_path), settings.payload, settings.artifact)
    base = {"event-type": trigger.event_type, "event-author": trigger.event_author}
    if settings.event_types and not event_type_matches(trigger.event_type, settings.event_types):
        reason = (
            f"event type {trigger.event_type or '(none)'} is not one of "
            f"{', '.join(settings.event_types)}; nothing downloaded."
        )
        return _skip(settings, console, reason, base)
    if not trigger.artifact:
        raise InputError(
            "no artifact to fetch: the `artifact` input is empty and the event's "
            "client_payload has neither artifact_version_string nor artifact_version.",
            fix="Set the `artifact` input, or add "
            '"artifact_version_string": "${artifact_version_string}" to the W&B payload.',
        )
    ref = parse_ref(trigger.artifact)
    if not settings.api_key:
        raise InputError(
            "no W&B API key: the `api-key` input and WANDB_API_KEY are both empty.",
            fix="Pass `api-key: ${{ secrets.WANDB_API_KEY }}` (the secret must exist and be "
            "available to this workflow).",
        )
    with (
        make_session(settings.concurrency + 2) as session,
        reference_session(settings.concurrency, settings.base_url) as references,
    ):
        api = WandbApi(
            GraphQLClient(session, settings.base_url, settings.api_key, sleep=sleep, policy=policy)
        )
        console.line(f"Resolving {ref} at {settings.base_url}")
        artifact = api.resolve(ref)
        console.line(f"Resolved {artifact.name} (aliases: {', '.join(artifact.aliases) or '-'})")
        info = {**base, **outputs(artifact)}
        if settings.aliases and not set(settings.aliases) & set(artifact.aliases):
            reason = (
                f"{artifact.name} has aliases {', '.join(artifact.aliases) or '(none)'}, none "
                f"of {', '.join(settings.aliases)}; nothing downloaded."
            )
            return _skip(settings, console, reason, info)
        target = _target(settings, artifact)
        manifest = _fetch_manifest(session, api, artifact, sleep, policy)
        urls = api.file_urls(artifact) if manifest.stored else {}
        work = plan(
            manifest,
            urls,
            artifact,
            target=target,
            base_url=settings.base_url,
            verify=settings.verify,
            skip_references=settings.skip_references,
        )
        check_target(target, (job.dest for job in work.jobs))  # before any download
        if work.skipped_refs:
            console.warning(
                f"skipped {len(work.skipped_refs)} references (skip-references is true): "
                + "; ".join(work.skipped_refs[:10]),
            )
        total = sum(j.entry.size or 0 for j in work.jobs)
        progress = Progress(
            total, interval=settings.progress_interval, clock=clock, console=console
        )
        downloader = Downloader(
            session,
            references,
            settings.api_key,
            concurrency=settings.concurrency,
            policy=policy,
            sleep=sleep,
            console=console,
            progress=progress,
            part_size=part_size,
        )
        console.group(f"Files of {artifact.name} ({len(work.jobs)}) -> {target}")
        staging = make_staging(target)
        try:
            outcomes = downloader.run(work.jobs, staging)
            install([(o.staged, o.job.dest) for o in outcomes if o.staged], target, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            console.endgroup()
    result = summary.Result(
        artifact=artifact,
        path=str(target),
        files=len(outcomes),
        total_bytes=total,
        fetched_files=sum(1 for o in outcomes if o.fetched),
        fetched_bytes=sum(o.job.entry.size or 0 for o in outcomes if o.fetched),
        skipped_refs=work.skipped_refs,
        event_type=trigger.event_type,
        event_author=trigger.event_author,
        seconds=clock() - started,
    )
    return _finish(settings, console, result, info, outcomes)


def _finish(
    settings: Settings,
    console: Console,
    result: summary.Result,
    info: dict[str, str],
    outcomes: list[Outcome],
) -> int:
    name, target = result.artifact.name, Path(result.path)
    console.line(
        f"Fetched {name}: {result.files} files ({result.fetched_files} downloaded) "
        f"in {target}, {result.seconds:.1f} s"
    )
    wanted = {o.job.dest for o in outcomes}
    extra = sorted(p for p in target.rglob("*") if p.is_file() and p not in wanted)
    if extra:
        shown = ", ".join(p.relative_to(target).as_posix() for p in extra[:5])
        more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
        console.warning(
            f"{len(extra)} files at {target} are not part of {name} and were left "
            f"in place: {shown}{more}.",
            title="Extra files at path",
        )
    files = {"path": str(target), "files": str(result.files), "bytes": str(result.total_bytes)}
    write_outputs(settings.output_file, {"skipped": "false", **info, **files}, console)
    append_summary(settings.summary_file, summary.success(result))
    return 0


def _skip(settings: Settings, console: Console, reason: str, info: dict[str, str]) -> int:
    console.line(f"Skipping: {reason}")
    outputs = {"skipped": "true", "path": "", "files": "0", "bytes": "0", **info}
    write_outputs(settings.output_file, outputs, console)
    append_summary(settings.summary_file, summary.skipped(reason))
    return 0


def _target(settings: Settings, artifact: Artifact) -> Path:
    if settings.path:
        path = Path(settings.path)
    else:
        name = artifact.collection
        if "/" in name or not is_safe_path(name):
            raise ApiError(
                f"the collection name {name!r} cannot be a directory name.",
                fix="Set the `path` input to say where the files go.",
            )
        path = Path("artifacts") / name
    return path if path.is_absolute() else settings.workspace / path


def _fetch_manifest(
    session: requests.Session, api: WandbApi, artifact: Artifact, sleep: Sleep, policy: RetryPolicy
) -> Manifest:
    url = api.manifest_url(artifact)
    fix = "Re-run the job; if it persists, check that the runner can reach W&B's storage."
    what = "fetching the manifest"
    response = retrying(
        lambda: request_once(session, "GET", url),
        url=url,
        what=what,
        error=DownloadError,
        fix=fix,
        sleep=sleep,
        policy=policy,
    )
    with response:
        if response.status_code != 200:
            raise DownloadError(
                f"{what} of {artifact.name} failed: HTTP {response.status_code} from "
                f"{redact_url(url)}.",
                fix=fix,
            )
        return parse_manifest(response.content)
