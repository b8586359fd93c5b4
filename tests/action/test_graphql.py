"""``action.graphql``: how W&B's answers become errors (against the fake's scripted answers)."""

from __future__ import annotations

import pytest
import requests

from action.errors import ApiError, AuthenticationError, UnsupportedFieldError
from action.graphql import GraphQLClient
from action.http import RetryPolicy
from harness.fake_wandb import FakeWandb
from tests.action.harness import API_KEY


def _execute(fake: FakeWandb, key: str = API_KEY) -> dict[str, object]:
    with requests.Session() as session:
        client = GraphQLClient(
            session, fake.url, key, sleep=lambda _: None, policy=RetryPolicy(attempts=2)
        )
        return client.execute("Op", "query Op { viewer { id } }", {})


def test_data(fake: FakeWandb) -> None:
    fake.answers["Op"] = (200, {"data": {"viewer": {"id": "u"}}})
    assert _execute(fake) == {"viewer": {"id": "u"}}


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (200, {"errors": [{"message": "boom"}], "data": None}, ApiError, "with an error: boom"),
        (
            400,
            {"errors": [{"message": "Cannot query field 'x' on type 'Project'."}]},
            UnsupportedFieldError,
            "does not know the field x on Project",
        ),
        (403, {"data": None}, AuthenticationError, "HTTP 403"),
        (200, ["not", "an", "object"], ApiError, "no GraphQL response"),
        (404, {"data": {"x": 1}}, ApiError, "HTTP 404 and no data"),
        (200, {"errors": [{"message": {"nested": True}}]}, ApiError, "with an error: ?"),
    ],
)
def test_errors(
    fake: FakeWandb, status: int, body: object, error: type[ApiError], message: str
) -> None:
    fake.answers["Op"] = (status, body)
    with pytest.raises(error, match=message.replace("?", r"\?")):
        _execute(fake)


def test_a_rejected_key(fake: FakeWandb) -> None:
    with pytest.raises(AuthenticationError, match="rejected the API key"):
        _execute(fake, key="local-" + "0" * 40)


def test_5xx_is_retried_then_named(fake: FakeWandb) -> None:
    fake.fail("graphql", 502, 502)
    with pytest.raises(ApiError, match=r"failed after 2 attempts \(HTTP 502\)"):
        _execute(fake)
