"""W&B answers that are not what the bridge expects: a listing that never ends, a field
missing or of another type. Each is one line naming it and exit 1, never a traceback and
never a plan made from part of a listing."""

from __future__ import annotations

import pytest

from bridge.wandb.api import MAX_PAGES
from tests.bridge.wandb.test_errors import one_line

WEBHOOK = {
    "__typename": "GenericWebhookIntegration",
    "id": "hook-1",
    "name": "wandb-github-bridge",
    "urlEndpoint": "https://bridge.acme.test/webhooks/wandb",
}


def page(nodes, cursor, more=True):
    edges = [{"node": n} for n in nodes]
    info = {"endCursor": cursor, "hasNextPage": more}
    return 200, {"data": {"entity": {"integrations": {"edges": edges, "pageInfo": info}}}}


@pytest.mark.parametrize("command", [["list"], ["plan"]])
def test_a_listing_that_repeats_its_cursor_is_an_error(wandb, write_config, cli, command):
    wandb.answers["IntegrationsByEntity"] = page([WEBHOOK], "same-cursor")
    res = cli("wandb", *command, "--config", write_config())
    line = one_line(res)
    assert "listing does not end" in line and "list webhook integrations" in line
    assert res.out == ""  # no plan and no listing from the pages read so far


def test_a_listing_that_comes_back_to_an_earlier_cursor_is_an_error(wandb, write_config, cli):
    cursors = iter(["a", "b", "a"])
    wandb.answers["IntegrationsByEntity"] = lambda request: page([WEBHOOK], next(cursors))
    line = one_line(cli("wandb", "plan", "--config", write_config()))
    assert "listing does not end" in line


def test_an_endless_listing_stops_at_the_page_cap(wandb, write_config, cli):
    asked = []

    def endless(request):
        asked.append(request["variables"]["cursor"])
        return page([WEBHOOK], f"cursor-{len(asked)}")

    wandb.answers["IntegrationsByEntity"] = endless
    res = cli("wandb", "plan", "--config", write_config())
    line = one_line(res)
    assert "listing does not end" in line and "more than" in line
    assert len(asked) == MAX_PAGES and res.out == ""


@pytest.mark.parametrize(
    ("operation", "answer", "says"),
    [
        (
            "IntegrationsByEntity",
            page([{k: v for k, v in WEBHOOK.items() if k != "urlEndpoint"}], None, False),
            "no field 'urlEndpoint'",
        ),
        ("EntityInfo", (200, {"data": {"entity": "acme"}}), "another type"),
        ("EntityInfo", (200, {"data": {"entity": {"name": "acme"}}}), "no field 'id'"),
        ("IntegrationsByEntity", (200, {"data": {"entity": {"integrations": []}}}), "another type"),
        (
            "GetEntityAutomations",
            (
                200,
                {
                    "data": {
                        "entity": {
                            "triggers": {
                                "edges": [{"node": {"name": "x"}}],
                                "pageInfo": {"hasNextPage": False},
                            }
                        }
                    }
                },
            ),
            "no field 'id'",
        ),
        ("EntitySecrets", (200, {"data": {"entity": {"secrets": "BRIDGE"}}}), "another type"),
    ],
)
def test_an_answer_with_a_field_missing_or_mistyped_is_one_line(
    wandb, write_config, cli, operation, answer, says
):
    wandb.answers[operation] = answer
    line = one_line(cli("wandb", "plan", "--config", write_config()))
    assert says in line and "W&B's answer" in line and "wandb.base_url" in line
