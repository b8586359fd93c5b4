"""What the tests of the fake GitHub share: repositories, a client's headers, a clock."""

from __future__ import annotations

import time

import requests

REPO = "acme/models"
OTHER = "acme/other"
TOKEN = "ghp_fake_token"
HEADERS = {
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
    "User-Agent": "wandb-github-bridge-tests/0",
    "Authorization": f"Bearer {TOKEN}",
}


class FakeClock:
    """Starts at the wall clock, so PyGithub's JWTs (made from time.time()) are current, and
    on a whole second, so the seconds of GitHub's timestamps follow it exactly."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def message(response: requests.Response) -> str:
    """The ``message`` of a GitHub-shaped error body (which must link GitHub's docs)."""
    body = response.json()
    assert body["documentation_url"].startswith("https://docs.github.com/")
    text: str = body["message"]
    return text
