"""``action.http``: the one retry loop, and URLs fit for a message."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from action.errors import DownloadError
from action.http import RetryPolicy, Transient, redact_url, retrying


def _run(attempt: Callable[[], str], sleeps: list[float]) -> str:
    return retrying(
        attempt,
        url="https://user:pw@s.example/o?sig=secret",
        what="getting o",
        error=DownloadError,
        fix="Re-run.",
        sleep=sleeps.append,
        policy=RetryPolicy(attempts=4, base=1, cap=8),
    )


def test_transient_failures_are_retried_with_backoff() -> None:
    outcomes: list[BaseException | str] = [
        Transient("HTTP 503"),
        requests.ConnectionError("reset"),
        Transient("HTTP 429", retry_after="7"),
        "done",
    ]

    def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    sleeps: list[float] = []
    assert _run(attempt, sleeps) == "done"
    assert 0.5 <= sleeps[0] <= 1 and 1 <= sleeps[1] <= 2 and sleeps[2] >= 7


def test_the_last_cause_is_named_without_userinfo_or_query() -> None:
    def attempt() -> str:
        raise Transient("HTTP 502")

    sleeps: list[float] = []
    with pytest.raises(DownloadError) as caught:
        _run(attempt, sleeps)
    assert str(caught.value) == (
        "getting o failed after 4 attempts (HTTP 502) at https://s.example/o. Re-run."
    )
    assert len(sleeps) == 3


def test_a_request_that_cannot_be_sent_is_final() -> None:
    def attempt() -> str:
        raise requests.exceptions.InvalidURL("bad")

    sleeps: list[float] = []
    with pytest.raises(DownloadError, match=r"getting o failed \(InvalidURL\)"):
        _run(attempt, sleeps)
    assert sleeps == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://storage.example:8443/b/o?X-Goog-Signature=abc",
            "https://storage.example:8443/b/o",
        ),
        ("https://user:pw@h.example/p#frag", "https://h.example/p"),
        ("http://u:pw@h.example:99999/p?q", "h.example:99999/p"),
        ("http://u:pw@[::1/p", "[::1/p"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_retry_policy() -> None:
    policy = RetryPolicy(attempts=6, base=0.5, cap=4.0)
    for attempt in range(1, 8):
        wait = policy.delay(attempt)
        full = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert full / 2 <= wait <= full
    assert policy.delay(1, "3") >= 3
    assert policy.delay(1, "3600") <= 4.0
