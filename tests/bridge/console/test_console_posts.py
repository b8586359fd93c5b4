"""Replays from the console: each POST needs the session's CSRF token and a page of the
console's own origin; a refused one changes nothing; a replay is logged with its label."""

from __future__ import annotations

import pytest

from bridge.console.security import same_origin
from tests.bridge.console.conftest import ORIGIN, work


@pytest.fixture
def dead(signed_in):
    """Two events, each with a dead dispatch to acme/x (GitHub said 422) and one to
    acme/y delivered. The ids of the dead deliveries, by event id."""
    found = {}
    for v in (1, 2):
        event_id = signed_in.webhook(
            {"event_type": "LINK_ARTIFACT", "artifact_version_string": f"acme/reg/m:v{v}"}
        )
        done = work(
            signed_in,
            {
                "acme/x": ("dead", 422, '{"message": "Unprocessable"}', None),
                "acme/y": ("delivered", 204, "", None),
            },
        )
        found[event_id] = done["acme/x"]
    return found


def states(console) -> dict[str, str]:
    return {d.id: d.state for e in console.store.list_events(limit=100) for d in e.deliveries}


def refused(resp) -> bool:
    return resp.status_code == 403 and "nothing was changed" in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    "how",
    ["no token", "wrong token", "another origin", "another referer", "no origin", "null"],
)
def test_a_replay_post_without_the_token_or_from_elsewhere_is_refused(signed_in, dead, how):
    event_id, delivery_id = next(iter(dead.items()))
    before = states(signed_in)
    token = signed_in.csrf()
    form = {"csrf": token, "event": event_id}
    headers: dict = {}
    if how == "no token":
        del form["csrf"]
    elif how == "wrong token":
        form["csrf"] = token[:-2] + "xx"
    elif how == "another origin":
        headers = {"origin": "http://evil.example"}
    elif how == "another referer":
        headers = {"origin": None, "Referer": "http://evil.example/console/"}
    elif how == "no origin":
        headers = {"origin": None}
    else:
        headers = {"origin": "null"}
    path = f"/console/deliveries/{delivery_id}/replay"
    assert refused(signed_in.post(path, form, **headers))
    assert refused(signed_in.post("/console/replay-dead", form, **headers))
    assert states(signed_in) == before
    assert signed_in.store.console.actions(20) == []


def test_a_post_without_a_session_is_refused(console, dead):
    delivery_id = next(iter(dead.values()))
    token = console.csrf()
    console.post("/console/sign-out", {"csrf": token})
    sign_in_token = console.csrf()  # the sign-in form's: not a session's
    resp = console.post(f"/console/deliveries/{delivery_id}/replay", {"csrf": sign_in_token})
    assert refused(resp) and states(console)[delivery_id] == "dead"


def test_the_replay_button_queues_the_dead_delivery_once_and_logs_it(signed_in, dead):
    event_id, delivery_id = next(iter(dead.items()))
    page = signed_in.get(f"/console/events/{event_id}").get_data(as_text=True)
    form = f'<form class="replay" method="post" action="/console/deliveries/{delivery_id}/replay">'
    assert form in page
    token = signed_in.csrf(f"/console/events/{event_id}")
    resp = signed_in.post(
        f"/console/deliveries/{delivery_id}/replay", {"csrf": token, "event": event_id}
    )
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/console/events/{event_id}?done=replayed:1"
    assert states(signed_in)[delivery_id] == "queued"
    shown = signed_in.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Replayed 1 delivery" in shown and form not in shown
    again = signed_in.post(
        f"/console/deliveries/{delivery_id}/replay", {"csrf": token, "event": event_id}
    )
    assert again.headers["Location"].endswith("?done=replayed:0")
    (action,) = signed_in.store.console.actions(20)
    assert action.label == "env:BRIDGE_ADMIN_TOKEN" and action.target == delivery_id
    now = signed_in.get("/console/now").get_data(as_text=True)
    assert delivery_id in now and "env:BRIDGE_ADMIN_TOKEN" in now


def test_bulk_replay_takes_every_dead_delivery_the_filter_shows(signed_in, dead):
    page = signed_in.get("/console/?state=dead").get_data(as_text=True)
    assert '<form id="replay-dead" method="post" action="/console/replay-dead">' in page
    assert "Replay 2 dead deliveries" in page
    assert '<input type="hidden" name="state" value="dead">' in page
    one = next(iter(dead))
    only = signed_in.get(f"/console/?q={one}").get_data(as_text=True)
    assert "Replay 1 dead delivery" in only
    resp = signed_in.post("/console/replay-dead", {"csrf": signed_in.csrf(), "q": one})
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/console/?q={one}&done=replayed:1"
    after = states(signed_in)
    assert [after[d] for d in dead.values()] == ["queued", "dead"]
    resp = signed_in.post("/console/replay-dead", {"csrf": signed_in.csrf(), "state": "dead"})
    assert resp.headers["Location"] == "/console/?state=dead&done=replayed:1"
    assert set(states(signed_in).values()) == {"queued", "delivered"}
    assert "replay-dead" not in signed_in.get("/console/").get_data(as_text=True)
    assert len(signed_in.store.console.actions(20)) == 2


def test_a_get_changes_nothing(signed_in, dead):
    delivery_id = next(iter(dead.values()))
    resp = signed_in.get(f"/console/deliveries/{delivery_id}/replay")
    assert resp.status_code == 405 and resp.mimetype == "text/html"
    assert "POST" in resp.headers["Allow"]
    assert states(signed_in)[delivery_id] == "dead"


@pytest.mark.parametrize(
    ("origin", "referer", "host", "same"),
    [
        ("http://b.example:8080", None, "b.example:8080", True),
        ("https://b.example", None, "b.example", True),  # TLS ended at the proxy
        ("http://b.example", None, "b.example", True),
        (None, "https://b.example/console/events/x", "b.example", True),
        ("https://B.EXAMPLE", None, "b.example", True),
        ("http://b.example:9090", None, "b.example:8080", False),
        ("http://b.example:8080", None, "b.example", False),
        ("http://b.example", None, "b.example:8080", False),
        ("http://evil.example", "http://b.example/", "b.example", False),  # Origin decides
        ("http://b.example.evil", None, "b.example", False),
        ("http://user@evil.example", None, "b.example", False),
        (None, None, "b.example", False),
        ("null", None, "b.example", False),
        ("file:///x", None, "b.example", False),
        ("http://b.example:x", None, "b.example", False),
        ("http://b.example", None, "", False),
    ],
)
def test_same_origin(origin, referer, host, same):
    assert same_origin(origin, referer, host) is same


def test_the_origin_used_in_these_tests_is_the_hosts():
    assert same_origin(ORIGIN, None, ORIGIN.removeprefix("http://"))
