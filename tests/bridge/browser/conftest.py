"""The operator console in a real headless Chromium: Debian's ``chromium`` driven by
Debian's ``chromium-driver`` through Selenium (the driver's path is given, so Selenium
Manager never runs and nothing is downloaded), against the bridge under gunicorn on
loopback, the fake GitHub and a fake notification receiver.

One browser and one bridge per module: ``chrome`` and ``console`` are module-scoped, and
``browser`` hands each test the shared browser signed out, with one tab and an empty
console log.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.wrappers import Response

from bridge.store import open_store
from bridge.store.models import Event
from harness.loopback import LoopbackServer
from tests.bridge.e2e.conftest import ENV, GH_TOKEN, ROTATING_SECRET, SECRET, TOKEN, base_config
from tests.bridge.harness import REPO_ROOT, BridgeProcess, post
from tests.fakes.github import FakeGitHub
from tests.fakes.receivers import Receiver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH, HEIGHT = 1280, 800

ADMIN = "adm-console-browser-token-5c1e9a"
ADMIN_LABEL = "env:CONSOLE_ADMIN"  # the token's Secret.origin: what the console shows
HOOK_SECRET = "notify-console-hook-secret-7733"
HOSTILE_MODEL = "<img src=x onerror=alert(1)>"
# the bridge knows its runs by the event id in their title (docs/runs-and-notifications.md)
RUN_NAME = "Deploy ${{ github.event.client_payload.bridge_event_id }}"

ROUTES = [
    {
        "name": "deploy",
        "when": {"event_type": "ADD_ARTIFACT_ALIAS", "alias": "production"},
        "dispatch": {
            "repository": "acme/churn-svc",
            "event_type": "DEPLOY_MODEL",
            "client_payload": {"model": "${artifact_version_string}"},
        },
    },
    {
        "name": "canary",
        "when": {"event_type": "ADD_ARTIFACT_ALIAS", "alias": "canary"},
        "dispatch": {"repository": "acme/canary-svc", "event_type": "DEPLOY_MODEL"},
    },
    {
        "name": "staging",
        "when": {"event_type": "ADD_ARTIFACT_ALIAS", "alias": "staging"},
        "dispatch": {"repository": "acme/staging-svc", "event_type": "DEPLOY_MODEL"},
    },
    {
        "name": "evaluate",
        "when": {"event_type": "LINK_ARTIFACT"},
        "dispatch": {"repository": "acme/eval"},
    },
]
ALIAS_OF_ROUTE = {"deploy": "production", "canary": "canary", "staging": "staging"}


def _unavailable(reason: str) -> None:
    """Skip without a browser; under CI=true, where .ci/run installs one, fail."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: .ci/run must install chromium)", pytrace=False)
    pytest.skip(f"{reason}; to run: apt-get install chromium chromium-driver")


