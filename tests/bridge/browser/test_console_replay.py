"""An event's page, the Replay buttons and the Now page in a real browser; a POST from
another origin or without its CSRF token is refused and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.bridge.browser.conftest import (
    ADMIN_LABEL,
    HostilePage,
    console_errors,
    heading,
    no_secrets,
    sign_in,
    status,
    submit,
    wait,
)

REFUSED = "Invalid request. client_payload is not valid for this console test."
FLAKY = "Server Error: the console test's first answer"


@dataclass(frozen=True)
class Seeded:
    succeeded: str  # deploy: a 502, then 204; its run succeeds
    replayed: str  # deploy, dead: replayed through its button
    guarded: str  # deploy, dead: the forged POSTs aim at it; it stays dead
    staging: list[str]  # staging, dead: replayed in bulk


@pytest.fixture(scope="module")
def seeded(console) -> Seeded:
    staging = console.send_dead("staging", *(f"acme/reg/stage:v{i}" for i in range(3)),
                                message=REFUSED)  # fmt: skip
    replayed, guarded = console.send_dead(
        "deploy", "acme/model-registry/replay-me:v1", "acme/model-registry/guarded:v2",
        message=REFUSED,
    )  # fmt: skip
    console.github.fail_next(502, body={"message": FLAKY})
    succeeded = console.send("deploy", "acme/model-registry/churn:v1")
    console.settle(succeeded)
    return Seeded(succeeded, replayed, guarded, staging)


def dispatch_of(console, event_id: str):
    (d,) = [d for d in console.event(event_id).deliveries if d.kind == "dispatch"]
    return d


def accepted_for(console, event_id: str) -> int:
    """How many of the event's dispatches the fake GitHub accepted."""
    return sum(
        1 for d in console.github.dispatches if d.client_payload.get("bridge_event_id") == event_id
    )


def logged_actions(browser: WebDriver, delivery_id: str) -> list[WebElement]:
    """The Now page's rows (or items) naming the admin token's label and the delivery."""
    return browser.find_elements(
        By.XPATH,
        f"//*[self::tr or self::li][contains(., '{ADMIN_LABEL}') and contains(., '{delivery_id}')]",
    )


def test_an_event_page_is_a_timeline_of_what_was_received_sent_tried_and_run(
    browser, console, seeded, shots
):
    sign_in(browser, console)
    browser.get(f"{console.url}events/{seeded.succeeded}")
    assert seeded.succeeded in heading(browser)
    timeline = browser.find_element(By.CSS_SELECTOR, "ol.timeline")
    assert "wandb" in timeline.text and "/webhooks/wandb" in timeline.text
    d = dispatch_of(console, seeded.succeeded)
    section = browser.find_element(By.CSS_SELECTOR, f"section.delivery[id='{d.id}']")
    assert section.get_attribute("data-state") == "delivered"
    assert "github:acme/churn-svc" in section.text
    # what was sent, and each attempt with GitHub's answer
    sent = [p.text for p in section.find_elements(By.TAG_NAME, "pre")]
    assert any("acme/model-registry/churn:v1" in p for p in sent), sent
    first, second = [r.text for r in section.find_elements(By.CSS_SELECTOR, "tr.attempt")]
    assert "502" in first and FLAKY in first
    assert first.endswith((" ms", " s"))  # the wait chosen before trying again
    assert "204" in second
    # the run, linked on GitHub's web host, with its conclusion
    (run,) = d.runs
    link = section.find_element(By.CSS_SELECTOR, "a.run")
    assert link.get_attribute("href") == run.html_url
    assert run.html_url.startswith(console.github.url + "/acme/churn-svc/actions/runs/")
    assert "success" in section.text
    # the raw body as received
    assert any(
        '"artifact_version_string"' in p.text for p in browser.find_elements(By.CSS_SELECTOR, "pre")
    )
    assert browser.find_elements(By.CSS_SELECTOR, "form.replay") == []  # nothing dead here
    no_secrets(browser, console)
    assert console_errors(browser) == []
    shots(browser, "event")


def test_a_dead_delivery_shows_githubs_refusal_and_its_notification(browser, console, seeded):
    sign_in(browser, console)
    browser.get(f"{console.url}events/{seeded.guarded}")
    d = dispatch_of(console, seeded.guarded)
    section = browser.find_element(By.CSS_SELECTOR, f"section.delivery[id='{d.id}']")
    assert section.get_attribute("data-state") == "dead"
    assert "422" in section.text and REFUSED in section.text
    form = section.find_element(By.CSS_SELECTOR, "form.replay")
    assert form.get_attribute("action") == f"{console.bridge.url}/console/deliveries/{d.id}/replay"
    assert form.get_attribute("method") == "post"
    assert "ops-hook" in browser.find_element(By.CSS_SELECTOR, "ol.timeline").text


