"""The action's one error tree.

::

    ActionError                    every failure the action reports on purpose
    ├── InputError                 an input, the payload or the event cannot be used
    ├── WandbError                 W&B answered, but not with what the action needs
    │   ├── AuthenticationError    401: the API key is wrong, expired or revoked
    │   ├── NotFoundError          the project or artifact does not exist (or is hidden)
    │   ├── ArtifactStateError     the version is not committed yet (or failed to upload)
    │   └── ApiError               a GraphQL error, an odd answer, or retries exhausted
    │       └── UnsupportedFieldError  the server lacks a field (an older W&B Server)
    ├── DownloadError              a file could not be fetched
    │   ├── VerificationError      a fetched file's size or digest does not match
    │   ├── UnsupportedReferenceError  entries that point outside W&B (s3://, gs://, ...)
    │   └── InternalAddressError   a reference (or its redirect) leads to a non-public address
    └── LocalError                 the runner's disk refused a write (path, GITHUB_OUTPUT)

Each carries ``title`` (the annotation's title) and ``fix`` (what the user can do).
Third-party exceptions are translated where they occur: ``requests`` in
:mod:`action.http`, ``OSError`` in :mod:`action.transfer` and :mod:`action.main`, each with
``raise ... from exc``. No message ever contains the API key: URLs that carry W&B
credentials are never put in a message, and pre-signed URLs are shown without their
query string.
"""

from __future__ import annotations


class ActionError(Exception):
    """Base of every error the action reports on purpose."""

    title = "W&B artifact action failed"

    def __init__(self, message: str, *, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} {self.fix}".strip()


class InputError(ActionError):
    title = "Invalid input"


class WandbError(ActionError):
    title = "W&B request failed"


class AuthenticationError(WandbError):
    title = "W&B rejected the API key"


class NotFoundError(WandbError):
    title = "W&B artifact not found"


class ArtifactStateError(WandbError):
    title = "W&B artifact is not committed"


class ApiError(WandbError):
    title = "W&B API error"


class UnsupportedFieldError(ApiError):
    """Raised when GraphQL answers "Cannot query field"; callers fall back to older fields."""

    def __init__(self, message: str, *, field: str, fix: str = "") -> None:
        super().__init__(message, fix=fix)
        self.field = field


class DownloadError(ActionError):
    title = "Download failed"


class VerificationError(DownloadError):
    title = "File verification failed"


class UnsupportedReferenceError(DownloadError):
    title = "Artifact has references the action cannot fetch"


class InternalAddressError(DownloadError):
    """Raised before connecting to a loopback, private, link-local or metadata address."""

    title = "Reference points at an internal address"


class LocalError(ActionError):
    title = "Cannot write on the runner"