@pytest.fixture(scope="module")
def chrome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        _unavailable(f"the browser tests need {CHROMIUM} and {CHROMEDRIVER}")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},{HEIGHT}",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an alert stays open, so a test can look for it (the default would dismiss it)
    options.unhandled_prompt_behavior = "ignore"
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(log))
    driver = webdriver.Chrome(service=service, options=options)
    # the window's frame takes some of --window-size: make the page itself WIDTH x HEIGHT
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * WIDTH - inner[0], 2 * HEIGHT - inner[1])
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class Console:
    """A bridge with the console on, the fake GitHub it dispatches to, the receiver its
    ``notify: ops-hook`` posts to; ``sent`` the events sent, oldest first."""

    bridge: BridgeProcess
    github: FakeGitHub
    hook: Receiver
    sent: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.bridge.url}/console/"

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.bridge.workdir}/bridge.db"

    def secrets(self) -> list[str]:
        """Every secret value in the bridge's config: none may appear in a page."""
        return [SECRET, ROTATING_SECRET, TOKEN, GH_TOKEN, ADMIN, HOOK_SECRET, self.hook.url,
                self.store_url]  # fmt: skip

    def send(self, route: str, model: str) -> str:
        """A signed webhook that ``route`` takes, naming ``model``; the event's id."""
        body: dict[str, Any] = {"artifact_version_string": model}
        if route == "evaluate":
            body["event_type"] = "LINK_ARTIFACT"
        else:
            body.update(event_type="ADD_ARTIFACT_ALIAS", alias=ALIAS_OF_ROUTE[route])
        url = f"{self.bridge.url}/webhooks/wandb"
        resp = post(url, json.dumps(body).encode(), secret=SECRET, token=TOKEN)
        assert resp.status_code == 202, resp.text
        event_id = str(resp.json()["event_id"])
        self.sent.append(event_id)
        return event_id

    def event(self, event_id: str) -> Event:
        store = open_store(self.store_url)
        try:
            return store.get_event(event_id)
        finally:
            store.close()

    def settle(self, *event_ids: str, timeout: float = 60.0) -> list[Event]:
        """Wait until every delivery of the events is delivered or dead, every search
        for runs is over and every run concluded."""

        def settled(event: Event) -> bool:
            for d in event.deliveries:
                if d.state not in ("delivered", "dead") or d.watch == "searching":
                    return False
                if d.kind == "dispatch" and d.state == "delivered" and d.watch is None:
                    return False  # delivered, its search not started yet
                if any(r.state == "following" for r in d.runs):
                    return False
            return True

        deadline = time.monotonic() + timeout
        while True:
            events = [self.event(i) for i in event_ids]
            if all(settled(e) for e in events):
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled in time: {events}")
            time.sleep(0.1)

    def send_dead(self, route: str, *models: str, message: str) -> list[str]:
        """Events whose dispatch GitHub refuses for good (422 with ``message``). Nothing
        else may be dispatching meanwhile: the fake answers the next dispatches so."""
        self.github.fail_next(422, count=len(models), body={"message": message})
        ids = [self.send(route, m) for m in models]
        for event in self.settle(*ids):
            assert [d.state for d in event.deliveries if d.kind == "dispatch"] == ["dead"]
        return ids


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The bridge under gunicorn with ``admin.tokens`` set. acme/churn-svc's workflow
    succeeds, acme/canary-svc's fails; nothing runs for acme/eval or acme/staging-svc."""
    workdir = tmp_path_factory.mktemp("console")
    with FakeGitHub(tokens=[GH_TOKEN]) as github, Receiver("generic", secret=HOOK_SECRET) as hook:
        for repo, conclusion in (("acme/churn-svc", "success"), ("acme/canary-svc", "failure")):
            github.add_workflow(repo, types=["DEPLOY_MODEL"], run_name=RUN_NAME, queued_for=0.1,
                                runs_for=0.3, conclusion=conclusion)  # fmt: skip
        config = base_config(
            workdir,
            github.url,
            routes=ROUTES,
            admin={"tokens": [{"env": "CONSOLE_ADMIN"}]},
            runs={"no_run_after": "2s", "min_interval": "0.2s", "max_requests_per_hour": 100000},
            notify=[
                {
                    "name": "ops-hook",
                    "outcomes": ["run_failed", "delivery_dead"],
                    "webhook": {"url": hook.url, "secret": {"env": "HOOK_SECRET"}},
                }
            ],
            logging={"level": "INFO"},
        )
        env = {**ENV, "CONSOLE_ADMIN": ADMIN, "HOOK_SECRET": HOOK_SECRET}
        bridge = BridgeProcess(workdir, config, env, workers=2)
        try:
            yield Console(bridge.start(), github, hook)
        finally:
            bridge.stop()


@pytest.fixture
def browser(chrome: WebDriver) -> WebDriver:
    """The module's browser with one tab, no cookies and an empty console log."""
    for handle in chrome.window_handles[1:]:
        chrome.switch_to.window(handle)
        chrome.close()
    chrome.switch_to.window(chrome.window_handles[0])
    chrome.delete_all_cookies()
    chrome.get("about:blank")
    chrome.get_log("browser")
    return chrome


# --- driving the pages --------------------------------------------------------------------


def wait(driver: WebDriver, timeout: float = 15.0) -> WebDriverWait[WebDriver]:
    """Wait for a condition; a page being replaced meanwhile only means "not yet"."""
    return WebDriverWait(driver, timeout, ignored_exceptions=[WebDriverException])


