"""Other people's text in the notifications the bridge sends: a hostile
author and workflow name reach Slack and Teams as typed, and the run's button opens only
GitHub's web host for the configured ``api_url``."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from tests.bridge.flows.test_delivery import flat, send
from tests.fakes.github import FakeGitHub
from tests.fakes.receivers import Receiver

RUN_NAME = "Deploy (${{ github.event.client_payload.bridge_event_id }})"
AUTHOR = "[Approve rollback](https://evil.example) <!channel>"
WORKFLOW = "*Deploy* <https://evil.example|now> _fast_"


def notify(slack: Receiver, teams: Receiver) -> dict:
    return {
        "runs": {"no_run_after": "4s", "min_interval": "0.3s"},
        "notify": [
            {"name": "slack", "outcomes": ["run_failed"], "slack": {"webhook_url": slack.url}},
            {"name": "teams", "outcomes": ["run_failed"], "teams": {"webhook_url": teams.url}},
        ],
    }


def failing_run(fake_github: FakeGitHub) -> None:
    fake_github.add_workflow(
        "acme/churn-svc",
        name=WORKFLOW,
        types=["DEPLOY_MODEL"],
        run_name=RUN_NAME,
        runs_for=0.5,
        conclusion="failure",
    )


def messages(slack: Receiver, teams: Receiver) -> tuple[dict, dict]:
    (to_slack,) = slack.wait_for(1, timeout=60)
    (to_teams,) = teams.wait_for(1, timeout=30)
    return to_slack.payload, to_teams.payload


def slack_values(msg: dict) -> dict[str, str]:
    fields = [f for b in msg["blocks"] if b["type"] == "section" for f in b["fields"]]
    return {n["text"].strip("*"): v["text"] for n, v in zip(fields[::2], fields[1::2], strict=True)}


def teams_card(msg: dict) -> dict:
    (attachment,) = msg["attachments"]
    return dict(attachment["content"])


def test_hostile_names_reach_slack_and_teams_as_text(start_bridge, fake_github):
    failing_run(fake_github)
    with Receiver("slack") as slack, Receiver("teams") as teams:
        bridge = start_bridge(**notify(slack, teams))
        send(bridge, flat(1, event_author=AUTHOR))
        to_slack, to_teams = messages(slack, teams)
    values = slack_values(to_slack)
    assert values["W&B event"] == (
        "ADD_ARTIFACT_ALIAS by [Approve rollback](https://evil.example) &lt;!channel&gt;"
    )
    assert values["Workflow"] == "*Deploy* &lt;https://evil.example|now&gt; _fast_"
    shown = [f for b in to_slack["blocks"] if b["type"] == "section" for f in b["fields"]]
    assert all(f["type"] == "plain_text" for f in shown if "evil" in f["text"])
    facts = {f["title"]: f["value"] for f in teams_card(to_teams)["body"][1]["facts"]}
    assert facts["W&B event"].endswith(
        "\\[Approve rollback\\]\\(https\\:\\/\\/evil\\.example\\) \\<\\!channel\\>"
    )
    assert facts["Workflow"] == ("\\*Deploy\\* \\<https\\:\\/\\/evil\\.example\\|now\\> \\_fast\\_")
    (button,) = to_slack["blocks"][-1]["elements"]
    assert button["url"].startswith(f"{fake_github.url}/acme/churn-svc/actions/runs/")
    (action,) = teams_card(to_teams)["actions"]
    assert action["url"] == button["url"]


def test_a_run_url_on_another_host_than_api_urls_opens_no_button(start_bridge, fake_github):
    # the bridge reaches GitHub as localhost; GitHub's html_url names 127.0.0.1
    port = urlsplit(fake_github.url).port
    failing_run(fake_github)
    with Receiver("slack") as slack, Receiver("teams") as teams:
        bridge = start_bridge(
            github={"api_url": f"http://localhost:{port}"}, **notify(slack, teams)
        )
        send(bridge, flat(2))
        to_slack, to_teams = messages(slack, teams)
    assert fake_github.url.startswith("http://127.0.0.1:")
    for msg in (to_slack, to_teams):
        assert "127.0.0.1" not in json.dumps(msg)
    (button,) = to_slack["blocks"][-1]["elements"]
    assert button["url"] == f"http://localhost:{port}/acme/churn-svc/actions"
    assert button["text"]["text"] == "Open the repository's Actions"
    assert teams_card(to_teams)["actions"][0]["url"] == button["url"]
