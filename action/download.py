"""Parallel, verified downloads into a staging directory, moved into place at the end.

Every file streams into its own temporary file in a staging directory next to the
target (same filesystem), is hashed while it is written, and is checked for size and
digest. Only when every file succeeded are the staged files renamed into the target;
on any failure the staging directory is removed, so the target never holds a partial
file. Files already in the target with the right digest are kept and not fetched.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import requests

from action.buffers import ThreadBuffers, chunk_size_for
from action.commands import Console
from action.digests import Hasher, expected_bytes, file_matches, new_hasher, show
from action.errors import (
    ActionError,
    AuthenticationError,
    DownloadError,
    LocalError,
    VerificationError,
)
from action.http import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    TRANSIENT_EXCEPTIONS,
    RetryPolicy,
    Sleep,
    describe,
    is_transient_status,
    read_body,
    redact_url,
)
from action.manifest import Entry
from action.progress import Progress, human_bytes
from action.staging import make_staging, move_into_place


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
class Outcome:
    job: Job
    fetched: bool
    staged: Path | None = None


class _Stopped(Exception):
    """Internal: another file failed, this one gives up quietly."""


class Downloader:
    """Fetches jobs with ``concurrency`` threads over one pooled session."""

    def __init__(
        self,
        session: requests.Session,
        api_key: str,
        *,
        concurrency: int,
        policy: RetryPolicy,
        sleep: Sleep,
        console: Console,
        progress: Progress,
        chunk_size: int | None = None,
        md5: Callable[[], Hasher] | None = None,
    ) -> None:
        self._session = session
        self._auth = ("api", api_key)
        self._concurrency = concurrency
        self._policy = policy
        self._sleep = sleep
        self._console = console
        self._progress = progress
        self._buffers = ThreadBuffers(chunk_size or chunk_size_for(concurrency))
        self._md5 = md5  # e.g. md5lanes.Lanes.md5: the threads' MD5s share vector lanes
        self._stop = threading.Event()

    def run(self, jobs: Sequence[Job], root: Path) -> list[Outcome]:
        """Fetch and verify every job, then move them under ``root``; all or nothing."""
        staging = make_staging(root)
        order = sorted(jobs, key=lambda j: -(j.entry.size or 0))  # longest first
        try:
            with ThreadPoolExecutor(self._concurrency, thread_name_prefix="fetch") as pool:
                futures = [
                    pool.submit(self._one, job, staging / f"{n:06d}.part")
                    for n, job in enumerate(order)
                ]
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                if any(f.exception() for f in done):
                    self._stop.set()
                    for future in futures:
                        future.cancel()
            outcomes = [f.result() for f in futures if not _failed(f)]
            errors = [e for f in futures if (e := _error(f)) is not None]
            if errors:
                raise errors[0]
            move_into_place(outcomes, root)
            return outcomes
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _one(self, job: Job, staged: Path) -> Outcome:
        if self._stop.is_set():
            raise _Stopped
        if file_matches(job.dest, job.entry):
            self._progress.add(0)
            self._console.line(f"  present     {job.entry.path}")
            return Outcome(job, fetched=False)
        self._fetch(job, staged)
        size = human_bytes(job.entry.size or 0)
        self._console.line(f"  downloaded  {job.entry.path} ({size})")
        return Outcome(job, fetched=True, staged=staged)

    def _fetch(self, job: Job, staged: Path) -> None:
        url, auth = (job.url, None) if job.url else (job.fallback, self._auth)
        cause = ""
        for attempt in range(1, self._policy.attempts + 1):
            retry_after = None
            try:
                with self._session.get(
                    url,
                    stream=True,
                    auth=auth,
                    headers={"Accept-Encoding": "identity"},
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                ) as response:
                    status = response.status_code
                    if 200 <= status < 300:
                        self._stream(response, job, staged)
                        return
                    retry_after = response.headers.get("Retry-After")
                if not is_transient_status(status):
                    if auth is None and job.fallback:
                        self._console.line(
                            f"  direct URL of {job.entry.path} refused (HTTP {status}); "
                            "using W&B's download handler"
                        )
                        url, auth = job.fallback, self._auth
                        continue
                    raise self._refused(job, url, status, with_key=auth is not None)
                cause = f"HTTP {status}"
            except TRANSIENT_EXCEPTIONS as exc:
                cause = describe(exc)
            except requests.RequestException as exc:  # a bad URL, too many redirects
                raise DownloadError(
                    f"{job.entry.path}: cannot fetch {redact_url(url)} ({describe(exc)}).",
                    fix="Check the artifact's reference URL, or set skip-references.",
                ) from exc
            if self._stop.is_set():
                raise _Stopped
            if attempt < self._policy.attempts:
                self._sleep(self._policy.delay(attempt, retry_after))
        raise DownloadError(
            f"{job.entry.path}: download failed after {self._policy.attempts} attempts "
            f"({cause}) from {redact_url(url)}.",
            fix="The storage or network is failing; re-run the job later.",
        )

    def _refused(self, job: Job, url: str, status: int, *, with_key: bool) -> ActionError:
        where = redact_url(url)
        if with_key and status == 401:
            return AuthenticationError(
                f"{job.entry.path}: W&B's download handler rejected the API key (HTTP 401).",
                fix="Check the `api-key` input (or the WANDB_API_KEY secret).",
            )
        if job.entry.ref:
            fix = "Make the referenced URL readable from the runner, or set skip-references."
        else:
            fix = "Check that the key's user can read the artifact; the file may be deleted."
        return DownloadError(f"{job.entry.path}: HTTP {status} from {where}.", fix=fix)

    def _stream(self, response: requests.Response, job: Job, staged: Path) -> None:
        entry, expected = job.entry, expected_bytes(job.entry) if job.verify else None
        hasher = new_hasher(entry, self._md5) if expected is not None else None
        written = 0
        try:
            with staged.open("wb", buffering=0) as fh:
                for piece in read_body(response, self._buffers.size, self._buffers.get()):
                    if self._stop.is_set():
                        raise _Stopped
                    if hasher is not None:
                        hasher.update(piece)
                    fh.write(piece)
                    written += len(piece)
                    self._progress.add(len(piece))
        except requests.RequestException:  # an OSError too, but the network's fault
            self._progress.add(-written)
            raise
        except OSError as exc:
            self._progress.add(-written)
            raise LocalError(
                f"cannot write {entry.path} under {staged.parent}: {exc.strerror or exc}.",
                fix="Free disk space on the runner or choose another `path`.",
            ) from exc
        except BaseException:
            self._progress.add(-written)
            raise
        if entry.size is not None and written != entry.size:
            self._progress.add(-written)
            raise VerificationError(
                f"{entry.path}: got {written} bytes, the manifest says {entry.size}.",
                fix="Re-run the job; if it persists the stored file is damaged (log it again).",
            )
        if hasher is not None and expected is not None and hasher.digest() != expected:
            raise VerificationError(
                f"{entry.path}: {entry.algorithm} digest {show(hasher.digest())} does not "
                f"match the manifest's {show(expected)}; nothing was written to the target.",
                fix="The stored file differs from what was logged: log the artifact again.",
            )


def _failed(future: Future[Outcome]) -> bool:
    return future.cancelled() or future.exception() is not None


def _error(future: Future[Outcome]) -> ActionError | None:
    if future.cancelled():
        return None
    exc = future.exception()
    if exc is None or isinstance(exc, _Stopped):
        return None
    if isinstance(exc, ActionError):
        return exc
    raise exc
