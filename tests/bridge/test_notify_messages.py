"""What notifications say, for Slack, Teams and a webhook."""

from __future__ import annotations

import json

from bridge.config.model import Notifier
from bridge.config.secrets import Secret
from bridge.notify.messages import Outcome, body, notices

OUTCOME = Outcome(
    "run_failed",
    "evt_1",
    "acme/svc",
    "deploy",
    model="acme/reg/churn:<production>",
    event_type="ADD_ARTIFACT_ALIAS",
    author="alice & bob",
    workflow="Deploy",
    run_url="https://github.com/acme/svc/actions/runs/2",
    conclusion="failure",
)


def test_slack_block_kit_escapes_mrkdwn_and_links_the_run():
    msg = body("slack", OUTCOME)
    assert "&lt;production&gt;" in msg["text"] and "<production>" not in json.dumps(msg)
    header, section, actions = msg["blocks"]
    assert header["text"]["text"] == "Workflow run failed"
    texts = [f["text"] for f in section["fields"]]
    assert any("alice &amp; bob" in t for t in texts)
    assert actions["elements"][0]["url"] == OUTCOME.run_url


def test_teams_gets_an_adaptive_card_with_the_facts():
    msg = body("teams", OUTCOME)
    (attachment,) = msg["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Model"] == "acme/reg/churn:<production>" and facts["Conclusion"] == "failure"
    assert card["actions"][0]["url"] == OUTCOME.run_url


def test_a_webhook_gets_the_outcome_as_plain_json():
    msg = body("webhook", OUTCOME)
    assert msg["outcome"] == "run_failed" and msg["run_url"] == OUTCOME.run_url
    assert "error" not in msg  # absent fields are left out


def test_only_the_notifiers_that_asked_for_an_outcome_get_it():
    url = Secret("https://hooks.example/x")
    notifiers = [
        Notifier("a", ("run_failed",), "slack", url),
        Notifier("b", ("delivery_dead",), "teams", url),
        Notifier("c", ("run_failed", "run_succeeded"), "webhook", url),
    ]
    ids = iter(["ntf_1", "ntf_2"])
    made = notices(notifiers, OUTCOME, lambda: next(ids))
    assert [(n.notifier, n.kind, n.event_type) for n in made] == [
        ("a", "notify", "run_failed"),
        ("c", "notify", "run_failed"),
    ]
    assert json.loads(made[1].client_payload)["conclusion"] == "failure"
