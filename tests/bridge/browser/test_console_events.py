"""The events list in a real browser: newest first, full ids linking to each event,
every filter, keyset pages, a hostile model name shown as text, the keyboard."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.bridge.browser.conftest import (
    HOSTILE_MODEL,
    all_pages,
    console_errors,
    heading,
    next_page,
    no_secrets,
    rows,
    sign_in,
    submit,
)

BULK = 52  # with the five below, two pages of at most 50


@dataclass(frozen=True)
class Seeded:
    bulk: list[str]  # evaluate -> acme/eval: no run started
    succeeded: str  # deploy -> acme/churn-svc: the run succeeds
    failed: str  # canary -> acme/canary-svc: the run fails
    dead: str  # deploy, refused by GitHub with a 422
    hostile: str  # evaluate, with a model name that is HTML
    newest_first: list[str]


@pytest.fixture(scope="module")
def seeded(console) -> Seeded:
    bulk = [console.send("evaluate", f"acme/reg/bulk-{i:02d}:v1") for i in range(BULK)]
    console.settle(*bulk)
    (dead,) = console.send_dead("deploy", "acme/model-registry/doomed:v3", message="Invalid")
    succeeded = console.send("deploy", "acme/model-registry/churn:v1")
    failed = console.send("canary", "acme/model-registry/churn-canary:v2")
    hostile = console.send("evaluate", HOSTILE_MODEL)
    console.settle(succeeded, failed, hostile)
    return Seeded(bulk, succeeded, failed, dead, hostile, console.sent[::-1])


def filtered(browser, console, **fields: str) -> list[str]:
    """Fill the filter form as a person would, submit it; the ids of every page."""
    browser.get(console.url)
    form = browser.find_element(By.CSS_SELECTOR, "form#filters")
    for name, value in fields.items():
        element = form.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)
    button = form.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]")
    assert "Filter" in (button.text or button.get_attribute("value") or "")
    submit(browser, button)
    return [r.event_id for r in all_pages(browser)]


def test_the_list_is_newest_first_in_pages_of_fifty_with_full_ids_linking_to_each_event(
    browser, console, seeded, shots
):
    sign_in(browser, console)
    assert heading(browser) == "Events"
    first = rows(browser)
    assert len(first) == 50
    assert [r.event_id for r in first] == seeded.newest_first[:50]
    for row in first:
        assert row.event_id.startswith("evt_") and len(row.event_id) == 30
        assert row.href == f"{console.bridge.url}/console/events/{row.event_id}"
    no_secrets(browser, console)
    assert console_errors(browser) == []
    shots(browser, "events")
    everything = all_pages(browser)  # this page, then "Older" until there is no more
    assert [r.event_id for r in everything] == seeded.newest_first
    browser.get(first[0].href)
    assert seeded.newest_first[0] in heading(browser)


def test_a_row_says_the_model_when_the_delivery_state_and_the_outcome_in_words(
    browser, console, seeded
):
    sign_in(browser, console)
    shown = {r.event_id: r for r in all_pages(browser)}
    succeeded, failed, dead = shown[seeded.succeeded], shown[seeded.failed], shown[seeded.dead]
    assert "acme/model-registry/churn:v1" in succeeded.text
    assert "github:acme/churn-svc" in succeeded.text and "delivered" in succeeded.text
    assert "success" in succeeded.text
    assert "acme/model-registry/churn-canary:v2" in failed.text and "failure" in failed.text
    assert "no run started" in shown[seeded.bulk[0]].text
    browser.get(console.url)  # the newest page, where the dead one is
    row = browser.find_element(By.XPATH, f"//tr[.//a[text()='{seeded.dead}']]")
    badge = row.find_element(By.CSS_SELECTOR, "span.state-dead")
    assert badge.text == "dead" and "state" in (badge.get_attribute("class") or "").split()
    assert "acme/model-registry/doomed:v3" in dead.text
    when = row.find_element(By.TAG_NAME, "time").get_attribute("datetime")
    assert when and when.startswith("20") and ("Z" in when or "+00:00" in when)


def test_each_filter_shows_what_it_names(browser, console, seeded):
    sign_in(browser, console)
    assert filtered(browser, console, state="dead") == [seeded.dead]
    assert filtered(browser, console, state="queued") == []
    assert filtered(browser, console, run="succeeded") == [seeded.succeeded]
    assert filtered(browser, console, run="failed") == [seeded.failed]
    no_run = filtered(browser, console, run="no_run")
    assert set(seeded.bulk) | {seeded.hostile} <= set(no_run)
    assert {seeded.succeeded, seeded.failed}.isdisjoint(no_run)
    assert filtered(browser, console, repository="acme/canary-svc") == [seeded.failed]
    assert filtered(browser, console, route="deploy") == [seeded.succeeded, seeded.dead]
    assert filtered(browser, console, route="evaluate") == [seeded.hostile, *seeded.bulk[::-1]]
    assert filtered(browser, console, q="doomed") == [seeded.dead]
    assert filtered(browser, console, q="bulk-07") == [seeded.bulk[7]]
    assert filtered(browser, console, q=seeded.failed) == [seeded.failed]
    # filters add up, and the form shows the ones in force
    assert filtered(browser, console, route="deploy", run="succeeded") == [seeded.succeeded]
    assert Select(browser.find_element(By.NAME, "run")).first_selected_option.text
    assert browser.find_element(By.NAME, "route").get_attribute("value") == "deploy"


def test_the_filter_holds_across_older_pages(browser, console, seeded):
    sign_in(browser, console)
    assert filtered(browser, console, route="evaluate") == [seeded.hostile, *seeded.bulk[::-1]]
    assert "route=evaluate" in browser.current_url  # the last page was reached keeping it


def test_a_hostile_model_name_is_text_and_runs_nothing(browser, console, seeded):
    sign_in(browser, console)
    for page in (console.url + "?q=" + seeded.hostile, f"{console.url}events/{seeded.hostile}"):
        browser.get(page)
        assert HOSTILE_MODEL in browser.find_element(By.TAG_NAME, "body").text
        assert browser.find_elements(By.CSS_SELECTOR, "img[src=x]") == []
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert  # noqa: B018
        assert console_errors(browser) == []


def test_the_keyboard_reaches_the_filters_and_enter_submits_them(browser, console, seeded):
    sign_in(browser, console)
    for _ in range(60):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        if browser.switch_to.active_element.get_attribute("name") == "q":
            break
    else:
        raise AssertionError("tabbing never reached the search field")
    focused = browser.switch_to.active_element
    assert focused.get_attribute("id") in {
        label.get_attribute("for") for label in browser.find_elements(By.TAG_NAME, "label")
    }
    focused.send_keys("churn-canary")
    with next_page(browser):
        focused.send_keys(Keys.ENTER)
    assert [r.event_id for r in rows(browser)] == [seeded.failed]
