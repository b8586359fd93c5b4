"""/metrics is right across gunicorn's worker processes."""

from __future__ import annotations

import json
import re

import requests

from harness.wait import wait_until
from tests.bridge.e2e.conftest import SECRET, TOKEN
from tests.bridge.harness import post


def sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name:
            got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
            if got == want:
                return float(m.group(3))
    raise AssertionError(f"no {name}{{{want}}} in metrics")


def scrape(url: str) -> str:
    response = requests.get(url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def test_counters_add_up_across_workers(bridge, fake_github):
    n = 12
    fake_github.fail_next(502)
    for i in range(n):  # separate connections: the two workers share the requests
        body = json.dumps({"event_type": "ADD_ARTIFACT_ALIAS", "alias": "production",
                           "i": i}).encode()  # fmt: skip
        assert post(f"{bridge.url}/webhooks/wandb", body, secret=SECRET, token=TOKEN).ok
    post(f"{bridge.url}/webhooks/wandb", body, secret=SECRET, token=TOKEN)  # duplicate
    post(f"{bridge.url}/webhooks/wandb", b"{}", secret="wrong", token=TOKEN)
    fake_github.wait_for_dispatches(n)

    def delivered() -> bool:  # GitHub has them; the store marks them delivered just after
        text = scrape(bridge.url)
        return sample(text, "wandb_bridge_deliveries", state="delivered") == n

    wait_until(delivered, what=f"/metrics counting {n} deliveries delivered")
    scrapes = [scrape(bridge.url) for _ in range(6)]  # whichever worker answers, the same
    for text in scrapes:
        assert sample(text, "wandb_bridge_requests_total", source="wandb", outcome="accepted") == n
        assert sample(text, "wandb_bridge_duplicates_total", source="wandb") == 1
        assert sample(text, "wandb_bridge_refusals_total", reason="invalid_signature") == 1
        assert sample(text, "wandb_bridge_deliveries", state="delivered") == n
        assert sample(text, "wandb_bridge_queue_depth") == 0
        assert sample(text, "wandb_bridge_delivery_attempts_total", status_class="2xx") == n
        assert sample(text, "wandb_bridge_delivery_attempts_total", status_class="5xx") == 1
        assert sample(text, "wandb_bridge_delivery_latency_seconds_count") == n
        assert sample(text, "wandb_bridge_oldest_queued_age_seconds") == 0
