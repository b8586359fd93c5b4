"""What notifications say, for Slack, Teams and a webhook: other people's text inert,
within each receiver's limits, and links only to GitHub's web host."""

from __future__ import annotations

import json
import re
import string
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bridge.config.model import Notifier
from bridge.config.secrets import Secret
from bridge.notify.links import actions_link, run_link, web_origin
from bridge.notify.messages import Outcome, body, notices

GITHUB = "https://github.com"
OUTCOME = Outcome(
    "run_failed",
    "evt_1",
    "acme/svc",
    "deploy",
    model="acme/reg/churn:<production>",
    event_type="ADD_ARTIFACT_ALIAS",
    author="alice & bob",
    workflow="Deploy",
    run_id=2,
    run_url="https://github.com/acme/svc/actions/runs/2",
    conclusion="failure",
    web=GITHUB,
)
HOSTILE = replace(
    OUTCOME,
    author="[Approve rollback](https://evil.example)",
    workflow="<!channel> *urgent* <https://evil.example|click> {{DATE(2017-02-14T06:08:00Z)}}",
    error="![img](https://evil.example/x.png)\n# Heading\n- item\n`code` _it_ ~s~ \\",
)
SLACK_FIELD, SLACK_SECTION, SLACK_HEADER, SLACK_FIELDS = 2000, 3000, 150, 10
TEAMS_BYTES = 28 * 1024
ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")  # an & that does not start one of Slack's escapes


def slack_texts(msg: dict[str, Any]) -> list[dict[str, Any]]:
    """Every text object of a Slack message, checked against Slack's documented limits."""
    assert len(msg["blocks"]) <= 50
    found = []
    for block in msg["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= SLACK_HEADER
            found.append(block["text"])
        elif block["type"] == "section":
            assert len(block["fields"]) <= SLACK_FIELDS
            for field in block["fields"]:
                assert 1 <= len(field["text"]) <= SLACK_FIELD
            found += block["fields"]
        else:
            for element in block["elements"]:
                assert len(element["text"]["text"]) <= 75 and len(element["url"]) <= 3000
    return found


def slack_values(msg: dict[str, Any]) -> dict[str, str]:
    texts = [t for b in msg["blocks"] if b["type"] == "section" for t in b["fields"]]
    return {n["text"].strip("*"): v["text"] for n, v in zip(texts[::2], texts[1::2], strict=True)}


def teams_facts(msg: dict[str, Any]) -> dict[str, str]:
    (attachment,) = msg["attachments"]
    return {f["title"]: f["value"] for f in attachment["content"]["body"][1]["facts"]}


def unescaped_markdown(value: str) -> list[str]:
    """The ASCII punctuation characters of ``value`` that no backslash escapes."""
    bare, escaped = [], False
    for c in value:
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in string.punctuation:
            bare.append(c)
    assert not escaped, "a value ends in half an escape"
    return bare


def test_slack_values_are_plain_text_with_slacks_three_characters_escaped():
    msg = body("slack", OUTCOME)
    assert msg["text"].startswith("Workflow run failed: acme/reg/churn:&lt;production&gt;")
    assert msg["mrkdwn"] is False and "<production>" not in json.dumps(msg)
    values = slack_values(msg)
    assert values["W&B event"] == "ADD_ARTIFACT_ALIAS by alice &amp; bob"
    assert values["Run"] == "2" and values["Conclusion"] == "failure"
    assert msg["blocks"][0]["text"]["text"] == "Workflow run failed"
    assert msg["blocks"][-1]["elements"][0]["url"] == OUTCOME.run_url


def test_slack_shows_hostile_names_as_typed_never_as_links_mentions_or_formatting():
    msg = body("slack", HOSTILE)
    for t in slack_texts(msg):
        if t["type"] == "mrkdwn":  # only the bridge's own field names are mrkdwn
            assert re.fullmatch(r"\*[A-Za-z& ]+\*", t["text"]), t
        else:
            assert "<" not in t["text"] and ">" not in t["text"] and not ENTITY.search(t["text"])
            assert t.get("emoji") in (None, False)
    values = slack_values(msg)
    assert values["Workflow"].startswith("&lt;!channel&gt; *urgent* &lt;https://evil.example|")
    assert "\n" not in values["Error"]  # one line: no quote, list or heading starts
    assert "evil.example" not in json.dumps(msg["blocks"][-1])


def test_teams_facts_escape_every_markdown_character():
    values = teams_facts(body("teams", HOSTILE))
    assert values["W&B event"] == (
        "ADD\\_ARTIFACT\\_ALIAS by \\[Approve rollback\\]\\(https\\:\\/\\/evil\\.example\\)"
    )
    for name, value in values.items():
        assert unescaped_markdown(value) == [], name
        assert "\n" not in value and "\r" not in value
    assert "{{" not in values["Workflow"]  # no DATE()/TIME() function forms


def test_teams_message_has_the_card_and_the_run_button():
    msg = body("teams", OUTCOME)
    (attachment,) = msg["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert teams_facts(msg)["Model"] == "acme/reg/churn:<production>".translate(
        {ord(c): "\\" + c for c in "/:<>"}
    )
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open the workflow run", "url": OUTCOME.run_url}
    ]
    assert msg["summary"] == "Workflow run failed: acme/reg/churn:<production> → acme/svc"


