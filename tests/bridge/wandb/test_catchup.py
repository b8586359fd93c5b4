"""Catch-up: its pure core (filters, items, diff, events), and passes against the W&B
stand-in with a real SQLite store."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.config.load import load_config, parse_config
from bridge.config.model import Config
from bridge.delivery.build import build_worker
from bridge.routing.changes import change_key, item, webhook_change
from bridge.routing.routes import webhook_fields
from bridge.store import SqlStore, open_store
from bridge.wandb.catchup import Collection, Reading, Version, plan_pass, version_of
from bridge.wandb.catchup_run import LEASE, CatchUpRunner, PassReport
from bridge.wandb.event_filter import UnknownFilter, filter_matches
from bridge.wandb.model import Automation, Integration, Scope, ScopeRef
from bridge.wandb.wanted import MARKER, wanted
from bridge.wandb.watchers import Watcher, watchers
from tests.bridge.wandb.conftest import BRIDGE_URL, ENV, config_dict
from tests.bridge.wandb.standin import StandIn

HOOK = Integration("I1", "wandb-github-bridge", f"{BRIDGE_URL}/webhooks/wandb")
REGISTRY = "wandb-registry-model"
PRODUCTION = {"$or": [{"$and": [{"alias": {"$eq": "production"}}]}]}


# -- W&B's filters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fields", "expected"),
    [
        (None, {}, True),
        ({"$or": [{"$and": []}]}, {"alias": "x"}, True),  # the SDK's "no filter"
        (PRODUCTION, {"alias": "production"}, True),
        (PRODUCTION, {"alias": "staging"}, False),
        (PRODUCTION, {"tag": "production"}, False),  # the event has no alias
        ({"alias": {"$in": ["a", "b"]}}, {"alias": "b"}, True),
        ({"alias": {"$nin": ["a", "b"]}}, {"alias": "b"}, False),
        ({"alias": {"$ne": "a"}}, {"alias": "b"}, True),
        ({"alias": {"$regex": "^prod-.*$"}}, {"alias": "prod-eu"}, True),
        ({"alias": {"$regex": "prod"}}, {"alias": "x-prod-y"}, True),  # unanchored
        ({"alias": {"$regex": "^prod$"}}, {"alias": "x-prod"}, False),
        ({"$or": [{"tag": {"$eq": "a"}}, {"alias": {"$eq": "b"}}]}, {"alias": "b"}, True),
        ({"$and": [{"alias": {"$eq": "b"}}, {"tag": {"$eq": "a"}}]}, {"alias": "b"}, False),
        ({"$nor": [{"alias": {"$eq": "b"}}]}, {"alias": "b"}, False),
        ({"alias": "b"}, {"alias": "b"}, True),
    ],
)
def test_filter_matches_as_w_and_b_does(value: Any, fields: dict[str, str], expected: bool) -> None:
    assert filter_matches(value, fields) is expected


@pytest.mark.parametrize(
    "value", [{"alias": {"$gt": "a"}}, {"$where": "1"}, {"alias": {"$regex": "("}}, "alias"]
)
def test_a_filter_it_cannot_read_is_said_so(value: Any) -> None:
    with pytest.raises(UnknownFilter):
        filter_matches(value, {"alias": "a"})


# -- versions and automations ----------------------------------------------------------------


def test_a_version_keeps_only_this_collections_aliases() -> None:
    node = {
        "id": "QXJ0:1",
        "version": "v4",
        "versionIndex": 9,  # the source artifact's index; the collection's is the edge's
        "metadata": '{"accuracy": 0.9}',
        "tags": [{"name": "reviewed"}],
        "aliases": [
            {"alias": "production", "artifactCollection": {"name": "churn"}},
            {"alias": "best", "artifactCollection": {"name": "churn-runs"}},
        ],
    }
    assert version_of(node, "churn") == Version(
        "QXJ0:1", "v4", ("production",), ("reviewed",), {"accuracy": 0.9}
    )


def make_config(tmp_path: Path, routes: list[dict[str, Any]] | None = None) -> Config:
    return parse_config(config_dict("http://127.0.0.1:9", tmp_path, routes), ENV)


def automation(
    name: str,
    event: str = "ADD_ARTIFACT_ALIAS",
    scope: Scope | None = None,
    route: str | None = "deploy-production",
    **kw: Any,
) -> Automation:
    payload = {
        "bridge_route": route,
        "event_type": "${event_type}",
        "event_author": "${event_author}",
        "project_name": "${project_name}",
        "artifact_collection_name": "${artifact_collection_name}",
        "artifact_version": "${artifact_version}",
        "artifact_version_string": "${artifact_version_string}",
        "alias": "${alias}",
        "tag": "${tag}",
    }
    if route is None:
        del payload["bridge_route"]
    fields: dict[str, Any] = {
        "id": f"T-{name}",
        "name": name,
        "description": f"{MARKER} for route {route!r}",
        "enabled": True,
        "scope": scope or Scope("ARTIFACT_COLLECTION", "C-churn", "churn"),
        "event": event,
        "filter": PRODUCTION,
        "action": "GenericWebhookTriggeredAction",
        "integration": HOOK,
        "payload": payload,
    }
    return Automation(**{**fields, **kw})


def test_watchers_are_the_managed_enabled_automations_of_known_routes(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert config.wandb is not None
    wants, _ = wanted(config, config.wandb, {"AUTOMATION_SCOPE_ENTITY"})
    elsewhere = Integration("I2", "wandb-github-bridge", "https://other.example/webhooks/wandb")
    found, notes = watchers(
        [
            automation("wandb-github-bridge: deploy-production"),
            automation("by hand", description="made in the UI"),
            automation("other bridge", integration=elsewhere),
            automation("wandb-github-bridge: deploy-production (off)", enabled=False),
            automation("created", event="CREATE_ARTIFACT"),
            automation("gone", route="no-such-route"),
            automation("evaluate", "LINK_MODEL", Scope("PROJECT", "P1", REGISTRY), None),
        ],
        config,
        config.wandb,
        wants,
        "acme-org",
    )
    churn_scope = ScopeRef("ARTIFACT_COLLECTION", REGISTRY, "churn")
    assert [(w.automation.name, w.route, w.entity, w.scope) for w in found] == [
        # a registry lives in the organization's entity
        ("wandb-github-bridge: deploy-production", "deploy-production", "acme-org", churn_scope),
        # disabled: read (it dispatches nothing), so turning it on again finds nothing "new"
        (
            "wandb-github-bridge: deploy-production (off)",
            "deploy-production",
            "acme-org",
            churn_scope,
        ),
    ]
    assert len(notes) == 2  # "gone" names no route; "evaluate" names none at all
    assert "'gone'" in notes[0] and "wandb apply" in notes[0]
    # an automation made before they named their route: its webhook's change is not
    # recorded at intake, so catch-up standing in for it could dispatch a change twice
    assert "'evaluate'" in notes[1] and "bridge_route" in notes[1]


# -- a pass, pure ----------------------------------------------------------------------------


def churn(*versions: Version) -> Collection:
    return Collection("C-churn", "acme-org", REGISTRY, "churn", versions)


V1 = Version("A1", "v1", ("latest",), (), {"accuracy": 0.93})
V1_PROD = Version("A1", "v1", ("latest", "production"), (), {"accuracy": 0.93})


def one_pass(
    config: Config,
    ws: list[Watcher],
    collection: Collection,
    seen: set[str],
    baselined: bool = True,
    recorded: tuple[str, ...] = (),
) -> tuple[Any, list[str]]:
    keys = {w.baseline for w in ws}
    reading = Reading(
        {collection.id: collection}, {k: (collection.id,) for k in keys}, frozenset(keys)
    )
    ids = iter(range(1000))
    return plan_pass(
        config,
        "wandb",
        ws,
        reading,
        {collection.id: seen},
        keys if baselined else set(),
        1000.0,
        lambda prefix, now: f"{prefix}_{next(ids)}",
        recorded,
        900.0,
    )


def deploy_watcher(name: str = "wandb-github-bridge: deploy-production", **kw: Any) -> Watcher:
    return Watcher(
        automation(name, **kw),
        "deploy-production",
        "acme-org",
        ScopeRef("ARTIFACT_COLLECTION", REGISTRY, "churn"),
    )


def test_the_first_reading_of_a_scope_records_and_dispatches_nothing(tmp_path: Path) -> None:
    result, notes = one_pass(
        make_config(tmp_path), [deploy_watcher()], churn(V1_PROD), set(), False
    )
    assert result.caught_up == ()
    assert result.baselines == (deploy_watcher().baseline,)
    (seen,) = result.collections
    assert set(seen.added) == {
        item("A1", "link"),
        item("A1", "alias", "latest"),
        item("A1", "alias", "production"),
    }
    assert notes == []


def test_an_alias_added_is_the_change_its_webhook_names(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    before = {item("A1", "link"), item("A1", "alias", "latest")}
    result, _ = one_pass(config, [deploy_watcher()], churn(V1_PROD), before)
    assert result.baselines == ()  # already baselined
    assert [c.added for c in result.collections] == [(item("A1", "alias", "production"),)]
    (found,) = result.caught_up
    body = json.loads(found.event.body)
    assert body["bridge_route"] == "deploy-production"
    assert body["artifact_version_string"] == f"acme-org/{REGISTRY}/churn:production"
    assert body["event_author"] == ""  # not in the registry state
    key = change_key("ADD_ARTIFACT_ALIAS", REGISTRY, "churn", "A1", "production")
    assert found.change == key == webhook_change(webhook_fields(body, "evt_x"))
    assert found.event.origin == "catch_up" and found.event.endpoint == "/webhooks/wandb"
    assert found.echoes == (item("A1", "alias", "production"),)
    (d,) = found.deliveries
    assert (d.route, d.repository, d.event_type) == (
        "deploy-production",
        "acme/churn-svc",
        "DEPLOY_MODEL",
    )
    assert json.loads(d.client_payload) == {
        "model": f"acme-org/{REGISTRY}/churn:production",
        "by": "",
        "bridge_event_id": found.event.id,
    }


def test_an_alias_removed_frees_its_change_and_filters_still_apply(tmp_path: Path) -> None:
    any_alias = [
        {
            "name": "deploy-production",
            "when": {"event_type": "ADD_ARTIFACT_ALIAS"},
            "dispatch": {"repository": "acme/churn-svc", "event_type": "DEPLOY"},
        }
    ]
    config = make_config(tmp_path, any_alias)  # only the automation's filter says production
    had = {item("A1", "link"), item("A1", "alias", "production"), item("A1", "alias", "latest")}
    staging = Version("A1", "v1", ("latest", "staging"), (), {})
    result, _ = one_pass(config, [deploy_watcher()], churn(staging), had)
    assert result.caught_up == ()  # staging does not pass the automation's filter
    assert result.removed_changes == (
        change_key("ADD_ARTIFACT_ALIAS", REGISTRY, "churn", "A1", "production"),
    )


def test_a_change_no_pass_saw_is_freed_once_its_alias_is_gone(tmp_path: Path) -> None:
    # A webhook announced production on v1 and it left again before any pass saw it:
    # the diff of seen items knows nothing, the recorded change does.
    config = make_config(tmp_path)
    key = change_key("ADD_ARTIFACT_ALIAS", REGISTRY, "churn", "A1", "production")
    other = change_key("ADD_ARTIFACT_ALIAS", REGISTRY, "fraud", "A1", "production")
    still = change_key("LINK_MODEL", REGISTRY, "churn", "A1", "")
    had = {item("A1", "link"), item("A1", "alias", "latest")}
    bare = Version("A1", "v1", ("latest",), (), {})
    result, _ = one_pass(config, [deploy_watcher()], churn(bare), had, recorded=(key, other, still))
    assert result.collections == ()  # nothing changed in what was seen
    assert result.removed_changes == (key,)  # another collection's, and the link, stay
    assert result.read_at == 900.0


def test_a_disabled_automation_dispatches_nothing_but_keeps_seen(tmp_path: Path) -> None:
    off = deploy_watcher(enabled=False)
    result, _ = one_pass(make_config(tmp_path), [off], churn(V1_PROD), {item("A1", "link")})
    assert result.caught_up == ()
    assert [c.added for c in result.collections] == [
        (item("A1", "alias", "latest"), item("A1", "alias", "production"))
    ]


def test_one_change_is_one_event_per_route(tmp_path: Path) -> None:
    twice = [deploy_watcher(), deploy_watcher("copy", id="T-copy")]
    result, _ = one_pass(make_config(tmp_path), twice, churn(V1_PROD), {item("A1", "link")})
    assert [f.route for f in result.caught_up] == ["deploy-production"]


def test_a_route_on_event_author_never_takes_a_caught_up_change(tmp_path: Path) -> None:
    routes = [
        {
            "name": "deploy-production",
            "when": {"event_type": "ADD_ARTIFACT_ALIAS", "event_author": "alice"},
            "dispatch": {"repository": "acme/churn-svc", "event_type": "DEPLOY"},
        }
    ]
    result, notes = one_pass(
        make_config(tmp_path, routes), [deploy_watcher()], churn(V1_PROD), {item("A1", "link")}
    )
    assert result.caught_up == () and notes == []


def test_a_body_the_route_would_refuse_is_a_note_not_an_event(tmp_path: Path) -> None:
    routes = [
        {
            "name": "deploy-production",
            "when": {"event_type": "ADD_ARTIFACT_ALIAS"},
            "dispatch": {"repository": "acme/churn-svc", "event_type": "${alias}"},
        }
    ]
    long = "x" * 120  # an alias W&B allows, an event type GitHub does not (100 at most)
    bad = Version("A1", "v1", ("production", long), (), {})
    watcher = deploy_watcher(filter=None)
    result, notes = one_pass(make_config(tmp_path, routes), [watcher], churn(bad), set())
    assert [json.loads(f.event.body)["alias"] for f in result.caught_up] == ["production"]
    assert len(notes) == 1 and long in notes[0] and "not dispatched" in notes[0]


# -- passes against the stand-in -------------------------------------------------------------


@pytest.fixture
def setup(
    wandb: StandIn, write_config: Any, cli: Any, tmp_path: Path
) -> tuple[Config, SqlStore, str]:
    """The routes' automations made in the stand-in; a real SQLite store."""
    path = write_config(catch_up={"every": "5m", "max_requests_per_hour": 100})
    assert cli("wandb", "apply", "--config", path).code == 0
    config = load_config(path)
    store = open_store(config.store.value)
    store.migrate()
    yield config, store, path
    store.close()


