"""The console's pages as a browser gets them: the events list and its filters and pages,
one event's timeline, Now; W&B's and GitHub's text escaped; no secret value anywhere;
the structure assistive technology relies on."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from bridge.store.models import NewRun
from tests.bridge.console.conftest import SECRETS, conclude, work

HOSTILE_MODEL = "acme/reg/<img src=x onerror=alert(1)>:v1"
HOSTILE_TYPE = '"><script>alert(2)</script>'


class Page(HTMLParser):
    """The tags of a page, to check its structure (not its looks)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def all(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]


def text(resp) -> str:
    assert resp.status_code == 200, resp.status_code
    return str(resp.get_data(as_text=True))


def event_ids(html: str) -> list[str]:
    return re.findall(r'<a class="event-id" href="/console/events/(evt_\w+)">\1</a>', html)


@pytest.fixture
def seeded(signed_in):
    """Four events: one delivered whose run succeeded, one dead (422), one with a run
    link off GitHub's host, and the hostile one (still queued)."""
    c = signed_in
    ids = {}
    run_ok = NewRun(11, "ci.yml", "https://github.com/acme/x/actions/runs/11", "completed",
                    "success", c.clock(), c.clock())  # fmt: skip
    ids["ok"] = c.webhook(
        {"event_type": "ADD_ARTIFACT_ALIAS", "artifact_version_string": "acme/reg/churn:v7"}
    )
    work(c, {"acme/x": ("delivered", 204, "", run_ok)})
    conclude(c, 11, "success")
    c.clock.now += 1
    ids["dead"] = c.webhook(
        {"event_type": "LINK_ARTIFACT", "artifact_version_string": "acme/reg/fraud:v2"}
    )
    work(c, {"acme/x": ("dead", 422, '{"message": "No ref found for: main"}', None),
             "acme/y": ("delivered", 204, "", None)})  # fmt: skip
    c.clock.now += 1
    elsewhere = NewRun(12, "ci.yml", "https://evil.example/acme/x/actions/runs/12", "in_progress",
                       None, c.clock(), c.clock())  # fmt: skip
    ids["elsewhere"] = c.webhook(
        {"event_type": "ADD_ARTIFACT_ALIAS", "artifact_version_string": "acme/reg/churn:v8"}
    )
    work(c, {"acme/x": ("delivered", 204, "", elsewhere)})
    c.clock.now += 1
    ids["hostile"] = c.webhook(
        {"event_type": HOSTILE_TYPE, "artifact_version_string": HOSTILE_MODEL}
    )
    return ids


def test_the_events_list_newest_first_with_states_and_outcomes(seeded, signed_in):
    html = text(signed_in.get("/console/"))
    assert html.count("<h1>") == 1 and "<h1>Events</h1>" in html
    assert event_ids(html) == [seeded[k] for k in ("hostile", "elsewhere", "dead", "ok")]
    rows = html.split('<tr class="event">')[1:]
    ok, dead = rows[3], rows[2]
    assert "acme/reg/churn:v7" in ok and '<td class="outcome">success</td>' in ok
    assert '<span class="state state-delivered">delivered</span>' in ok
    assert (
        '<span class="target">github:acme/x</span> <span class="state state-dead">dead</span>'
        in dead
    )
    assert '<time datetime="2023-11-14T22:13:20Z">2023-11-14 22:13:20 UTC</time>' in ok
    assert '<td class="outcome">running</td>' in rows[1]
    assert "Replay 1 dead delivery" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=dead", ["dead"]),
        ("state=queued", ["hostile"]),
        ("state=delivered", ["elsewhere", "dead", "ok"]),
        ("run=succeeded", ["ok"]),
        ("run=running", ["elsewhere"]),
        ("repository=acme/y", ["dead"]),
        ("route=to-y", ["dead"]),
        ("q=churn", ["elsewhere", "ok"]),
        ("q=FRAUD", ["dead"]),
        ("state=delivered&q=churn:v7", ["ok"]),
    ],
)
def test_each_filter(seeded, signed_in, query, expected):
    html = text(signed_in.get(f"/console/?{query}"))
    assert event_ids(html) == [seeded[k] for k in expected]
    for name, value in (p.split("=") for p in query.split("&")):
        page = Page(html)
        if name in ("state", "run"):
            (chosen,) = [o for o in page.all("option") if "selected" in o]
            assert chosen["value"] == value
        else:
            assert page.all("input", name=name)[0]["value"] == value


def test_search_by_event_id_and_its_start(seeded, signed_in):
    one = seeded["dead"]
    assert event_ids(text(signed_in.get(f"/console/?q={one}"))) == [one]
    assert one in event_ids(text(signed_in.get(f"/console/?q={one[:10]}")))


def test_a_filter_value_the_form_does_not_offer_is_a_400_page(signed_in):
    for query in (
        "state=lost",
        "run=maybe",
        "before=<x>",
        "q=" + "x" * 301,
        "q=a%00b",
        "route=a%0db",
    ):
        resp = signed_in.get(f"/console/?{query}")
        assert resp.status_code == 400 and resp.mimetype == "text/html"
        assert '<p class="error" role="alert">' in resp.get_data(as_text=True)


def test_fifty_a_page_then_older_until_the_end(signed_in):
    made = []
    for i in range(51):
        signed_in.clock.now += 1  # ids sort by time
        made.append(signed_in.webhook({"event_type": "LINK_ARTIFACT", "n": i}))
    first = text(signed_in.get("/console/?route=to-y"))
    assert event_ids(first) == made[::-1][:50]
    (older,) = re.findall(r'<a rel="next" href="([^"]+)">Older</a>', first)
    assert older == f"?route=to-y&amp;before={made[1]}"
    second = text(signed_in.get("/console/" + older.replace("&amp;", "&")))
    assert event_ids(second) == [made[0]] and 'rel="next"' not in second


