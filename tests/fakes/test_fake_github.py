"""The fake GitHub checks what GitHub checks, records what it saw, and fails on demand."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
import requests
from github import Auth, GithubException, GithubIntegration
from github.GithubException import RateLimitExceededException, UnknownObjectException
from github.Requester import Requester
from urllib3.util import SKIP_HEADER

from tests.fakes import FakeGitHub
from tests.fakes.helpers import HEADERS, OTHER, REPO, TOKEN, FakeClock, message
from tests.fakes.keys import KeyPair, new_key_pair

APP_ID = 4242
INSTALLATION = 77
BODY: dict[str, Any] = {"event_type": "model-promoted", "client_payload": {"event_id": "e1"}}


@pytest.fixture(scope="session")
def app_key() -> KeyPair:
    return new_key_pair()


@pytest.fixture(scope="session")
def other_key() -> KeyPair:
    return new_key_pair()


@pytest.fixture
def fake(clock: FakeClock, app_key: KeyPair) -> Iterator[FakeGitHub]:
    with FakeGitHub(
        repositories=[REPO, OTHER],
        app_id=APP_ID,
        app_public_key_pem=app_key.public_pem,
        installations={REPO: INSTALLATION},
        clock=clock,
    ) as gh:
        yield gh


@pytest.fixture
def integration(fake: FakeGitHub, app_key: KeyPair) -> Iterator[GithubIntegration]:
    with GithubIntegration(
        auth=Auth.AppAuth(APP_ID, app_key.private_pem),
        base_url=fake.url,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    ) as gi:
        yield gi


def dispatch(
    fake: FakeGitHub,
    repo: str = REPO,
    body: Any = BODY,
    *,
    headers: Mapping[str, str | None] | None = None,
    timeout: float = 5.0,
) -> requests.Response:
    """POST a dispatch; a header given as None is left out."""
    return requests.post(
        f"{fake.url}/repos/{repo}/dispatches",
        json=body,
        headers={**HEADERS, **(headers or {})},
        timeout=timeout,
    )


def app_jwt(key: KeyPair, now: float, **claims: Any) -> str:
    """An App JWT as PyGithub makes it, with ``claims`` overridden (PyJWT's encode refuses
    a non-string iss, so sign the raw claims)."""
    payload = {"iat": int(now) - 60, "exp": int(now) + 300, "iss": str(APP_ID), **claims}
    return jwt.api_jws.encode(json.dumps(payload).encode(), key.private_pem, algorithm="RS256")


def mint(fake: FakeGitHub, bearer: str) -> requests.Response:
    return requests.post(
        f"{fake.url}/app/installations/{INSTALLATION}/access_tokens",
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/vnd.github+json"},
        timeout=5,
    )


# -- accepted dispatches ---------------------------------------------------------------------


def test_an_accepted_dispatch_is_recorded(fake: FakeGitHub, clock: FakeClock) -> None:
    response = dispatch(fake)

    assert response.status_code == 204
    assert response.content == b""
    [seen] = fake.wait_for_dispatches(1)
    assert (seen.repo, seen.event_type, seen.client_payload) == (
        REPO,
        "model-promoted",
        BODY["client_payload"],
    )
    assert seen.token == TOKEN
    assert seen.received_at == clock.now
    assert seen.headers["user-agent"] == HEADERS["User-Agent"]
    assert seen.headers["x-github-api-version"] == "2022-11-28"
    assert json.loads(seen.body) == BODY
    assert [(s.method, s.path, s.status) for s in fake.requests] == [
        ("POST", f"/repos/{REPO}/dispatches", 204)
    ]


def test_the_token_scheme_and_a_missing_client_payload_are_accepted(fake: FakeGitHub) -> None:
    response = dispatch(fake, body={"event_type": "x"}, headers={"Authorization": f"token {TOKEN}"})

    assert response.status_code == 204
    assert fake.dispatches[0].client_payload == {}


def test_every_answer_carries_rate_limit_headers_counting_down_per_token() -> None:
    with FakeGitHub(tokens=["a", "b"]) as fake:
        first = dispatch(fake, headers={"Authorization": "Bearer a"})
        second = dispatch(fake, headers={"Authorization": "Bearer a"})
        other = dispatch(fake, headers={"Authorization": "Bearer b"})
        missing = requests.get(f"{fake.url}/nowhere", timeout=5)

    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in (first, second, other)]
    assert remaining == [4999, 4998, 4999]
    assert second.headers["x-ratelimit-used"] == "2"
    assert int(first.headers["x-ratelimit-reset"]) > time.time()
    assert missing.status_code == 404
    assert missing.headers["x-ratelimit-limit"] == "5000"
    assert message(missing) == "Not Found"


def test_every_repository_exists_when_none_are_listed() -> None:
    with FakeGitHub() as fake:
        assert dispatch(fake, "anyone/anything").status_code == 204


# -- rejections ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, "Requires authentication"),
        (TOKEN, "Requires authentication"),  # no scheme
        (f"Basic {TOKEN}", "Requires authentication"),
        ("Bearer ghp_wrong", "Bad credentials"),
    ],
)
def test_a_request_without_a_valid_token_is_401(
    fake: FakeGitHub, authorization: str | None, expected: str
) -> None:
    response = dispatch(fake, headers={"Authorization": authorization})

    assert response.status_code == 401
    assert message(response) == expected
    assert fake.dispatches == []
    assert [s.status for s in fake.attempts_for(REPO)] == [401]


def test_a_revoked_token_is_401(fake: FakeGitHub) -> None:
    fake.revoke_token(TOKEN)

    assert message(dispatch(fake)) == "Bad credentials"


def test_an_unknown_repository_is_404(fake: FakeGitHub) -> None:
    response = dispatch(fake, "acme/missing")

    assert response.status_code == 404
    assert message(response) == "Not Found"


def test_a_missing_user_agent_is_403(fake: FakeGitHub) -> None:
    # urllib3 adds its own User-Agent unless told to skip it.
    response = dispatch(fake, headers={"User-Agent": SKIP_HEADER})

    assert response.status_code == 403
    assert message(response).startswith("Request forbidden by administrative rules.")
    assert "User-Agent" in message(response)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Accept", None),
        ("Accept", "application/json"),
        ("X-GitHub-Api-Version", None),
        ("X-GitHub-Api-Version", "2026-03-10"),
        ("Content-Type", "text/plain"),
    ],
)
def test_a_header_other_than_documented_is_400(
    fake: FakeGitHub, name: str, value: str | None
) -> None:
    response = dispatch(fake, headers={name: value})

    assert response.status_code == 400
    assert name in message(response)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"event_type": "e", "client_payload": {f"k{i}": i for i in range(11)}},
            "No more than 10 properties are allowed; 11 were supplied.",
        ),
        (
            {"event_type": "e", "client_payload": {"blob": "x" * 65_000}},
            "client_payload is too large.",
        ),
        ({"event_type": "e", "client_payload": ["a"]}, "is not an object."),
        ({"event_type": "e", "client_payload": "a"}, "is not an object."),
        ({"event_type": ""}, "is too short"),
        ({"event_type": "e" * 101}, "is too long"),
        ({"event_type": 7}, "is not a string."),
        ({"client_payload": {}}, "wasn't supplied."),
        ({"event_type": "e", "inputs": {}}, '"inputs" is not a permitted key.'),
        (["event_type"], "is not an object."),
    ],
)
def test_an_invalid_body_is_422(fake: FakeGitHub, body: Any, expected: str) -> None:
    response = dispatch(fake, body=body)

    assert response.status_code == 422
    assert expected in message(response)
    assert fake.dispatches == []


def test_the_limits_themselves_are_accepted(fake: FakeGitHub) -> None:
    ten = {f"k{i}": i for i in range(10)}
    body = {"event_type": "e" * 100, "client_payload": ten}

    assert dispatch(fake, body=body).status_code == 204


def test_a_body_that_is_not_json_is_400(fake: FakeGitHub) -> None:
    response = requests.post(
        f"{fake.url}/repos/{REPO}/dispatches",
        data=b"{nope",
        headers={**HEADERS, "Content-Type": "application/json"},
        timeout=5,
    )

    assert response.status_code == 400
    assert message(response) == "Problems parsing JSON"


def test_an_unknown_route_or_method_is_404(fake: FakeGitHub) -> None:
    get = requests.get(f"{fake.url}/repos/{REPO}/dispatches", headers=HEADERS, timeout=5)

    assert get.status_code == 404
    assert message(get) == "Not Found"


# -- failure injection -----------------------------------------------------------------------


def test_scripted_failures_are_consumed_in_order(fake: FakeGitHub) -> None:
    fake.fail_next(500)
    fake.fail_next(502, count=2, headers={"x-test": "yes"}, body={"message": "Server Error"})
    fake.fail_next(418, body=b"teapot")

    answers = [dispatch(fake) for _ in range(5)]

    assert [r.status_code for r in answers] == [500, 502, 502, 418, 204]
    assert message(answers[0]) == "Internal Server Error"
    assert answers[1].json() == {"message": "Server Error"}
    assert answers[2].headers["x-test"] == "yes"
    assert answers[3].content == b"teapot"
    assert [s.status for s in fake.attempts_for(REPO)] == [500, 502, 502, 418, 204]
    assert len(fake.dispatches) == 1


def test_scripted_failures_come_before_the_credential_check(fake: FakeGitHub) -> None:
    fake.fail_next(503)

    assert dispatch(fake, headers={"Authorization": None}).status_code == 503
    assert dispatch(fake, headers={"Authorization": None}).status_code == 401


def test_set_down_answers_every_dispatch_until_lifted(fake: FakeGitHub) -> None:
    fake.fail_next(500)
    fake.set_down(True)
    down = [dispatch(fake).status_code for _ in range(3)]
    fake.set_down(True, status=502)
    bad_gateway = dispatch(fake).status_code
    fake.set_down(False)

    assert down == [503, 503, 503]
    assert bad_gateway == 502
    assert dispatch(fake).status_code == 500  # the scripted answer waited for the outage
    assert dispatch(fake).status_code == 204


def test_rate_limit_next_answers_as_github_primary_limit(
    fake: FakeGitHub, clock: FakeClock
) -> None:
    fake.rate_limit_next(clock.now + 30.5, count=2)

    first, second, third = (dispatch(fake) for _ in range(3))

    assert (first.status_code, second.status_code, third.status_code) == (403, 403, 204)
    assert first.headers["x-ratelimit-remaining"] == "0"
    assert first.headers["x-ratelimit-reset"] == str(int(clock.now) + 31)
    assert "retry-after" not in first.headers
    assert message(first).startswith("API rate limit exceeded")
    error = Requester.createException(403, dict(first.headers), first.json())
    assert isinstance(error, RateLimitExceededException)


def test_secondary_rate_limit_next_sends_retry_after(fake: FakeGitHub) -> None:
    fake.secondary_rate_limit_next(60)

    response = dispatch(fake)

    assert response.status_code == 403
    assert response.headers["retry-after"] == "60"
    assert response.headers["x-ratelimit-remaining"] != "0"
    assert message(response).startswith("You have exceeded a secondary rate limit")
    error = Requester.createException(403, dict(response.headers), response.json())
    assert isinstance(error, RateLimitExceededException)


def test_delay_next_outlasts_a_client_timeout_yet_the_dispatch_arrives(fake: FakeGitHub) -> None:
    fake.delay_next(0.3)

    with pytest.raises(requests.ReadTimeout):
        dispatch(fake, timeout=0.05)

    # As on GitHub, the request did arrive: a retry would make a duplicate.
    assert fake.wait_for_dispatches(1)[0].event_type == "model-promoted"
    assert dispatch(fake, timeout=5).status_code == 204


def test_a_delayed_scripted_failure_is_answered_late(fake: FakeGitHub) -> None:
    fake.delay_next(0.02)
    fake.fail_next(504)

    assert dispatch(fake).status_code == 504


def test_wait_for_dispatches_reports_what_it_saw(fake: FakeGitHub) -> None:
    fake.fail_next(500)
    dispatch(fake)

    with pytest.raises(AssertionError, match=rf"(?s)got 0.*POST /repos/{REPO}/dispatches -> 500"):
        fake.wait_for_dispatches(1, timeout=0.01)


# -- GitHub App ------------------------------------------------------------------------------


def test_pygithub_mints_an_installation_token(
    fake: FakeGitHub, integration: GithubIntegration, clock: FakeClock
) -> None:
    authorization = integration.get_access_token(INSTALLATION)

    [minted] = fake.minted
    assert authorization.token == minted.token
    assert minted.token.startswith("ghs_")
    assert minted.installation_id == INSTALLATION
    assert minted.expires_at == clock.now + 3600
    assert authorization.expires_at == datetime.fromtimestamp(clock.now + 3600, UTC)
    assert fake.requests[-1].status == 201


def test_pygithub_finds_installations(fake: FakeGitHub, integration: GithubIntegration) -> None:
    installation = integration.get_repo_installation("acme", "models")

    assert installation.id == INSTALLATION
    assert installation.app_id == APP_ID
    assert integration.get_app_installation(INSTALLATION).id == INSTALLATION
    with pytest.raises(UnknownObjectException):
        integration.get_repo_installation("acme", "other")
    with pytest.raises(UnknownObjectException):
        integration.get_app_installation(INSTALLATION + 1)
    with pytest.raises(UnknownObjectException):
        integration.get_access_token(INSTALLATION + 1)


def test_a_minted_token_works_on_its_installation_until_it_expires(
    fake: FakeGitHub, app_key: KeyPair, clock: FakeClock
) -> None:
    token = mint(fake, app_jwt(app_key, clock.now)).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}

    assert dispatch(fake, headers=auth).status_code == 204
    assert fake.dispatches[0].token == token
    wrong_repo = dispatch(fake, OTHER, headers=auth)
    assert (wrong_repo.status_code, message(wrong_repo)) == (404, "Not Found")
    clock.advance(3599)
    assert dispatch(fake, headers=auth).status_code == 204
    clock.advance(1)
    expired = dispatch(fake, headers=auth)
    assert (expired.status_code, message(expired)) == (401, "Bad credentials")


def test_a_revoked_minted_token_is_401(
    fake: FakeGitHub, app_key: KeyPair, clock: FakeClock
) -> None:
    token = mint(fake, app_jwt(app_key, clock.now)).json()["token"]
    fake.revoke_token(token)

    assert dispatch(fake, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_the_app_jwt_issuer_may_be_an_int(
    fake: FakeGitHub, app_key: KeyPair, clock: FakeClock
) -> None:
    assert mint(fake, app_jwt(app_key, clock.now, iss=APP_ID)).status_code == 201


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"exp": -1}, "'Expiration time' claim ('exp') must be a numeric value"),
        ({"exp": "soon"}, "'Expiration time' claim ('exp') must be a numeric value"),
        ({"iat": 120}, "'Issued at' claim ('iat') must be an Integer"),
        ({"iat": -60, "exp": 600}, "'Expiration time' claim ('exp') is too far in the future"),
        ({"iss": str(APP_ID + 1)}, "A JSON web token could not be decoded"),
        ({"iss": None}, "A JSON web token could not be decoded"),
    ],
)
def test_a_bad_app_jwt_is_401(
    fake: FakeGitHub, app_key: KeyPair, clock: FakeClock, claims: dict[str, Any], expected: str
) -> None:
    # Times in `claims` are relative to the fake clock's now.
    relative = {k: clock.now + v if isinstance(v, int) else v for k, v in claims.items()}
    response = mint(fake, app_jwt(app_key, clock.now, **relative))

    assert response.status_code == 401
    assert message(response).startswith(expected)
    assert fake.minted == []


def test_an_expired_app_jwt_is_401_by_the_fake_clock(
    fake: FakeGitHub, app_key: KeyPair, clock: FakeClock
) -> None:
    token = app_jwt(app_key, clock.now)
    clock.advance(301)

    assert message(mint(fake, token)).startswith("'Expiration time' claim ('exp')")


@pytest.mark.parametrize("bearer", ["not.a.jwt", TOKEN, "wrong-key"])
def test_a_jwt_signed_otherwise_is_401(
    fake: FakeGitHub, other_key: KeyPair, clock: FakeClock, bearer: str
) -> None:
    if bearer == "wrong-key":
        bearer = app_jwt(other_key, clock.now)
    response = mint(fake, bearer)

    assert (response.status_code, message(response)) == (
        401,
        "A JSON web token could not be decoded",
    )


def test_pygithub_reports_a_wrong_key(fake: FakeGitHub, other_key: KeyPair) -> None:
    with (
        GithubIntegration(
            auth=Auth.AppAuth(APP_ID, other_key.private_pem),
            base_url=fake.url,
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
        ) as gi,
        pytest.raises(GithubException) as raised,
    ):
        gi.get_access_token(INSTALLATION)

    assert raised.value.status == 401


# -- lifecycle -------------------------------------------------------------------------------


def test_start_and_stop() -> None:
    fake = FakeGitHub()
    with pytest.raises(RuntimeError, match="not started"):
        _ = fake.url
    fake.start()
    url = fake.url
    with requests.Session() as session:
        assert session.get(f"{url}/", timeout=5).status_code == 404  # a keep-alive connection
        fake.stop()
        fake.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(f"{url}/", timeout=5)


def test_a_failure_of_the_fake_itself_is_raised_by_stop() -> None:
    fake = FakeGitHub().start()
    fake.fail_next(500, body=object())  # not JSON-serialisable

    assert dispatch(fake).status_code == 500
    with pytest.raises(RuntimeError, match="failed 1 time") as raised:
        fake.stop()
    assert isinstance(raised.value.__cause__, TypeError)


def test_app_settings_go_together() -> None:
    with pytest.raises(ValueError, match="app_public_key_pem"):
        FakeGitHub(app_id=1)