def runner(config: Config, store: SqlStore, owner: str = "test") -> CatchUpRunner:
    assert config.wandb is not None and config.wandb.key is not None
    return CatchUpRunner(config, store, config.wandb.key, owner=owner)


def run(config: Config, store: SqlStore, dry_run: bool = False) -> PassReport:
    report = runner(config, store).run_pass(every=0, dry_run=dry_run)
    assert report is not None
    return report


def registry(wandb: StandIn) -> Any:
    return wandb.state.project("acme-org", REGISTRY)


def test_changes_whose_webhooks_were_lost_are_dispatched_once(wandb: StandIn, setup: Any) -> None:
    config, store, _ = setup
    first = run(config, store)
    assert first.result.caught_up == () and first.recorded == () and first.missed == ()
    assert len(first.result.baselines) == 3

    # The bridge is away: the webhooks W&B sends for these changes go nowhere.
    wandb.add_alias(registry(wandb), "churn", 0, "production")
    wandb.link(registry(wandb), "churn", {"accuracy": 0.95})
    wandb.flush()
    sent = {json.loads(h.body)["bridge_route"]: h for h in wandb.state.webhooks_sent}
    assert {h.outcome for h in sent.values()} == {"failed"}

    dry = run(config, store, dry_run=True)
    assert len(dry.result.caught_up) == 2 and dry.recorded == ()
    assert store.list_events() == []

    second = run(config, store)
    assert len(second.recorded) == 2
    for found in second.result.caught_up:
        event = store.get_event(found.event.id)
        assert event.origin == "catch_up"
        assert [d.route for d in event.deliveries] == [found.route]
        # What W&B would have sent, but for who made the change.
        webhook = json.loads(sent[found.route].body)
        assert json.loads(event.body) == {**webhook, "event_author": ""}
    third = run(config, store)
    assert third.result.caught_up == () and third.recorded == ()
    assert len(store.list_events()) == 2


