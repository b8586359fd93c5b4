"""The console in process: the real app (Flask's test client) on a real SQLite store,
with a config whose every secret value is known, so pages can be searched for them."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from flask.testing import FlaskClient

from bridge.app import create_app
from bridge.config.load import parse_config
from bridge.config.model import Config
from bridge.signature import sign
from bridge.store import open_store
from bridge.store.models import Attempt, Watch
from tests.bridge.fakeclock import Clock

HOST = "bridge.example:8080"
ORIGIN = f"http://{HOST}"
ADMIN = "admin-token-console-7f3a9c"
OTHER_ADMIN = "second-admin-token-51d0e2"
WEBHOOK_SECRET = "webhook-secret-b81c44"
ACCESS_TOKEN = "source-access-token-90af12"
GITHUB_TOKEN = "ghp_consoleTestToken1234567890abcdef"
WANDB_KEY = "wandb-api-key-0123456789abcdef0123456789abcdef"
NOTIFY_URL = "https://hooks.example/notify/secret-path-6e2f"
NOTIFY_SECRET = "notify-signing-secret-c3d9"
SECRETS = (
    ADMIN,
    OTHER_ADMIN,
    WEBHOOK_SECRET,
    ACCESS_TOKEN,
    GITHUB_TOKEN,
    WANDB_KEY,
    NOTIFY_URL,
    NOTIFY_SECRET,
)
ENV = {"BRIDGE_ADMIN_TOKEN": ADMIN}


def raw_config(store_url: str, **over: object) -> dict:
    raw = {
        "store": store_url,
        "sources": {"w": {"secrets": [WEBHOOK_SECRET], "tokens": [ACCESS_TOKEN]}},
        "github": {"token": GITHUB_TOKEN},
        "routes": [
            {"name": "to-x", "dispatch": {"repository": "acme/x"}},
            {
                "name": "to-y",
                "when": {"event_type": ["LINK_ARTIFACT"]},
                "dispatch": {"repository": "acme/y"},
            },
        ],
        "admin": {"tokens": [{"env": "BRIDGE_ADMIN_TOKEN"}, OTHER_ADMIN]},
        "notify": [
            {
                "name": "ops-hook",
                "outcomes": ["delivery_dead"],
                "webhook": {"url": NOTIFY_URL, "secret": NOTIFY_SECRET},
            }
        ],
        "wandb": {
            "entity": "acme",
            "bridge_url": "https://bridge.example",
            "source": "w",
            "secret_name": "BRIDGE_WEBHOOK_SECRET",
            "access_token_name": "BRIDGE_ACCESS_TOKEN",
            "api_key": WANDB_KEY,
            "catch_up": {"every": "5m"},
        },
    }
    raw.update(over)
    return raw


class Console:
    """A console app with its store and clock, and a test client of it."""

    def __init__(self, tmp_path, **over: object) -> None:
        self.store_url = f"sqlite:///{tmp_path}/bridge.db"
        self.store = open_store(self.store_url)
        self.clock = Clock()
        self.config = parse_config(raw_config(self.store_url, **over), ENV)
        self.app = create_app(self.config, store=self.store, clock=self.clock)
        self.client = self.app.test_client()

    def another(self, config: Config | None = None) -> FlaskClient:
        """A client of a second app on the same store (another worker or replica)."""
        app = create_app(config or self.config, store=self.store, clock=self.clock)
        return app.test_client()

    def webhook(self, body: dict) -> str:
        """Send a signed webhook as W&B does; the event's id."""
        data = json.dumps(body).encode()
        headers = {
            "X-Wandb-Signature": sign(WEBHOOK_SECRET, data),
            "Authorization": f"Bearer {ACCESS_TOKEN}",
        }
        resp = self.client.post(
            "/webhooks/w", data=data, headers={**headers, "Content-Type": "application/json"}
        )
        assert resp.status_code == 202, resp.get_data(as_text=True)
        return str(resp.get_json()["event_id"])

    def get(self, path: str, **kw):
        return self.client.get(path, headers={"Host": HOST}, **kw)

    def post(self, path: str, data: dict, origin: str | None = ORIGIN, **headers: str):
        sent = {"Host": HOST, **headers}
        if origin is not None:
            sent["Origin"] = origin
        return self.client.post(path, data=data, headers=sent)

    def sign_in(self, token: str = ADMIN):
        page = self.get("/console/")
        return self.post("/console/sign-in", {"csrf": csrf_of(page), "token": token})

    def csrf(self, path: str = "/console/") -> str:
        return csrf_of(self.get(path))


def csrf_of(resp) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', resp.get_data(as_text=True))
    assert found, resp.get_data(as_text=True)
    return found.group(1)


@pytest.fixture
def console(tmp_path):
    c = Console(tmp_path)
    yield c
    c.store.close()


@pytest.fixture
def signed_in(console):
    assert console.sign_in().status_code == 303
    return console


OWNER = "test-worker"
RETRY_LATER = ("queued", 503, "Service Unavailable", None)


def work(console: Console, results: dict[str, tuple]) -> dict[str, str]:
    """One attempt at every due delivery, recorded as a worker records it. ``results``
    gives, by repository, ``(state, GitHub's status, its answer, the run it started or
    None)``; others are left queued for an hour after a 503. The ids, by repository."""
    now = console.clock()
    done = {}
    for c in console.store.claim(OWNER, 100, 60, now):
        state, status, answer, run = results.get(c.repository, RETRY_LATER)
        outcome = "retry" if state == "queued" else state  # delivered, dead: as the states
        attempt = Attempt(c.attempt, now, now, status, outcome, answer, 3600.0, OWNER)
        watch = None
        if run is not None:
            watch = Watch(c.id, c.event_id, c.repository, c.kind, None, None, now,
                          now + 300, None, 0)  # fmt: skip
        due = now + 3600 if state == "queued" else now
        console.store.finish(c, OWNER, attempt, state, due, watch=watch, run=run)
        done[c.repository] = c.id
    return done


def conclude(console: Console, run_id: int, conclusion: str) -> None:
    """Record that the followed run ``run_id`` ended with ``conclusion``, as a look at it
    would."""
    later = console.clock() + 86400  # every followed run is due by then
    for run in console.store.runs.claim_runs(OWNER, 100, 60, later):
        if run.run_id == run_id:
            seen = replace(run, status="completed", conclusion=conclusion)
            state = "concluded"
        else:
            seen, state = None, "following"
        console.store.runs.finish_run(
            run, OWNER, console.clock(), seen=seen, state=state, due_at=console.clock(), etag=None
        )
