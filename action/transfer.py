"""One file, or one byte range of it, from a URL into its staged file, with retries.

A whole file is hashed on the way in and checked for size and digest. A range is
written at its offset into the file its other ranges share; its answer must be a ``206``
whose ``Content-Range`` names exactly the bytes asked for, and a ``200`` (the whole
file, from a server without ranges) is never written at an offset: :class:`NoRanges`
tells the caller to fetch the file in one piece. :func:`hash_range` and
:func:`check_digest` check a file put together from ranges.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import BinaryIO

import requests

from action.digests import Hasher, expected_bytes, hash_stretch, new_hasher, show
from action.errors import DownloadError, InternalAddressError, LocalError, VerificationError
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
from action.manifest import Entry
from action.plan import Job
from action.progress import Progress

CHUNK_SIZE = 1 << 20
Span = tuple[int, int]  # (first byte, length) of a range
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class Stopped(Exception):
    """Another file failed: this one gives up quietly."""


class NoRanges(Exception):
    """The server answered a range with the whole file (200)."""


class Transfer:
    """GETs into staged files: W&B's storage through ``session``, references through
    ``references``; each stops once ``stop`` is set."""

    def __init__(
        self,
        session: requests.Session,
        references: requests.Session,
        *,
        policy: RetryPolicy,
        sleep: Sleep,
        progress: Progress,
        stop: threading.Event,
    ) -> None:
        self._session = session
        self._references = references
        self._policy = policy
        self._sleep = sleep
        self._progress = progress
        self._stop = stop

    def get(
        self,
        job: Job,
        staged: Path,
        url: str,
        auth: tuple[str, str] | None,
        span: Span | None,
    ) -> int | None:
        """Download ``url`` (its ``span``) into ``staged``, with retries; the status if it
        was refused."""

        session = self._references if job.entry.ref else self._session
        headers = {"Accept-Encoding": "identity"}
        if span is not None:
            headers["Range"] = f"bytes={span[0]}-{span[0] + span[1] - 1}"

        def once() -> int | None:
            if self._stop.is_set():
                raise Stopped
            with session.get(
                url,
                stream=True,
                auth=auth,
                headers=headers,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            ) as response:
                status = response.status_code
                if is_transient_status(status):
                    raise Transient(f"HTTP {status}", response.headers.get("Retry-After"))
                if not 200 <= status < 300:
                    return status
                if span is not None:
                    if status != 206:  # the whole file: never written at an offset
                        raise NoRanges
                    got = response.headers.get("Content-Range", "")
                    _check_content_range(job.entry, span, got)
                self._stream(response, job, staged, span)
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

    def _stream(
        self, response: requests.Response, job: Job, staged: Path, span: Span | None
    ) -> None:
        """Write the body into ``staged``: a whole file hashed on the way, or a range at
        its offset (hashed with the rest of the file once every range is in)."""
        entry = job.entry
        start, length = span if span is not None else (0, entry.size)
        expected = expected_bytes(entry) if job.verify and span is None else None
        hasher = new_hasher(entry) if expected is not None else None
        written = 0
        try:
            with _open_staged(staged, span) as fh:
                fh.seek(start)
                for chunk in response.iter_content(CHUNK_SIZE):
                    if self._stop.is_set():
                        raise Stopped
                    if length is not None and written + len(chunk) > length:
                        what = "file" if span is None else f"range at {start}"
                        raise VerificationError(
                            f"{entry.path}: the storage sent more than the {length} "
                            f"bytes of the {what} (the manifest says {entry.size} in all).",
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
        if length is not None and written != length:
            self._progress.add(-written)
            if span is not None:  # a 206 that ends early, as a dropped connection does
                raise Transient(f"the range at {start} ended {length - written} bytes short")
            raise VerificationError(
                f"{entry.path}: got {written} bytes, the manifest says {entry.size}.",
                fix="Re-run the job; if it persists the stored file is damaged (log it again).",
            )
        if hasher is not None and expected is not None and hasher.digest() != expected:
            raise _mismatch(entry, hasher.digest(), expected)


def hash_range(job: Job, staged: Path, span: Span, hasher: Hasher) -> None:
    """Feed one range of a file put together from ranges to the file's running hash."""
    try:
        hash_stretch(staged, span[0], span[1], hasher)
    except (OSError, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise LocalError(
            f"cannot read back {job.entry.path} under {staged.parent}: {reason}.",
            fix="Check the runner's disk, or choose another `path`.",
        ) from exc


def check_digest(job: Job, digest: bytes) -> None:
    """Check the digest of a file put together from ranges (hashed in order as they
    landed) against the manifest's."""
    expected = expected_bytes(job.entry) if job.verify else None
    if expected is not None and digest != expected:
        raise _mismatch(job.entry, digest, expected)


def _open_staged(staged: Path, span: Span | None) -> BinaryIO:
    """The staged file for writing: created anew for a whole file; for a range, opened
    without truncating, as the file's other ranges write through handles of their own."""
    if span is None:
        return staged.open("wb")
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)
    return open(os.open(staged, flags, 0o644), "wb")


def _check_content_range(entry: Entry, span: Span, header: str) -> None:
    """Raise unless a 206's ``Content-Range`` names exactly the bytes asked for."""
    start, length = span
    found = _CONTENT_RANGE.fullmatch(header.strip())
    asked = (str(start), str(start + length - 1))
    if found and found.group(1, 2) == asked and found[3] in ("*", str(entry.size)):
        return
    raise VerificationError(
        f"{entry.path}: asked the storage for bytes {start}-{start + length - 1}, it sent "
        f"Content-Range {header[:80]!r}; nothing was written to `path`.",
        fix="The storage (or a proxy before it) serves ranges wrongly: re-run the job; "
        "report it to W&B if it persists.",
    )


def _mismatch(entry: Entry, got: bytes, expected: bytes) -> VerificationError:
    return VerificationError(
        f"{entry.path}: {entry.algorithm} digest {show(got)} does not "
        f"match the manifest's {show(expected)}; nothing was written to `path`.",
        fix="The stored file differs from what was logged: log the artifact again.",
    )