def test_hostile_text_from_wandb_shows_as_text(seeded, signed_in):
    pages = [
        text(signed_in.get("/console/")),
        text(signed_in.get(f"/console/events/{seeded['hostile']}")),
        text(signed_in.get("/console/?q=<img")),
    ]
    for html in pages:
        assert "<img" not in html and "<script>" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        assert not Page(html).all("img") and not Page(html).all("script", src=None)
    assert "&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in pages[1]


def test_the_event_timeline(seeded, signed_in):
    html = text(signed_in.get(f"/console/events/{seeded['dead']}"))
    page = Page(html)
    assert html.count("<h1>") == 1 and seeded["dead"] in html.split("<h1>")[1].split("</h1>")[0]
    assert '<ol class="timeline">' in html
    received = html.split('<li class="received">')[1].split("</li>")[0]
    for shown in ("webhook", "/webhooks/w", "<dd>w</dd>", "2023-11-14 22:13:21 UTC"):
        assert shown in received
    sections = page.all("section", **{"class": "delivery"})
    assert sorted(s["data-state"] for s in sections) == ["dead", "delivered"]
    dead_id = next(s["id"] for s in sections if s["data-state"] == "dead")
    dead = html.split(f'id="{dead_id}"')[1].split("</section>")[0]
    assert "No ref found for: main" in dead and "<td>422</td>" in dead
    assert "<td>60 min</td>" in dead  # the wait chosen
    assert "&#34;event_type&#34;: &#34;LINK_ARTIFACT&#34;" in dead  # what was sent
    assert f'action="/console/deliveries/{dead_id}/replay"' in dead
    assert html.count('<form class="replay"') == 1  # the delivered one has none
    assert '<pre class="body">' in html and "fraud:v2" in html.split('<pre class="body">')[1]


def test_a_run_links_only_to_githubs_web_host(seeded, signed_in):
    ok = text(signed_in.get(f"/console/events/{seeded['ok']}"))
    assert '<a class="run" href="https://github.com/acme/x/actions/runs/11">run 11</a>' in ok
    assert '<span class="outcome">success</span>' in ok
    elsewhere = text(signed_in.get(f"/console/events/{seeded['elsewhere']}"))
    assert "evil.example" not in elsewhere and 'class="run"' not in elsewhere
    assert '<span class="run-id">12</span>' in elsewhere
    assert '<span class="outcome">running</span>' in elsewhere


def test_an_unknown_event_is_a_404_page(signed_in):
    resp = signed_in.get("/console/events/evt_nope")
    assert resp.status_code == 404 and "evt_nope" in resp.get_data(as_text=True)


def test_the_now_page(seeded, signed_in):
    signed_in.store.pause("token", signed_in.clock() + 600)
    html = text(signed_in.get("/console/now"))
    assert html.count("<h1>") == 1 and "<h1>Now</h1>" in html
    by_state = html.split('<table id="by-state">')[1].split("</table>")[0]
    counts = re.findall(r'state-(\w+)">\1</span></th><td>(\d+)</td>', by_state)
    assert dict(counts) == {"queued": "1", "in_flight": "0", "delivered": "3", "dead": "1"}
    assert "Store: a write commits." in html
    assert '<th scope="row">token</th>' in html.split('<table id="pauses">')[1]
    assert "No ref found for: main" in html.split('<table id="errors">')[1]
    config = html.split('<pre id="config">')[1].split("</pre>")[0]
    assert "store: *** (from inline)" in config
    assert "api_key: *** (inline)" in config
    assert "- [0]: *** (from env:BRIDGE_ADMIN_TOKEN)" in config
    assert "repository: &#34;acme/y&#34;" in config


def test_no_secret_value_in_any_page(seeded, signed_in):
    signed_in.store.pause("token", signed_in.clock() + 600)
    paths = [
        "/console/",
        "/console/?state=dead",
        "/console/now",
        *(f"/console/events/{e}" for e in seeded.values()),
        "/console/events/evt_nope",
    ]
    pages = [signed_in.get(p).get_data(as_text=True) for p in paths]
    pages.append(signed_in.post("/console/replay-dead", {"csrf": "x"}).get_data(as_text=True))
    signed_in.post("/console/sign-out", {"csrf": signed_in.csrf()})
    pages.append(signed_in.get("/console/").get_data(as_text=True))
    pages.append(signed_in.sign_in("wrong").get_data(as_text=True))
    assert len(pages) == 11
    for html in pages:
        for secret in SECRETS:
            assert secret not in html


@pytest.mark.parametrize("path", ["/console/", "/console/now", "event"])
def test_pages_are_built_for_assistive_technology(seeded, signed_in, path):
    if path == "event":
        path = f"/console/events/{seeded['dead']}"
    html = text(signed_in.get(path))
    page = Page(html)
    assert len(page.all("h1")) == 1
    (nav,) = page.all("nav")
    assert nav.get("aria-label")
    labelled = {a["for"] for a in page.all("label")}
    for field in page.all("input") + page.all("select"):
        if field.get("type") != "hidden":
            assert field.get("id") in labelled, field
    for th in page.all("th"):
        assert th.get("scope") in ("col", "row"), html
    assert not page.all("script", src=None)  # no inline script
    assert "style=" not in html  # no inline style (the CSP would block it)
    assert page.all("html")[0]["lang"] == "en"


def test_waits_read_as_a_person_reads_them():
    from bridge.console.pages import seconds

    assert [seconds(w) for w in (None, 0.25, 0.05, 45, 720, 9000)] == [
        "",
        "250 ms",
        "50 ms",
        "45 s",
        "12 min",
        "2.5 h",
    ]