def test_every_page_is_read(wandb: StandIn, setup: Any) -> None:
    config, store, _ = setup
    wandb.state.page_cap = 1
    run(config, store)
    for n in range(3):
        wandb.link(registry(wandb), "churn", {}, aliases=[f"rc-{n}"])
    report = run(config, store)
    (churn_read,) = [c for c in report.collections if c.name == "churn"]
    assert [v.version for v in churn_read.versions] == ["v0", "v1", "v2", "v3", "v4"]
    added = {c.collection: c.added for c in report.result.collections}
    assert len(added[churn_read.id]) == 3 * 2  # each new version: linked, and its alias
    assert len(report.recorded) == 3  # the evaluate route, once per link


def test_a_spent_budget_leaves_what_was_not_read_untouched(
    wandb: StandIn, setup: Any, tmp_path: Path
) -> None:
    _, store, path = setup
    raw = yaml.safe_load(Path(path).read_text())
    raw["wandb"]["catch_up"]["max_requests_per_hour"] = 6  # not enough for the versions
    Path(path).write_text(yaml.safe_dump(raw))
    config = load_config(path)
    report = run(config, store)
    assert report.requests == 6
    assert any("max_requests_per_hour" in line for line in report.missed)
    assert report.collections == () and report.result.baselines == ()
    assert report.result.collections == ()
    # The budget is the store's: another process of the bridge has none left either.
    again = runner(config, store, owner="another").run_pass(every=0)
    assert again is not None and again.requests == 0 and again.missed


