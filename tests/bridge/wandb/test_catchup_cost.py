"""What a catch-up pass costs in W&B requests: exactly what docs/wandb.md's table says
("What it costs"), counted at the W&B stand-in, over a registry of 100 collections
(a few with more than one page of versions), and a budget that runs out between the
pages of a collection."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.config.load import load_config
from bridge.store import open_store
from tests.bridge.wandb.conftest import ACCESS_TOKEN, API_KEY, WEBHOOK_SECRET
from tests.bridge.wandb.standin import StandIn
from tests.bridge.wandb.standin_state import State, Trigger, Webhook

REGISTRY = "wandb-registry-model"
PER_PAGE = 50  # W&B's page, as docs/wandb.md counts
COLLECTIONS = [f"m-{n:03}" for n in range(100)]
# Most collections hold a few versions; these hold one page exactly, one more, and three.
VERSIONS = {"m-010": PER_PAGE, "m-020": PER_PAGE + 1, "m-050": 2 * PER_PAGE + 20}
HAND_MADE = 55  # automations made by hand in the organization: two pages with ours

LINKS = {  # a PROJECT scope: the whole registry
    "name": "evaluate",
    "when": {"event_type": "LINK_ARTIFACT", "project_name": REGISTRY},
    "dispatch": {"repository": "acme/churn-svc", "event_type": "EVALUATE_MODEL"},
}
WATCHED = ["m-001", "m-010", "m-020", "m-050"]
DEPLOYS = {  # one ARTIFACT_COLLECTION scope per collection named
    "name": "deploy-production",
    "when": {
        "event_type": "ADD_ARTIFACT_ALIAS",
        "alias": "production",
        "project_name": REGISTRY,
        "artifact_collection_name": WATCHED,
    },
    "dispatch": {"repository": "acme/churn-svc", "event_type": "DEPLOY_MODEL"},
}


def seed() -> State:
    """acme in the acme-org organization, whose registry holds the 100 collections."""
    state = State()
    state.add_entity("acme-org")
    state.add_entity("acme", org="acme-org")
    registry = state.add_project(
        "acme-org", REGISTRY, {name: "ArtifactPortfolio" for name in COLLECTIONS}
    )
    for name in COLLECTIONS:
        for n in range(VERSIONS.get(name, 3)):
            state.add_version(registry, name, ["latest"] if n == 0 else [], {"n": n})
    state.secrets["acme"].update(
        {"BRIDGE_WEBHOOK_SECRET": WEBHOOK_SECRET, "BRIDGE_ACCESS_TOKEN": ACCESS_TOKEN}
    )
    hook = Webhook(state.next_id("Integration"), "acme-org", "alerts", "https://alerts.test/x",
                   None, None)  # fmt: skip
    state.webhooks[hook.id] = hook
    for n in range(HAND_MADE):
        trigger = Trigger(
            id=state.next_id("Trigger"),
            name=f"by hand {n}",
            description="made in W&B's UI",
            enabled=True,
            scope_type="PROJECT",
            scope_id=registry.id,
            event="ADD_ARTIFACT_ALIAS",
            filter='{"filter": "{}"}',
            action="GENERIC_WEBHOOK",
            integration_id=hook.id,
            payload="{}",
            created="2025-01-01T00:00:00Z",
        )
        state.triggers[trigger.id] = trigger
    return state


@pytest.fixture
def wandb(env: None) -> Iterator[StandIn]:
    with StandIn(API_KEY, state=seed()) as standin:
        yield standin


def pages(n: int) -> int:
    """Requests to list ``n`` items: an empty listing is one request too."""
    return max(1, math.ceil(n / PER_PAGE))


def documented_cost(state: State, scopes: list[tuple[str, str]]) -> int:
    """docs/wandb.md's table for one pass, from what the stand-in holds; ``scopes`` are
    the (type, name) of the automations the pass reads for. A collection watched by
    several scopes is read once."""
    registry = state.project("acme-org", REGISTRY)
    assert registry is not None
    owned = [state.owner(t) for t in state.triggers.values()]
    cost = 1 + pages(owned.count("acme")) + 1 + pages(owned.count("acme-org"))
    read: set[str] = set()
    for kind, name in scopes:
        if kind == "PROJECT":
            cost += pages(len(registry.collections))
            read |= set(registry.collections)
        else:
            read.add(name)
    return cost + sum(pages(len(registry.collections[c].versions)) for c in read)


def applied(write_config: Any, cli: Any, routes: list[dict[str, Any]], **keys: Any) -> str:
    path = write_config(routes, catch_up={"every": "5m", **keys})
    assert cli("wandb", "apply", "--config", path).code == 0
    return str(path)


def catch_up(wandb: StandIn, cli: Any, path: str) -> tuple[int, str]:
    """One pass by hand; the requests the stand-in received during it, and its output."""
    before = len(wandb.state.operations)
    res = cli("wandb", "catch-up", "--config", path)
    assert API_KEY not in res.out + res.err
    return len(wandb.state.operations) - before, res.out + res.err


def said_requests(out: str) -> int:
    (n,) = re.findall(r"(\d+) W&B request\(s\)", out)
    return int(n)


def scopes_of(wandb: StandIn) -> list[tuple[str, str]]:
    """The managed automations' scopes, as W&B holds them."""
    found = []
    for t in wandb.state.triggers.values():
        if t.description and t.description.startswith("Managed by wandb-github-bridge"):
            where = wandb.state.scope_of(t.scope_type, t.scope_id)
            assert where is not None
            found.append((t.scope_type, where[2]))
    return sorted(found)