def submit(driver: WebDriver, button: WebElement) -> None:
    """Click a form's button and wait for the page it leads to."""
    with next_page(driver):
        button.click()


@contextmanager
def next_page(driver: WebDriver) -> Iterator[None]:
    """Wait, after the block, until a new page replaced this one and has loaded."""
    driver.execute_script("window.leaving = true")  # a new page has a new window object
    yield
    wait(driver).until(
        lambda d: d.execute_script(
            "return window.leaving !== true && document.readyState === 'complete'"
        )
    )


def status(driver: WebDriver) -> int:
    """The HTTP status of the page shown (after redirects, the last answer's)."""
    return int(
        driver.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus")
    )


def heading(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "h1").text)


def sign_in(driver: WebDriver, console: Console, token: str = ADMIN) -> None:
    driver.get(console.url)
    form = driver.find_element(By.CSS_SELECTOR, "form#sign-in")
    form.find_element(By.CSS_SELECTOR, "input#token").send_keys(token)
    submit(driver, form.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]"))


@dataclass(frozen=True)
class Row:
    """One ``tr.event`` of the events table."""

    event_id: str
    href: str
    text: str


def rows(driver: WebDriver) -> list[Row]:
    found = []
    for tr in driver.find_elements(By.CSS_SELECTOR, "table#events tr.event"):
        link = tr.find_element(By.CSS_SELECTOR, "a.event-id")
        found.append(Row(link.text, str(link.get_attribute("href")), tr.text))
    return found


def all_pages(driver: WebDriver) -> list[Row]:
    """The rows of this page and of every older one, following ``rel=next``."""
    seen = rows(driver)
    while older := driver.find_elements(By.CSS_SELECTOR, "a[rel=next]"):
        assert older[0].text.strip() == "Older"
        submit(driver, older[0])
        page = rows(driver)
        assert 0 < len(page) <= 50
        seen += page
    return seen


def screenshot(driver: WebDriver, page: str, tmp: Path) -> None:
    """``console-<page>.png`` into ``tmp`` always, and into docs/images with
    ``CONSOLE_SCREENSHOTS=1`` (how the README's pictures are made)."""
    name = f"console-{page}.png"
    driver.save_screenshot(str(tmp / name))
    if os.environ.get("CONSOLE_SCREENSHOTS") == "1":
        driver.save_screenshot(str(REPO_ROOT / "docs" / "images" / name))


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Callable[[WebDriver, str], None]:
    tmp = tmp_path_factory.mktemp("screenshots")
    return lambda driver, page: screenshot(driver, page, tmp)


def no_secrets(driver: WebDriver, console: Console) -> None:
    source = driver.page_source
    shown = sum(1 for s in console.secrets() if s in source)  # counted, never printed
    assert shown == 0, f"{shown} secret value(s) in {driver.current_url}"


def console_errors(driver: WebDriver) -> list[str]:
    """What the page logged about its own scripts and the CSP (not failed loads: a 401
    or 403 page logs the status it was answered)."""
    return [
        e["message"]
        for e in driver.get_log("browser")
        if "Failed to load resource" not in e["message"]
        and (e["level"] == "SEVERE" or "Content Security Policy" in e["message"])
    ]


class HostilePage:
    """A page on another origin (a second loopback port) whose script posts a form to
    the console at once, as a site the admin visits could."""

    def __init__(self) -> None:
        self.html = "<p>nothing yet</p>"
        self._server = LoopbackServer(self._wsgi, "hostile-page")

    def _wsgi(self, environ: Any, start_response: Any) -> Any:
        return Response(self.html, content_type="text/html")(environ, start_response)

    @property
    def url(self) -> str:
        return self._server.url + "/win-a-prize"

    def auto_post(self, action: str, fields: dict[str, str]) -> None:
        inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
        self.html = (
            f'<form id="f" method="post" action="{action}">{inputs}</form>'
            "<script>document.getElementById('f').submit()</script>"
        )

    def __enter__(self) -> HostilePage:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