def test_a_rate_limit_stops_the_pass_and_nothing_is_recorded(wandb: StandIn, setup: Any) -> None:
    config, store, _ = setup
    wandb.answers["ProjectArtifacts"] = (429, {"errors": [{"message": "rate limit exceeded"}]})
    report = run(config, store)
    assert wandb.state.operations.count("ProjectArtifacts") == 1  # no read after the 429
    assert report.collections == () and report.result.baselines == ()
    assert any("429" in line for line in report.missed)
    ids = sorted(c.id for p in wandb.state.projects.values() for c in p.collections.values())
    assert store.catchup.seen(ids) == {i: set() for i in ids}


def test_a_collection_w_and_b_refuses_is_left_out_and_the_rest_read(
    wandb: StandIn, setup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, store, _ = setup
    # W&B refuses to list the fraud collection's versions; it answers the rest.
    real = wandb._answer

    def refusing(auth: str | None, body: bytes) -> tuple[int, Any]:
        request = json.loads(body)
        if request.get("operationName") == "ProjectArtifacts" and (
            request["variables"]["collection"] == "fraud"
        ):
            return 200, {"errors": [{"message": "permission denied"}], "data": {"project": None}}
        return real(auth, body)

    monkeypatch.setattr(wandb, "_answer", refusing)
    report = run(config, store)
    assert sorted(c.name for c in report.collections) == ["churn", "churn-model"]
    assert any("fraud" in line and "permission denied" in line for line in report.missed)
    # The registry's project scope (fraud is in it) is not baselined; the others are.
    assert len(report.result.baselines) == 2


def test_one_pass_at_a_time(setup: Any) -> None:
    config, store, _ = setup
    assert store.catchup.take("elsewhere", 0.0, 1e12, 0)
    assert runner(config, store).run_pass(every=0) is None


def test_a_pass_keeps_its_lease_while_it_reads_and_stops_once_it_lost_it(
    wandb: StandIn, setup: Any
) -> None:
    config, store, _ = setup
    run(config, store)  # the baseline
    wandb.add_alias(registry(wandb), "churn", 0, "production")
    wandb.flush()
    now = [time.time()]
    start = now[0]
    lost = [False]
    real = wandb._answer

    def slow(auth: str | None, body: bytes) -> tuple[int, Any]:
        now[0] += 20.0  # each request takes long: the lease must be renewed meanwhile
        if lost[0] and json.loads(body).get("operationName") == "ProjectArtifacts":
            # the pass was frozen past its lease, and another process took over
            now[0] += 2 * LEASE
            assert store.catchup.take("other", now[0], LEASE, 0)
            lost[0] = False
        return real(auth, body)

    wandb._answer = slow  # type: ignore[method-assign]
    steady = CatchUpRunner(config, store, config.wandb.key, owner="steady", clock=lambda: now[0])
    report = steady.run_pass(every=0)
    assert report is not None and report.missed == () and len(report.recorded) == 1
    assert now[0] - start > 2 * LEASE  # it read for longer than one lease

    wandb.add_alias(registry(wandb), "churn", 1, "production")
    wandb.flush()
    lost[0] = True
    frozen = CatchUpRunner(config, store, config.wandb.key, owner="frozen", clock=lambda: now[0])
    report = frozen.run_pass(every=0)
    assert report is not None
    assert any("another pass took over" in line for line in report.missed)
    assert report.recorded == ()  # the pass that took over does the work
    assert [e.origin for e in store.list_events()] == ["catch_up"]  # the steady pass's only


def test_passes_start_every_apart_however_long_one_takes(wandb: StandIn, setup: Any) -> None:
    config, store, _ = setup
    now = [time.time()]
    real = wandb._answer

    def slow(auth: str | None, body: bytes) -> tuple[int, Any]:
        now[0] += 2.0  # a pass of ten requests takes 20 s
        return real(auth, body)

    wandb._answer = slow  # type: ignore[method-assign]
    every = 300.0
    started = now[0]
    timed = CatchUpRunner(config, store, config.wandb.key, owner="timed", clock=lambda: now[0])
    assert timed.run_pass(every=every) is not None
    assert now[0] - started >= 20.0
    # the next pass may start `every` after this one started, not after it ended
    assert not store.catchup.take("next", started + every - 1, LEASE, every)
    assert store.catchup.take("next", started + every, LEASE, every)


def test_the_wait_for_the_next_pass_honours_retry_after_within_bounds() -> None:
    from bridge.wandb.catchup_run import MAX_WAIT, next_wait

    assert next_wait(300.0, 1000.0, 1006.0, None) == 294.0  # start to start
    assert next_wait(300.0, 1000.0, 1400.0, None) == 1.0  # a pass longer than every
    assert next_wait(300.0, 1000.0, 1006.0, 1006.0 + 900) == 900.0  # W&B asks for more
    # A Retry-After of years, or of more digits than a clock holds, must not stop
    # catch-up for good (an Event.wait that long raises OverflowError in the loop).
    for far in (1006.0 + 10**9, float("9" * 400), float("inf")):
        assert next_wait(300.0, 1000.0, 1006.0, far) == MAX_WAIT
    assert next_wait(7200.0, 1000.0, 1006.0, float("inf")) == 7200.0  # every is longer


def test_the_delivery_worker_runs_a_pass_at_start(wandb: StandIn, setup: Any) -> None:
    config, store, _ = setup
    worker = build_worker(config, store)
    assert worker.catch_up is not None
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    churn_id = registry(wandb).collections["churn"].id
    try:
        deadline = time.monotonic() + 30
        while not store.catchup.seen([churn_id])[churn_id] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert (
        item(wandb_artifact(wandb, "churn", 1), "alias", "production")
        in (store.catchup.seen([churn_id])[churn_id])
    )


def wandb_artifact(wandb: StandIn, collection: str, index: int) -> str:
    return str(registry(wandb).collections[collection].versions[index]["artifact"])