@pytest.mark.parametrize(
    ("routes", "expected_scopes"),
    [
        ([LINKS], [("PROJECT", REGISTRY)]),
        ([DEPLOYS], [("ARTIFACT_COLLECTION", c) for c in WATCHED]),
        ([LINKS, DEPLOYS], [("ARTIFACT_COLLECTION", c) for c in WATCHED] + [("PROJECT", REGISTRY)]),
    ],
    ids=["registry", "collections", "both"],
)
def test_a_pass_costs_what_the_docs_say(
    wandb: StandIn,
    write_config: Any,
    cli: Any,
    routes: list[dict[str, Any]],
    expected_scopes: list[tuple[str, str]],
) -> None:
    path = applied(write_config, cli, routes)
    assert scopes_of(wandb) == expected_scopes
    cost = documented_cost(wandb.state, expected_scopes)
    # The baseline pass, and a later one that finds a change, cost the same.
    sent, out = catch_up(wandb, cli, path)
    assert (sent, said_requests(out)) == (cost, cost), out
    registry = wandb.state.project("acme-org", REGISTRY)
    assert registry is not None
    wandb.add_alias(registry, "m-050", 7, "production")
    wandb.link(registry, "m-099", {"n": 3})
    sent, out = catch_up(wandb, cli, path)
    assert (sent, said_requests(out)) == (cost, cost), out
    assert "dispatched as event" in out


def test_a_budget_spent_between_pages_leaves_that_collection_unread(
    wandb: StandIn, write_config: Any, cli: Any
) -> None:
    # Enough for everything before m-050 and two of its three pages.
    scopes = [("PROJECT", REGISTRY)]
    before = [c for c in COLLECTIONS if c < "m-050"]
    budget = documented_cost(wandb.state, scopes) - sum(
        pages(VERSIONS.get(c, 3)) for c in COLLECTIONS if c >= "m-050"
    )
    budget += 2
    path = applied(write_config, cli, [LINKS], max_requests_per_hour=budget)
    sent, out = catch_up(wandb, cli, path)
    assert sent == budget == said_requests(out), out
    assert "max_requests_per_hour" in out
    assert f"{len(before)} collection(s) read whole" in out
    assert "acme-org/wandb-registry-model/m-050:" not in out
    assert "first whole reading" not in out  # the registry's scope is not baselined

    registry = wandb.state.project("acme-org", REGISTRY)
    assert registry is not None
    ids = {name: registry.collections[name].id for name in ("m-049", "m-050", "m-051")}
    store = open_store(load_config(path).store.value)
    try:
        seen = store.catchup.seen(sorted(ids.values()))
    finally:
        store.close()
    assert len(seen[ids["m-049"]]) == 3 + 1  # read whole: its versions and its alias
    assert seen[ids["m-050"]] == seen[ids["m-051"]] == set()

    # The budget is spent for this hour: the next pass sends nothing at all.
    again, out = catch_up(wandb, cli, path)
    assert again == 0 and "max_requests_per_hour" in out
