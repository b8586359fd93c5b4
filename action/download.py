"""Parallel downloads into the staging directory, each file checked before it counts.

Every file goes into its own file in the staging directory (:mod:`action.transfer` does
the GETs) and is checked for size and digest (hashlib's MD5, or XXH128 where the
manifest says so) before the run counts it. A file of at least two parts (``PART_SIZE``)
is fetched as byte ranges, one job per part, written at their offsets into one staged
file, so that a model of a few large shards keeps every stream busy to the end; the
file is hashed in order as its ranges land, and checked once the last is in. When the
server answers a range with the whole file (``200``), that file is fetched in one piece
instead. Files already at their destination with the right digest are kept and not
fetched. The first failure stops the other downloads. References go through their own
session, whose every connection :mod:`action.guard` checks first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import requests

from action.commands import Console
from action.digests import file_matches, new_hasher
from action.errors import ActionError, AuthenticationError, DownloadError
from action.http import RetryPolicy, Sleep, redact_url
from action.plan import Job
from action.progress import Progress, human_bytes
from action.transfer import NoRanges, Span, Stopped, Transfer, check_digest, hash_range

PART_SIZE = 32 << 20  # S3 and GCS serve ranges of any size; 32 MiB is ~0.3 s at 100 MB/s


@dataclass(frozen=True)
class Outcome:
    """A job done: ``staged`` holds the verified file, or None when it was in place."""

    job: Job
    staged: Path | None = None

    @property
    def fetched(self) -> bool:
        return self.staged is not None


class _Ranged:
    """A file fetched as ranges into one staged file.

    Its hash runs in order while the ranges land: the thread whose range joins those
    already hashed hashes it and every landed range after it, while the other threads go
    on fetching; so when the last range lands, little is left to hash. The server's 200
    to one of its ranges makes it a download in one piece instead (``whole``)."""

    def __init__(self, job: Job, staged: Path, size: int, part_size: int) -> None:
        self.job = job
        self.staged = staged
        self.spans = [(at, min(part_size, size - at)) for at in range(0, size, part_size)]
        self.whole = False
        self._hasher = new_hasher(job.entry)
        self._landed: set[int] = set()  # ranges written but not hashed yet
        self._hashed = 0  # the ranges hashed, all of them from the start of the file
        self._hashing = False  # a thread is hashing; ranges that land now wait for it
        self._lock = threading.Lock()

    def land(self, index: int) -> bytes | None:
        """Count range ``index`` as written and hash what now follows the hashed part;
        the file's digest for the one call that hashed its last range, else None."""
        with self._lock:
            self._landed.add(index)
            if self._hashing:
                return None  # the thread hashing takes this range when it gets to it
            self._hashing = True
        while True:
            with self._lock:
                if self._hashed not in self._landed:
                    self._hashing = False
                    return self._hasher.digest() if self._hashed == len(self.spans) else None
                index = self._hashed
            hash_range(self.job, self.staged, self.spans[index], self._hasher)
            with self._lock:
                self._landed.discard(index)
                self._hashed += 1

    def claim_whole(self) -> bool:
        """Mark the file for one whole download; True for the first range to ask.

        The range that claims it never lands, so the ranged copy can never complete too.
        """
        with self._lock:
            first, self.whole = not self.whole, True
            return first


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
        part_size: int = PART_SIZE,
    ) -> None:
        self._auth = ("api", api_key)
        self._concurrency = concurrency
        self._console = console
        self._progress = progress
        self._part_size = part_size
        self._stop = threading.Event()
        self._transfer = Transfer(
            session, references, policy=policy, sleep=sleep, progress=progress, stop=self._stop
        )
        self._lock = threading.Lock()
        self._direct_refused: set[str] = set()  # files whose direct URL got a 4xx

    def run(self, jobs: Sequence[Job], staging: Path) -> list[Outcome]:
        """Fetch and verify every job into ``staging``; raise the first failure."""
        order = sorted(jobs, key=lambda j: -(j.entry.size or 0))  # the largest start first
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="fetch") as pool:
            present = list(pool.map(self._present, order))
            tasks: list[Callable[[], Outcome | None]] = []
            for n, job in enumerate(order):
                if present[n]:
                    continue
                staged = staging / f"{n:06d}.part"
                size = job.entry.size
                if size is not None and size >= 2 * self._part_size:
                    ranged = _Ranged(job, staged, size, self._part_size)
                    tasks.extend(partial(self._range, ranged, i) for i in range(len(ranged.spans)))
                else:
                    tasks.append(partial(self._whole, job, staged))
            futures = [pool.submit(task) for task in tasks]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.exception() for f in done):
                self._stop.set()
                for future in futures:
                    future.cancel()
        errors = [e for f in futures if (e := _error(f)) is not None]
        if errors:
            raise errors[0]
        kept = [Outcome(job) for job, here in zip(order, present, strict=True) if here]
        return kept + [outcome for f in futures if (outcome := f.result()) is not None]

    def _present(self, job: Job) -> bool:
        if not file_matches(job.dest, job.entry):
            return False
        self._progress.add(0)
        self._console.line(f"  present     {job.entry.path}")
        return True

    def _whole(self, job: Job, staged: Path) -> Outcome:
        if self._stop.is_set():
            raise Stopped
        self._fetch(job, staged, None)
        return self._downloaded(job, staged)

    def _range(self, file: _Ranged, index: int) -> Outcome | None:
        """One range of a large file; the outcome of the file from the call that hashed
        its last range."""
        if self._stop.is_set():
            raise Stopped
        if file.whole:
            return None
        try:
            self._fetch(file.job, file.staged, file.spans[index])
        except NoRanges:
            if not file.claim_whole():
                return None
            self._console.line(
                f"  {file.job.entry.path}: the storage does not serve ranges; "
                "fetching it in one piece"
            )
            return self._whole(file.job, file.staged.with_suffix(".whole"))
        if file.whole or (digest := file.land(index)) is None:
            return None
        check_digest(file.job, digest)
        return self._downloaded(file.job, file.staged)

    def _downloaded(self, job: Job, staged: Path) -> Outcome:
        size = human_bytes(job.entry.size or 0)
        self._console.line(f"  downloaded  {job.entry.path} ({size})")
        return Outcome(job, staged)

    def _fetch(self, job: Job, staged: Path, span: Span | None) -> None:
        """Fetch the file (or its ``span``) from its direct URL, else W&B's handler."""
        with self._lock:
            direct = job.url if job.entry.path not in self._direct_refused else ""
        if direct:
            refused = self._transfer.get(job, staged, direct, None, span)
            if refused is None:
                return
            if not job.fallback:
                raise self._refused(job, direct, refused, with_key=False)
            with self._lock:
                first = job.entry.path not in self._direct_refused
                self._direct_refused.add(job.entry.path)
            if first:
                self._console.line(
                    f"  direct URL of {job.entry.path} refused (HTTP {refused}); "
                    "using W&B's download handler"
                )
        refused = self._transfer.get(job, staged, job.fallback, self._auth, span)
        if refused is not None:
            raise self._refused(job, job.fallback, refused, with_key=True)

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


def _error(future: Future[Outcome | None]) -> ActionError | None:
    if future.cancelled():
        return None
    exc = future.exception()
    if exc is None or isinstance(exc, Stopped):
        return None
    if isinstance(exc, ActionError):
        return exc
    raise exc