def test_replay_through_the_button_dispatches_once_and_is_logged_with_the_label(
    browser, console, seeded, shots
):
    d = dispatch_of(console, seeded.replayed)
    assert d.state == "dead" and accepted_for(console, seeded.replayed) == 0
    page = f"{console.url}events/{seeded.replayed}"
    sign_in(browser, console)
    browser.get(page)
    first_tab = browser.current_window_handle
    browser.switch_to.new_window("tab")  # the same page, left open: a second click later
    browser.get(page)
    second_tab = browser.current_window_handle
    browser.switch_to.window(first_tab)

    button = browser.find_element(By.CSS_SELECTOR, f"section[id='{d.id}'] form.replay button")
    assert button.text.strip() == "Replay"
    submit(browser, button)
    assert status(browser) == 200 and "done=" in browser.current_url
    console.settle(seeded.replayed)
    again = dispatch_of(console, seeded.replayed)
    assert again.state == "delivered" and [a.status for a in again.history] == [422, 204]
    assert accepted_for(console, seeded.replayed) == 1

    browser.switch_to.window(second_tab)  # the stale page still shows the button
    submit(
        browser, browser.find_element(By.CSS_SELECTOR, f"section[id='{d.id}'] form.replay button")
    )
    assert status(browser) == 200
    after = dispatch_of(console, seeded.replayed)
    assert (after.state, after.attempts) == ("delivered", 2)  # nothing queued again
    assert accepted_for(console, seeded.replayed) == 1

    browser.get(console.url + "now")
    assert heading(browser) == "Now"
    assert len(logged_actions(browser, d.id)) == 1
    no_secrets(browser, console)
    assert "***" in browser.find_element(By.TAG_NAME, "body").text  # the config, masked
    assert console_errors(browser) == []
    shots(browser, "now")


def test_bulk_replay_requeues_every_dead_delivery_the_filter_shows(browser, console, seeded):
    sign_in(browser, console)
    browser.get(console.url + "?state=dead&route=staging")
    form = browser.find_element(By.CSS_SELECTOR, "form#replay-dead")
    assert form.get_attribute("method") == "post"
    button = form.find_element(By.CSS_SELECTOR, "button, input[type=submit]")
    assert "Replay 3 dead deliveries" in (button.text or button.get_attribute("value") or "")
    submit(browser, button)
    assert status(browser) == 200 and "done=" in browser.current_url
    for event in console.settle(*seeded.staging):
        (d,) = [d for d in event.deliveries if d.kind == "dispatch"]
        assert d.state == "delivered" and [a.status for a in d.history] == [422, 204]
    assert all(accepted_for(console, e) == 1 for e in seeded.staging)
    assert dispatch_of(console, seeded.guarded).state == "dead"  # not in the filter
    browser.get(console.url + "?state=dead&route=staging")
    assert browser.find_elements(By.CSS_SELECTOR, "table#events tr.event") == []


def forged(browser, console, seeded, how: str) -> None:
    """A replay POST of the guarded dead delivery that must be refused."""
    d = dispatch_of(console, seeded.guarded)
    sign_in(browser, console)
    browser.get(f"{console.url}events/{seeded.guarded}")
    form = browser.find_element(By.CSS_SELECTOR, f"section[id='{d.id}'] form.replay")
    stolen = form.find_element(By.NAME, "csrf").get_attribute("value")
    assert stolen
    if how == "another origin":
        # the session's own valid token, posted by a page on another port of 127.0.0.1:
        # the same site, so the SameSite=Strict cookie goes along; only Origin tells
        with HostilePage() as hostile:
            hostile.auto_post(form.get_attribute("action"), {"csrf": stolen})
            browser.get(hostile.url)
            wait(browser).until(
                lambda b: (
                    b.current_url.startswith(console.bridge.url)
                    and b.execute_script("return document.readyState") == "complete"
                )
            )
    else:
        if how == "no token":
            browser.execute_script("arguments[0].querySelector('[name=csrf]').remove()", form)
        else:
            browser.execute_script(
                "arguments[0].querySelector('[name=csrf]').value = 'x' + arguments[1]", form, stolen
            )
        submit(browser, form.find_element(By.TAG_NAME, "button"))


@pytest.mark.parametrize("how", ["another origin", "no token", "a wrong token"])
def test_a_forged_replay_is_refused_and_changes_nothing(browser, console, seeded, how):
    before = dispatch_of(console, seeded.guarded)
    forged(browser, console, seeded, how)
    assert status(browser) == 403
    assert browser.find_elements(By.TAG_NAME, "h1")  # an HTML page that says so
    no_secrets(browser, console)
    after = dispatch_of(console, seeded.guarded)
    assert (after.state, after.attempts, after.updated_at) == (
        "dead",
        before.attempts,
        before.updated_at,
    )
    assert accepted_for(console, seeded.guarded) == 0
    browser.get(console.url + "now")
    assert logged_actions(browser, before.id) == []
