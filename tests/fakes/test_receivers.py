"""The notification receivers answer as Slack, Teams and a signed-webhook receiver do,
record what they got, and fail or hold on demand."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fakes.receivers import Kind, Receiver, wandb_signature

SLACK_PATH = "/services/T0000/B0000/XXXXXXXX"
ADAPTIVE = "application/vnd.microsoft.card.adaptive"
CARD: dict[str, Any] = {
    "type": "message",
    "attachments": [
        {
            "contentType": ADAPTIVE,
            "contentUrl": None,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [{"type": "TextBlock", "text": "model:v3 promoted", "wrap": True}],
            },
        }
    ],
}
MESSAGE_CARD: dict[str, Any] = {
    "@type": "MessageCard",
    "@context": "https://schema.org/extensions",
    "summary": "model:v3 promoted",
    "sections": [{"activityTitle": "model:v3 promoted"}],
}


@pytest.fixture
def slack() -> Iterator[Receiver]:
    with Receiver("slack") as receiver:
        yield receiver


@pytest.fixture
def teams() -> Iterator[Receiver]:
    with Receiver("teams") as receiver:
        yield receiver


def post(receiver: Receiver, body: Any, path: str = SLACK_PATH, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 5)
    if isinstance(body, bytes | str):
        return requests.post(f"{receiver.url}{path}", data=body, **kwargs)
    return requests.post(f"{receiver.url}{path}", json=body, **kwargs)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# -- Slack -----------------------------------------------------------------------------------


def test_slack_accepts_text_and_records_it(slack: Receiver) -> None:
    response = post(slack, {"text": "model:v3 promoted"}, headers={"User-Agent": "bridge/1"})

    assert (response.status_code, response.text) == (200, "ok")
    assert response.headers["Content-Type"].startswith("text/html")
    [seen] = slack.wait_for(1)
    assert (seen.method, seen.path, seen.status, seen.reason) == ("POST", SLACK_PATH, 200, None)
    assert seen.payload == {"text": "model:v3 promoted"}
    assert json.loads(seen.raw) == seen.payload
    assert seen.headers["user-agent"] == "bridge/1"
    assert seen.headers["content-type"] == "application/json"
    assert seen.answer == b"ok"
    assert slack.payloads == [{"text": "model:v3 promoted"}]


@pytest.mark.parametrize(
    "body",
    [
        {"blocks": [section("*promoted*")]},
        {"text": "fallback", "blocks": [section("*promoted*"), {"type": "divider"}]},
        {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}]},
        {"blocks": [section("s" * 3000)]},
        {"blocks": [section("s")] * 50},
        {"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 10}]},
        {"blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}]}]},
        {"text": "t", "blocks": []},
        {"text": "t", "unfurl_links": False, "username": "bridge", "icon_emoji": ":rocket:"},
    ],
)
def test_slack_accepts_blocks_up_to_the_limits(slack: Receiver, body: dict[str, Any]) -> None:
    assert post(slack, body).status_code == 200


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ("{nope", "invalid_payload"),
        (["text"], "invalid_payload"),
        ({"text": 7}, "invalid_payload"),
        ({}, "no_text"),
        ({"text": " "}, "no_text"),
        ({"attachments": [{"text": "old style"}]}, "no_text"),
        ({"blocks": "section"}, "invalid_blocks_format"),
        ({"blocks": [{"type": "table"}]}, "invalid_blocks"),
        ({"blocks": ["section"]}, "invalid_blocks"),
        (
            {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]},
            "invalid_blocks",
        ),
        (
            {"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]},
            "invalid_blocks",
        ),
        ({"blocks": [section("s" * 3001)]}, "invalid_blocks"),
        ({"blocks": [section("")]}, "invalid_blocks"),
        ({"blocks": [section("s")] * 51}, "invalid_blocks"),
        ({"blocks": [{"type": "section"}]}, "invalid_blocks"),
        ({"blocks": [{"type": "context", "elements": []}]}, "invalid_blocks"),
    ],
)
def test_slack_refuses_what_slack_refuses(slack: Receiver, body: Any, answer: str) -> None:
    headers = {"Content-Type": "application/json"} if isinstance(body, str) else None
    response = post(slack, body, headers=headers)

    assert (response.status_code, response.text) == (400, answer)
    [seen] = slack.received
    assert seen.reason and not seen.accepted
    assert slack.accepted == []


def test_slack_wants_json(slack: Receiver) -> None:
    form = post(slack, "payload=%7B%22text%22%3A%22hi%22%7D")  # Slack's form post
    text = post(slack, '{"text": "hi"}', headers={"Content-Type": "text/plain"})
    charset = post(
        slack, '{"text": "hi"}', headers={"Content-Type": "application/json; charset=utf-8"}
    )

    assert (form.status_code, form.text) == (400, "invalid_payload")
    assert text.status_code == 400
    assert "Content-Type" in (slack.received[1].reason or "")
    assert charset.status_code == 200


def test_only_post_is_answered(slack: Receiver) -> None:
    response = requests.get(f"{slack.url}{SLACK_PATH}", timeout=5)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert slack.received[0].method == "GET"


# -- Teams -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [CARD, MESSAGE_CARD, {"@type": "MessageCard", "text": "t"}])
def test_a_teams_connector_answers_1(teams: Receiver, body: dict[str, Any]) -> None:
    response = post(teams, body, "/webhookb2/abc/IncomingWebhook/def/ghi")

    assert (response.status_code, response.text) == (200, "1")
    assert teams.wait_for(1)[0].payload == body


@pytest.mark.parametrize("body", [CARD, MESSAGE_CARD])
def test_a_teams_workflow_answers_202(body: dict[str, Any]) -> None:
    with Receiver("teams-workflow") as workflow:
        response = post(workflow, body, "/workflows/abc/triggers/manual/paths/invoke")

        assert (response.status_code, response.content) == (202, b"")
        assert workflow.wait_for(1)[0].status == 202


def card_with(**content: Any) -> dict[str, Any]:
    attachment = {**CARD["attachments"][0]}
    attachment["content"] = {**attachment["content"], **content}
    return {"type": "message", "attachments": [attachment]}


@pytest.mark.parametrize(
    ("body", "status", "answer"),
    [
        ({"@type": "MessageCard", "sections": []}, 400, "Summary or Text is required."),
        ({"@type": "MessageCard", "summary": "s", "sections": {}}, 400, "Bad payload"),
        ({"text": "plain"}, 400, "Bad payload"),
        ({"type": "message", "attachments": []}, 400, "Bad payload"),
        ({"type": "message", "attachments": [{"contentType": "text/html"}]}, 400, "Bad payload"),
        (card_with(type="HeroCard"), 400, "Bad payload"),
        (card_with(version=1.4), 400, "Bad payload"),
        (card_with(body=[{"text": "no type"}]), 400, "Bad payload"),
        ("{nope", 400, "Bad payload"),
        (card_with(body=[{"type": "TextBlock", "text": "x" * 29_000}]), 413, "Too Large"),
    ],
)
def test_teams_refuses_what_teams_refuses(
    teams: Receiver, body: Any, status: int, answer: str
) -> None:
    headers = {"Content-Type": "application/json"} if isinstance(body, str) else None
    response = post(teams, body, headers=headers)

    assert response.status_code == status
    assert answer in response.text
    assert teams.accepted == []


def test_teams_wants_json(teams: Receiver) -> None:
    response = post(teams, json.dumps(CARD), headers={"Content-Type": "text/plain"})

    assert response.status_code == 400


# -- a generic webhook -----------------------------------------------------------------------


def test_a_generic_receiver_without_a_secret_takes_anything() -> None:
    with Receiver() as hook:
        as_json = post(hook, {"event": "x"}, "/hook")
        as_text = post(hook, "not json", "/hook?token=1")

        assert (as_json.status_code, as_text.status_code) == (200, 200)
        first, second = hook.wait_for(2)
        assert (first.payload, second.payload, second.raw) == ({"event": "x"}, None, b"not json")
        assert second.path == "/hook?token=1"


def test_the_signature_is_w_and_b_s() -> None:
    # RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?")
    digest = bytes.fromhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")

    assert wandb_signature("Jefe", b"what do ya want for nothing?") == (
        base64.b64encode(digest).decode()
    )
    assert wandb_signature(b"Jefe", b"what do ya want for nothing?") == wandb_signature(
        "Jefe", b"what do ya want for nothing?"
    )


@pytest.mark.parametrize("secret", ["s3cret", b"\x00\xffraw"])
def test_a_generic_receiver_with_a_secret_checks_the_signature(secret: str | bytes) -> None:
    body = b'{"event_type": "LINK_MODEL", "artifact": "model:v3"}'
    good = wandb_signature(secret, body)
    with Receiver("generic", secret=secret) as hook:
        signed = post(hook, body, headers={"X-Wandb-Signature": good})
        unsigned = post(hook, body)
        wrong = post(hook, body, headers={"X-Wandb-Signature": wandb_signature("other", body)})
        other_body = post(hook, body + b" ", headers={"X-Wandb-Signature": good})

        assert signed.status_code == 200
        assert [r.status_code for r in (unsigned, wrong, other_body)] == [401, 401, 401]
        assert [r.reason is None for r in hook.received] == [True, False, False, False]
        assert hook.payloads == [json.loads(body)]
        assert hook.received[0].headers["x-wandb-signature"] == good


# -- failure injection and holding -----------------------------------------------------------


def test_fail_next_answers_in_order_then_the_checks_resume(slack: Receiver) -> None:
    slack.fail_next(429, headers={"Retry-After": "1"})
    slack.fail_next(500, count=2, body="internal_error")
    slack.fail_next(503, body={"error": "down"})

    answers = [post(slack, {"text": "t"}) for _ in range(5)]

    assert [r.status_code for r in answers] == [429, 500, 500, 503, 200]
    assert answers[0].headers["Retry-After"] == "1"
    assert answers[0].text == "Too Many Requests"
    assert answers[1].text == "internal_error"
    assert answers[3].json() == {"error": "down"}
    assert len(slack.wait_for(5, accepted=False)) == 5
    assert [r.status for r in slack.wait_for(1)] == [200]


def test_a_scripted_answer_comes_before_the_checks(slack: Receiver) -> None:
    slack.fail_next(204)

    assert post(slack, "garbage", headers={"Content-Type": "text/plain"}).status_code == 204
    assert post(slack, "garbage", headers={"Content-Type": "text/plain"}).status_code == 400


def test_delay_next_outlasts_a_client_timeout_yet_the_message_arrives(teams: Receiver) -> None:
    teams.delay_next(0.3)

    with pytest.raises(requests.ReadTimeout):
        post(teams, CARD, timeout=0.05)

    assert teams.wait_for(1)[0].payload == CARD  # as a real receiver: a retry duplicates it
    assert post(teams, CARD).status_code == 200


def test_hold_keeps_answers_until_release(slack: Receiver) -> None:
    answers: list[int] = []

    def send(text: str) -> None:
        answers.append(post(slack, {"text": text}).status_code)

    slack.hold()
    threads = [threading.Thread(target=send, args=(t,)) for t in ("a", "b")]
    for thread in threads:
        thread.start()
    slack.wait_for_in_flight(2)
    assert slack.received == [] and answers == []

    slack.release()
    for thread in threads:
        thread.join(5)

    assert answers == [200, 200]
    assert slack.in_flight == 0
    assert sorted(p["text"] for p in slack.payloads) == ["a", "b"]


def test_stop_lets_a_held_request_go() -> None:
    receiver = Receiver("slack").start()
    receiver.hold()
    outcome: list[object] = []

    def send() -> None:
        try:
            outcome.append(post(receiver, {"text": "t"}).status_code)
        except requests.RequestException as exc:  # the answer may be cut as the server stops
            outcome.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    receiver.wait_for_in_flight(1)
    started = time.monotonic()
    receiver.stop()
    thread.join(5)

    assert time.monotonic() - started < 2
    assert not thread.is_alive() and len(outcome) == 1


def test_wait_for_reports_what_it_saw(slack: Receiver) -> None:
    post(slack, {})

    with pytest.raises(AssertionError, match=rf"(?s)got 0.*POST {SLACK_PATH} -> 400 neither"):
        slack.wait_for(1, timeout=0.01)
    with pytest.raises(AssertionError, match="in flight"):
        slack.wait_for_in_flight(1, timeout=0.01)


# -- lifecycle -------------------------------------------------------------------------------


def test_start_and_stop() -> None:
    receiver = Receiver("teams")
    with pytest.raises(RuntimeError, match="not started"):
        _ = receiver.url
    receiver.start()
    url = receiver.url
    with requests.Session() as session:
        assert session.post(url, json=MESSAGE_CARD, timeout=5).status_code == 200
        receiver.stop()
        receiver.stop()
        with pytest.raises(requests.ConnectionError):
            session.post(url, json=MESSAGE_CARD, timeout=5)


def test_a_failure_of_the_fake_itself_is_raised_by_stop() -> None:
    receiver = Receiver().start()
    receiver.fail_next(500, body=object())  # not JSON-serialisable

    assert post(receiver, {}).status_code == 500
    with pytest.raises(RuntimeError, match="failed 1 time") as raised:
        receiver.stop()
    assert isinstance(raised.value.__cause__, TypeError)


@pytest.mark.parametrize(
    ("kind", "secret", "expected"),
    [("email", None, "kind must be"), ("slack", "s", "a secret is for the generic receiver")],
)
def test_bad_settings(kind: Kind, secret: str | None, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        Receiver(kind, secret=secret)
