"""Signing in to the console and out of it, in a real browser; the CSP the pages carry."""

from __future__ import annotations

import requests
from selenium.webdriver.common.by import By

from tests.bridge.browser.conftest import (
    ADMIN,
    ADMIN_LABEL,
    console_errors,
    heading,
    no_secrets,
    sign_in,
    status,
    submit,
)

WRONG = "adm-not-the-token-0000"


def test_the_sign_in_page_asks_for_the_token_in_a_labelled_password_field(browser, console, shots):
    browser.get(console.url)
    field = browser.find_element(By.CSS_SELECTOR, "form#sign-in input#token")
    assert field.get_attribute("type") == "password"
    assert field.get_attribute("name") == "token"
    assert field.get_attribute("autocomplete") == "current-password"
    label = browser.find_element(By.CSS_SELECTOR, "label[for=token]")
    assert label.text == "Admin token"
    form = browser.find_element(By.CSS_SELECTOR, "form#sign-in")
    assert form.get_attribute("method") == "post"
    assert form.get_attribute("action") == f"{console.bridge.url}/console/sign-in"
    assert form.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    assert browser.find_elements(By.CSS_SELECTOR, "table#events") == []
    no_secrets(browser, console)
    assert console_errors(browser) == []
    shots(browser, "sign-in")


def test_a_wrong_token_shows_an_error_and_nothing_else(browser, console):
    sign_in(browser, console, WRONG)
    assert status(browser) == 401
    (error,) = browser.find_elements(By.CSS_SELECTOR, "p.error")
    assert error.get_attribute("role") == "alert" and error.text
    assert browser.find_elements(By.CSS_SELECTOR, "form#sign-in input#token")
    assert browser.find_elements(By.CSS_SELECTOR, "table#events, form#filters") == []
    assert WRONG not in browser.page_source  # not even echoed back into the field
    no_secrets(browser, console)
    assert browser.get_cookie("console_session") is None
    browser.get(console.url)  # still signed out
    assert browser.find_elements(By.CSS_SELECTOR, "form#sign-in")


def test_the_right_token_opens_a_session_the_cookie_keeps_to_itself(browser, console):
    sign_in(browser, console)
    assert heading(browser) == "Events"
    cookie = browser.get_cookie("console_session")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/console"
    assert cookie["secure"] is False  # plain HTTP here: a Secure cookie would not come back
    assert cookie["value"] not in (ADMIN, ADMIN_LABEL)
    assert browser.execute_script("return document.cookie").find("console_session") == -1
    browser.get(console.url + "now")
    assert heading(browser) == "Now"
    no_secrets(browser, console)


def test_sign_out_ends_the_session_for_good(browser, console):
    sign_in(browser, console)
    session = browser.get_cookie("console_session")
    assert session is not None
    sign_out = browser.find_element(By.CSS_SELECTOR, "form[action='/console/sign-out']")
    submit(browser, sign_out.find_element(By.CSS_SELECTOR, "button, input[type=submit]"))
    assert browser.find_elements(By.CSS_SELECTOR, "form#sign-in")
    # the old cookie, brought back, opens nothing: the store forgot the session
    browser.delete_all_cookies()
    browser.add_cookie({k: session[k] for k in ("name", "value", "path", "httpOnly")})
    browser.get(console.url)
    assert browser.find_elements(By.CSS_SELECTOR, "form#sign-in")
    assert browser.find_elements(By.CSS_SELECTOR, "table#events") == []


def test_the_csp_stops_an_inline_script_and_allows_no_inline_script(browser, console):
    header = requests.get(console.url, timeout=10).headers["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    scripts = directives.get("script-src", directives.get("default-src"))
    assert scripts is not None and "'unsafe-inline'" not in scripts, header
    sign_in(browser, console)
    assert console_errors(browser) == []
    # a script element a page gets injected with (as an escaping bug would) does not run
    ran = browser.execute_script(
        "const s = document.createElement('script');"
        "s.textContent = 'window.injected = 1';"
        "document.body.appendChild(s);"
        "return window.injected === 1;"
    )
    assert ran is False
    assert any("Content Security Policy" in e["message"] for e in browser.get_log("browser"))
