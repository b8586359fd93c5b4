"""Signing in to the console: the form, wrong tokens and their throttle, sessions that
hold across app instances and end, the headers on every answer, the token kept out of
logs and URLs."""

from __future__ import annotations

import logging
import sqlite3

from bridge.config.load import parse_config
from bridge.config.secrets import Secret
from bridge.console import auth
from bridge.logs import TextFormatter
from tests.bridge.console.conftest import ADMIN, ENV, OTHER_ADMIN, Console, csrf_of, raw_config

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def session_of(resp) -> str:
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{auth.SESSION_COOKIE}=")
    return cookie.split(";")[0].split("=", 1)[1]


def assert_console_headers(resp):
    for name, value in HEADERS.items():
        assert resp.headers.get(name) == value, (name, resp.status_code)


def test_without_admin_tokens_every_console_page_is_404_html(tmp_path):
    c = Console(tmp_path, admin={"tokens": []})
    try:
        for path in ("/console/", "/console/now", "/console/events/evt_x"):
            resp = c.get(path)
            assert resp.status_code == 404 and resp.mimetype == "text/html"
            assert "admin.tokens" in resp.get_data(as_text=True)
            assert_console_headers(resp)
        assert c.post("/console/sign-in", {"token": ADMIN}).status_code == 404
    finally:
        c.store.close()


def test_sign_in_page_has_the_form(console):
    resp = console.get("/console/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and html.count("<h1>") == 1
    assert '<form id="sign-in" method="post" action="/console/sign-in">' in html
    assert '<label for="token">Admin token</label>' in html
    assert 'id="token" name="token" type="password" autocomplete="current-password"' in html
    assert '<table id="events">' not in html
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{auth.CSRF_COOKIE}={csrf_of(resp)};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert_console_headers(resp)
    static = console.get("/console/static/console/console.css")
    assert static.status_code == 200 and "state-dead" in static.get_data(as_text=True)
    static.close()


def test_a_wrong_token_shows_an_error_and_nothing_else(console):
    resp = console.sign_in("not-the-token")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 401
    assert '<p class="error" role="alert">' in html
    assert '<form id="sign-in"' in html and '<table id="events">' not in html
    assert auth.SESSION_COOKIE not in resp.headers.get("Set-Cookie", "")
    assert console.get("/console/now").status_code == 303  # still signed out


def test_repeated_wrong_tokens_are_slowed_then_the_right_one_waits_too(console):
    statuses = [console.sign_in(f"wrong-{i}").status_code for i in range(5)]
    assert statuses == [401] * 5
    blocked = console.sign_in(ADMIN)
    assert blocked.status_code == 429
    wait = int(blocked.headers["Retry-After"])
    assert wait > 0 and f"Wait {wait} seconds" in blocked.get_data(as_text=True)
    console.clock.now += 11 * 60  # the window has passed
    assert console.sign_in(ADMIN).status_code == 303


def test_the_right_token_signs_in_with_a_strict_http_only_session(console):
    resp = console.sign_in()
    assert resp.status_code == 303 and resp.headers["Location"] == "/console/"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{auth.SESSION_COOKIE}=")
    for part in ("HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=28800"):
        assert part in cookie
    assert "Secure" not in cookie  # plain HTTP here; Secure only on https
    assert ADMIN not in cookie
    page = console.get("/console/")
    assert "<h1>Events</h1>" in page.get_data(as_text=True)
    assert "env:BRIDGE_ADMIN_TOKEN" in page.get_data(as_text=True)  # the label


def test_over_https_the_session_cookie_is_secure(console):
    page = console.client.get("/console/", base_url="https://bridge.example")
    resp = console.client.post(
        "/console/sign-in",
        base_url="https://bridge.example",
        headers={"Origin": "https://bridge.example"},
        data={"csrf": csrf_of(page), "token": ADMIN},
    )
    assert resp.status_code == 303 and "Secure" in resp.headers["Set-Cookie"]


def test_the_session_is_in_the_store_and_ends_at_sign_out(console, tmp_path):
    session_id = session_of(console.sign_in(OTHER_ADMIN))
    with sqlite3.connect(tmp_path / "bridge.db") as db:
        rows = db.execute("SELECT id_hash, label, csrf FROM console_sessions").fetchall()
    db.close()
    assert rows == [(auth.id_hash(session_id), "inline", console.csrf())]
    # another app on the same store (another worker, another replica) knows the session
    other = console.another()
    other.set_cookie(auth.SESSION_COOKIE, session_id, path="/console")
    assert "<h1>Now</h1>" in other.get("/console/now").get_data(as_text=True)
    out = console.post("/console/sign-out", {"csrf": console.csrf()})
    assert out.status_code == 303 and out.headers["Location"] == "/console/?done=signed-out"
    assert other.get("/console/now").status_code == 303  # the row is gone for everyone
    assert console.get("/console/now").status_code == 303


def test_a_session_ends_when_its_token_leaves_the_config(console):
    session_id = session_of(console.sign_in(OTHER_ADMIN))
    only_env = parse_config(
        raw_config(console.store_url, admin={"tokens": [{"env": "BRIDGE_ADMIN_TOKEN"}]}), ENV
    )
    client = console.another(only_env)
    client.set_cookie(auth.SESSION_COOKIE, session_id, path="/console")
    assert client.get("/console/now").status_code == 303
    assert console.get("/console/now").status_code == 200  # the old config still has it


def test_a_session_expires_after_eight_hours(signed_in):
    assert signed_in.get("/console/now").status_code == 200
    signed_in.clock.now += 8 * 3600 + 1
    assert signed_in.get("/console/now").status_code == 303


def test_the_token_is_never_logged_nor_put_in_a_url(console, caplog):
    caplog.set_level(logging.DEBUG)
    console.sign_in("wrong-token-in-the-log?").close()  # closed: the request line is written
    resp = console.sign_in()
    resp.close()
    assert ADMIN not in resp.headers["Location"]
    lines = [TextFormatter().format(r) for r in caplog.records]
    for line in lines:
        assert ADMIN not in line and "wrong-token-in-the-log" not in line
    signing_in = [line for line in lines if "request method=POST path=/console/sign-in " in line]
    assert len(signing_in) == 2  # the request lines were written, without the token


def test_labels_number_tokens_from_the_same_place():
    tokens = [Secret("a", "inline"), Secret("b", "env:T"), Secret("c", "inline")]
    assert auth.labels(tokens) == ["inline#1", "env:T", "inline#3"]
    assert auth.match(tokens, b"c") == "inline#3"
    assert auth.match(tokens, b"b") == "env:T"
    assert auth.match(tokens, b"nope") is None