def test_a_500_character_field_of_markup_is_cut_after_escaping_never_through_an_escape():
    o = replace(OUTCOME, author="<&>" * 167, workflow="[*]" * 167, error="<&>\\" * 125)
    slack = body("slack", o)
    slack_texts(slack)  # within Slack's limits: before, 2,105 characters killed it
    values = slack_values(slack)
    for name in ("W&B event", "Workflow", "Error"):
        assert len(values[name]) <= 500 and not ENTITY.search(values[name])
    assert values["W&B event"].endswith("&lt;&amp;&gt;…") or values["W&B event"].endswith(";…")
    teams = body("teams", o)
    assert len(json.dumps(teams).encode()) < TEAMS_BYTES
    for name, value in teams_facts(teams).items():
        assert len(value) <= 500 and unescaped_markdown(value.removesuffix("…")) == [], name
    assert teams_facts(teams)["Workflow"].endswith("…")


def test_a_run_url_on_another_host_gets_no_button_and_the_message_still_names_the_run():
    o = replace(OUTCOME, run_url="https://evil.example/acme/svc/actions/runs/2")
    for kind in ("slack", "teams", "webhook"):
        assert "evil.example" not in json.dumps(body(kind, o)), kind
    slack = body("slack", o)
    assert slack_values(slack)["Run"] == "2"
    (element,) = slack["blocks"][-1]["elements"]
    assert element["url"] == "https://github.com/acme/svc/actions"  # built, not taken
    assert body("webhook", o)["run_id"] == 2 and "run_url" not in body("webhook", o)
    assert "actions" not in body("teams", replace(o, web=""))["attachments"][0]["content"]


def test_the_web_host_follows_api_url():
    assert web_origin("https://api.github.com") == "https://github.com"
    assert web_origin("https://ghe.acme.dev/api/v3") == "https://ghe.acme.dev"
    assert web_origin("https://api.acme.ghe.com") == "https://acme.ghe.com"
    assert web_origin("http://127.0.0.1:8080/api/v3") == "http://127.0.0.1:8080"
    ghes = replace(OUTCOME, web=web_origin("https://ghe.acme.dev/api/v3"))  # github.com run
    assert body("teams", ghes)["attachments"][0]["content"]["actions"][0]["url"] == (
        "https://ghe.acme.dev/acme/svc/actions"
    )
    own = replace(ghes, run_url="https://ghe.acme.dev/acme/svc/actions/runs/2")
    assert body("slack", own)["blocks"][-1]["elements"][0]["url"] == own.run_url


def test_only_links_to_the_web_host_itself_are_kept():
    kept = "https://github.com/acme/svc/actions/runs/2"
    assert run_link(GITHUB, kept) == kept
    for url in (
        "http://github.com/acme/svc/actions/runs/2",  # another scheme
        "https://github.com@evil.example/acme",  # user info: the host is evil.example
        "https://github.com.evil.example/acme",
        "https://github.com:8443/acme",
        "https://github.com\\@evil.example/",
        "javascript:alert(1)//github.com/",
        "https://github.com",  # no path
        "https://github.com/a b",
        "https://github.com/" + "a" * 600,
        None,
        "",
    ):
        assert run_link(GITHUB, url) is None, url
    assert run_link("", kept) is None
    assert actions_link(GITHUB, "acme/svc") == "https://github.com/acme/svc/actions"
    assert actions_link(GITHUB, "acme/../x") is None and actions_link(GITHUB, "a/b/c") is None


def test_a_webhook_gets_the_outcome_as_plain_bounded_json():
    msg = body("webhook", OUTCOME)
    assert msg["outcome"] == "run_failed" and msg["run_url"] == OUTCOME.run_url
    assert msg["author"] == "alice & bob" and msg["run_id"] == 2
    assert "error" not in msg and "web" not in msg  # absent fields are left out
    long = body("webhook", replace(OUTCOME, error="x" * 5000 + "\ud800"))
    assert len(long["error"]) == 1000 and long["error"].endswith("…")
    assert body("webhook", replace(OUTCOME, error="a\ud800b"))["error"] == "a\ufffdb"


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


# -- any text, any length ----------------------------------------------------------------------

MARKUP = st.text(alphabet=st.sampled_from("<&>[]()*_~`#!\\|{}:/.-\n\r\x1b\u202e\ud800 aé😀"))
TEXT = st.one_of(st.text(), MARKUP, MARKUP.map(lambda s: s * 40))


@given(
    model=TEXT,
    author=TEXT,
    workflow=TEXT,
    conclusion=TEXT,
    error=TEXT,
    url=st.one_of(st.none(), TEXT, st.just("https://github.com/acme/svc/actions/runs/9")),
)
def test_any_text_gives_messages_within_limits_that_form_no_markup(
    model, author, workflow, conclusion, error, url
):
    o = replace(
        OUTCOME,
        model=model,
        author=author,
        workflow=workflow,
        conclusion=conclusion,
        error=error,
        run_url=url,
    )
    slack = body("slack", o)
    for t in slack_texts(slack):
        if t["type"] == "plain_text":
            assert "<" not in t["text"] and ">" not in t["text"] and not ENTITY.search(t["text"])
    assert len(slack["text"]) <= 500 and "<" not in slack["text"]
    teams = body("teams", o)
    assert len(json.dumps(teams, ensure_ascii=False).encode()) < TEAMS_BYTES
    for value in teams_facts(teams).values():
        assert len(value) <= 500 and unescaped_markdown(value.removesuffix("…")) == []
    for msg in (slack, teams, body("webhook", o)):
        json.dumps(msg, ensure_ascii=False).encode()  # no lone surrogate: a UTF-8 body
        for link in re.findall(r'"url": "([^"]*)"', json.dumps(msg)):
            assert link.startswith("https://github.com/acme/svc/"), link
