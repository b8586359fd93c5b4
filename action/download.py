"""Parallel downloads into the staging directory, each file checked as it is written.

Every file streams into its own file in the staging directory, hashed on the way with
hashlib's MD5 (or XXH128 where the manifest says so), and is checked for size and digest
before the run counts it. Files already at their destination with the right digest are
kept and not fetched. The first failure stops the other downloads. References go through
their own session, whose every connection :mod:`action.guard` checks first.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import requests

from action.commands import Console
from action.digests import expected_bytes, file_matches, new_hasher, show
from action.errors import (
    ActionError,
    AuthenticationError,
    DownloadError,
    InternalAddressError,
    LocalError,
    VerificationError,
)
from action.http import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    RetryPolicy,
    Sleep,
    Transient,
    is_transient_status,
    redact_url,
    retrying,
)
from action.plan import Job
from action.progress import Progress, human_bytes

CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class Outcome:
    """A job done: ``staged`` holds the verified file, or None when it was in place."""

    job: Job
    staged: Path | None = None

    @property
    def fetched(self) -> bool:
        return self.staged is not None


class _Stopped(Exception):
    """Internal: another file failed, this one gives up quietly."""


class Downloader:
    """Fetches jobs with ``concurrency`` threads over one pooled session."""

    def __init__(
        self,
        session: requests.Session,
        references: requests.Session,
        api_key: str,
        *,
        concurrency: int,
        policy: RetryPolicy,
        sleep: Sleep,
        console: Console,
        progress: Progress,
    ) -> None:
        self._session = session
        self._references = references
        self._auth = ("api", api_key)
        self._concurrency = concurrency
        self._policy = policy
        self._sleep = sleep
        self._console = console
        self._progress = progress
        self._stop = threading.Event()

    def run(self, jobs: Sequence[Job], staging: Path) -> list[Outcome]:
        """Fetch and verify every job into ``staging``; raise the first failure."""
        order = sorted(jobs, key=lambda j: -(j.entry.size or 0))  # the largest start first
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
        errors = [e for f in futures if (e := _error(f)) is not None]
        if errors:
            raise errors[0]
        return [f.result() for f in futures]

    def _one(self, job: Job, staged: Path) -> Outcome:
        if self._stop.is_set():
            raise _Stopped
        if file_matches(job.dest, job.entry):
            self._progress.add(0)
            self._console.line(f"  present     {job.entry.path}")
            return Outcome(job)
        self._fetch(job, staged)
        size = human_bytes(job.entry.size or 0)
        self._console.line(f"  downloaded  {job.entry.path} ({size})")
        return Outcome(job, staged)

    def _fetch(self, job: Job, staged: Path) -> None:
        if job.url:
            refused = self._get(job, staged, job.url, None)
            if refused is None:
                return
            if not job.fallback:
                raise self._refused(job, job.url, refused, with_key=False)
            self._console.line(
                f"  direct URL of {job.entry.path} refused (HTTP {refused}); "
                "using W&B's download handler"
            )
        refused = self._get(job, staged, job.fallback, self._auth)
        if refused is not None:
            raise self._refused(job, job.fallback, refused, with_key=True)

    def _get(self, job: Job, staged: Path, url: str, auth: tuple[str, str] | None) -> int | None:
        """Download ``url`` into ``staged``, with retries; the status if it was refused."""

        session = self._references if job.entry.ref else self._session

        def once() -> int | None:
            if self._stop.is_set():
                raise _Stopped
            with session.get(
                url,
                stream=True,
                auth=auth,
                headers={"Accept-Encoding": "identity"},
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            ) as response:
                status = response.status_code
                if is_transient_status(status):
                    raise Transient(f"HTTP {status}", response.headers.get("Retry-After"))
                if not 200 <= status < 300:
                    return status
                self._stream(response, job, staged)
                return None

        if job.entry.ref:
            fix = "Check that the reference's URL is reachable from the runner, or set "
            fix += "skip-references; then re-run the job."
        else:
            fix = "The storage or the network is failing; re-run the job later."
        try:
            return retrying(
                once,
                url=url,
                what=f"{job.entry.path}: download",
                error=DownloadError,
                fix=fix,
                sleep=self._sleep_unless_stopped,
                policy=self._policy,
            )
        except InternalAddressError as exc:
            raise InternalAddressError(
                f"{job.entry.path}: not fetched: its reference {redact_url(url)} (or a "
                f"redirect from it) leads to {exc.message}, which the action never connects to.",
                fix="A reference must be on a public address or on the W&B host of `base-url`. "
                "Set `skip-references: true` to download the rest, and fetch this file in a "
                "step of your own if it is meant to come from your network.",
            ) from exc

    def _sleep_unless_stopped(self, seconds: float) -> None:
        if not self._stop.is_set():
            self._sleep(seconds)

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
        entry = job.entry
        expected = expected_bytes(entry) if job.verify else None
        hasher = new_hasher(entry) if expected is not None else None
        written = 0
        try:
            with staged.open("wb") as fh:
                for chunk in response.iter_content(CHUNK_SIZE):
                    if self._stop.is_set():
                        raise _Stopped
                    if entry.size is not None and written + len(chunk) > entry.size:
                        raise VerificationError(
                            f"{entry.path}: the storage sent more than the {entry.size} "
                            "bytes the manifest says.",
                            fix="Re-run the job; if it persists, log the artifact again.",
                        )
                    if hasher is not None:
                        hasher.update(chunk)
                    fh.write(chunk)
                    written += len(chunk)
                    self._progress.add(len(chunk))
        except requests.RequestException:  # an OSError too, but the network's: retried
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
        if hasher is not None and hasher.digest() != expected:
            raise VerificationError(
                f"{entry.path}: {entry.algorithm} digest {show(hasher.digest())} does not "
                f"match the manifest's {show(expected or b'')}; nothing was written to `path`.",
                fix="The stored file differs from what was logged: log the artifact again.",
            )


def _error(future: Future[Outcome]) -> ActionError | None:
    if future.cancelled():
        return None
    exc = future.exception()
    if exc is None or isinstance(exc, _Stopped):
        return None
    if isinstance(exc, ActionError):
        return exc
    raise exc
