"""Each registry change dispatched once per route, whether its webhook or catch-up saw it
first; the bridge's own write-backs; the catch-up lease; the lanes of write-backs. Run
against every backend (conftest's ``store`` fixture)."""

import hashlib
import threading

import pytest

from bridge.ids import new_id
from bridge.store import open_store
from bridge.store.models import (
    Attempt,
    CaughtUp,
    CollectionSeen,
    NewDelivery,
    NewEvent,
    PassResult,
    target_name,
)
from tests.bridge.test_store import schema_version

T0 = 1_700_000_000.0
CHANGE = "ADD_ARTIFACT_ALIAS|reg/model|QXJ0aWZhY3Q6MQ==|production"
ITEM = "QXJ0aWZhY3Q6MQ==|alias|production"


def event(eid, body=None, at=T0, origin="webhook"):
    body = body if body is not None else eid.encode()  # no two bodies alike: no dedupe
    digest = hashlib.sha256(body).hexdigest()
    return NewEvent(eid, "wandb", "/webhooks/wandb", at, body, digest, origin)


def delivery(did, route="deploy", kind="dispatch"):
    return NewDelivery(did, route, "acme/svc", "DEPLOY", '{"k": "v"}', kind=kind)


def caught_up(eid, did, route="deploy", change=CHANGE, echoes=(), at=T0):
    return CaughtUp(
        event(eid, at=at, origin="webhook"), (delivery(did, route),), route, change, echoes
    )


def queued(store):
    return sorted(c.id for c in store.claim("w", 100, 60, T0 + 1_000))


# -- a webhook and catch-up ----------------------------------------------------------------


def test_a_change_catch_up_dispatched_drops_that_routes_delivery_only(store):
    assert store.catchup.record(PassResult(caught_up=(caught_up("evt_c", "dlv_c"),)), T0) == [
        "evt_c"
    ]
    got = store.accept(
        event("evt_w", at=T0 + 5),
        [delivery("dlv_1"), delivery("dlv_2", "audit")],
        600,
        changes={"dlv_1": CHANGE, "dlv_2": CHANGE},
    )
    assert got.caught_up == {"deploy": "evt_c"} and got.kept == ("dlv_2",) and not got.echo
    assert queued(store) == ["dlv_2", "dlv_c"]
    # the webhook's event is kept, with the delivery of the other route only
    webhook = store.get_event("evt_w")
    assert webhook.origin == "webhook" and [d.id for d in webhook.deliveries] == ["dlv_2"]
    assert store.get_event("evt_c").origin == "catch_up"


def test_every_webhook_of_a_change_dispatches(store):
    """W&B sends a webhook once per change: a second one is the alias moved away and back."""
    for n in (1, 2):
        got = store.accept(
            event(f"evt_{n}", at=T0 + n), [delivery(f"dlv_{n}")], 600, changes={f"dlv_{n}": CHANGE}
        )
        assert got.kept == (f"dlv_{n}",) and got.caught_up == {}
    assert queued(store) == ["dlv_1", "dlv_2"]


def test_catch_up_records_nothing_a_webhook_dispatched(store):
    store.accept(event("evt_w"), [delivery("dlv_w")], 600, changes={"dlv_w": CHANGE})
    other_route = caught_up("evt_a", "dlv_a", route="audit")
    result = PassResult(caught_up=(caught_up("evt_c", "dlv_c"), other_route))
    assert store.catchup.record(result, T0 + 60) == ["evt_a"]
    assert queued(store) == ["dlv_a", "dlv_w"]
    assert [e.id for e in store.list_events(limit=10)] == ["evt_w", "evt_a"]
    # and a second pass finding it again records nothing either
    assert store.catchup.record(result, T0 + 120) == []


def test_a_change_seen_removed_is_new_when_it_comes_back(store):
    store.accept(event("evt_w"), [delivery("dlv_w")], 600, changes={"dlv_w": CHANGE})
    gone = PassResult(
        collections=(CollectionSeen("reg/model", removed=(ITEM,)),), removed_changes=(CHANGE,)
    )
    assert store.catchup.record(gone, T0 + 60) == []
    back = PassResult(
        collections=(CollectionSeen("reg/model", added=(ITEM,)),),
        caught_up=(caught_up("evt_c", "dlv_c", at=T0 + 120),),
    )
    assert store.catchup.record(back, T0 + 120) == ["evt_c"]
    assert queued(store) == ["dlv_c", "dlv_w"]
    # the alias is back: catch-up dispatched it, so its late webhook does not
    late = store.accept(event("evt_l", at=T0 + 130), [delivery("dlv_l")], 600, {"dlv_l": CHANGE})
    assert late.kept == () and late.caught_up == {"deploy": "evt_c"}


def test_a_change_recorded_after_the_pass_began_reading_is_not_dropped(store):
    # The alias came back, and its webhook was taken in, while the pass was reading W&B
    # (which still showed it gone): the pass must not forget that webhook's dispatch.
    store.accept(event("evt_w", at=T0 + 30), [delivery("dlv_w")], 600, {"dlv_w": CHANGE})
    during = PassResult(removed_changes=(CHANGE,), read_at=T0 + 10)
    assert store.catchup.record(during, T0 + 40) == []
    assert store.catchup.changes_in(["reg/model"]) == {CHANGE}
    again = store.catchup.record(PassResult(caught_up=(caught_up("evt_c", "dlv_c"),)), T0 + 50)
    assert again == [] and queued(store) == ["dlv_w"]
    # a pass that began reading after it was recorded does forget it
    after = PassResult(removed_changes=(CHANGE,), read_at=T0 + 60)
    assert store.catchup.record(after, T0 + 70) == []
    assert store.catchup.changes_in(["reg/model", "reg/other"]) == set()


def test_a_webhook_and_catch_up_at_once_dispatch_once(store_factory):
    """The webhook's accept and catch-up's record of the same change, in two stores (as
    in two processes) at once, many times over: one delivery each time."""
    stores = [store_factory() for _ in range(2)]
    stores[0].migrate()
    rounds, errors = 15, []

    def webhook(n, change, barrier):
        barrier.wait()
        try:
            did = f"dlv_w{n:02d}"
            stores[0].accept(event(f"evt_w{n:02d}"), [delivery(did)], 600, {did: change})
        except Exception as exc:
            errors.append(exc)

    def catch_up(n, change, barrier):
        barrier.wait()
        try:
            found = caught_up(f"evt_c{n:02d}", f"dlv_c{n:02d}", change=change)
            stores[1].catchup.record(PassResult(caught_up=(found,)), T0)
        except Exception as exc:
            errors.append(exc)

    for n in range(rounds):
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=side, args=(n, f"{CHANGE}-{n}", barrier))
            for side in (webhook, catch_up)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    claimed = queued(stores[0])
    assert sorted(int(c[-2:]) for c in claimed) == list(range(rounds))  # one per change


def test_catch_up_passes_at_once_record_a_change_once(store_factory):
    stores = [store_factory() for _ in range(3)]
    stores[0].migrate()
    barrier, recorded = threading.Barrier(3), []

    def go(i):
        barrier.wait()
        result = PassResult(caught_up=(caught_up(f"evt_{i}", f"dlv_{i}"),))
        recorded.extend(stores[i].catchup.record(result, T0))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(recorded) == 1
    assert queued(stores[0]) == [recorded[0].replace("evt_", "dlv_")]


# -- the bridge's own write-backs -------------------------------------------------------------


def test_the_webhook_of_a_write_back_queues_nothing(store):
    store.note_echoes([ITEM], T0 + 600)
    assert store.echoed([ITEM, "other|tag|x"], T0 + 599)
    assert not store.echoed(["other|tag|x"], T0) and not store.echoed([ITEM], T0 + 600)
    got = store.accept(
        event("evt_1"),
        [delivery("dlv_1"), delivery("dlv_2", "audit"), delivery("dlv_3", kind="notify")],
        600,
        changes={"dlv_1": CHANGE},
        echoes=[ITEM],
    )
    assert got.echo and got.kept == () and got.duplicate_of is None
    assert store.get_event("evt_1").deliveries == () and queued(store) == []
    # once the window ended, the same alias added by someone else dispatches
    later = store.accept(event("evt_2", at=T0 + 601), [delivery("dlv_4")], 600, echoes=[ITEM])
    assert not later.echo and later.kept == ("dlv_4",)


def test_an_alias_nobody_noted_queues_every_delivery_and_a_noted_one_none(store):
    # the echo check rides on the first delivery's insert: the others follow its answer
    store.note_echoes(["other|alias|x"], T0 + 600)
    two = [delivery("dlv_1"), delivery("dlv_2", "audit")]
    got = store.accept(event("evt_1"), two, 600, echoes=[ITEM, "another|tag|y"])
    assert not got.echo and got.kept == ("dlv_1", "dlv_2")
    assert queued(store) == ["dlv_1", "dlv_2"]
    # with no delivery to queue, an echo is still told apart (the reason nothing was)
    store.note_echoes([ITEM], T0 + 600)
    assert store.accept(event("evt_2"), [], 600, echoes=[ITEM]).echo
    assert not store.accept(event("evt_3"), [], 600, echoes=["another|tag|y"]).echo


def test_a_note_keeps_its_later_end(store):
    store.note_echoes([ITEM], T0 + 600)
    store.note_echoes([ITEM], T0 + 100)  # an earlier end does not shorten it
    assert store.echoed([ITEM], T0 + 300)
    assert store.prune_echoes(T0 + 599) == 0
    assert store.prune_echoes(T0 + 600) == 1
    assert not store.echoed([ITEM], T0)


def test_catch_up_skips_the_bridges_own_write_back(store):
    store.note_echoes([ITEM], T0 + 600)
    result = PassResult(caught_up=(caught_up("evt_c", "dlv_c", echoes=(ITEM,)),))
    assert store.catchup.record(result, T0 + 60) == []
    assert queued(store) == [] and store.list_events(limit=10) == []


# -- what catch-up remembers -----------------------------------------------------------------


def test_seen_items_and_baselines(store):
    assert store.catchup.baselined(["reg/*", "team/proj"]) == set()
    assert store.catchup.seen(["reg/a", "reg/b"]) == {"reg/a": set(), "reg/b": set()}
    first = PassResult(
        baselines=("reg/*",),
        collections=(
            CollectionSeen("reg/a", added=("a1|link|", "a1|alias|v1")),
            CollectionSeen("reg/b", added=("b1|link|",)),
        ),
    )
    assert store.catchup.record(first, T0) == []
    assert store.catchup.baselined(["reg/*", "team/proj"]) == {"reg/*"}
    second = PassResult(
        collections=(CollectionSeen("reg/a", added=("a1|tag|x",), removed=("a1|alias|v1",)),),
        forget=("reg/b",),
    )
    store.catchup.record(second, T0 + 60)
    assert store.catchup.seen(["reg/a", "reg/b"]) == {
        "reg/a": {"a1|link|", "a1|tag|x"},
        "reg/b": set(),
    }
    many = [f"c{i}" for i in range(1_200)]  # more than one statement's IN list
    assert store.catchup.seen(many) == {c: set() for c in many}


# -- one pass at a time ---------------------------------------------------------------------


def test_one_pass_at_a_time(store):
    lease = store.catchup
    assert lease.take("a", T0, 300, 60)
    assert not lease.take("b", T0 + 10, 300, 60)  # a holds it
    assert lease.release("a", T0 + 20, done=True)
    assert not lease.take("b", T0 + 79, 300, 60)  # within `every` of the last pass
    assert lease.take("b", T0 + 80, 300, 60)
    assert lease.release("b", T0 + 90, done=False)  # a pass that failed: no wait for the next
    assert lease.take("a", T0 + 91, 300, 60)
    assert lease.release("a", T0 + 92, done=True)
    assert lease.take("hand", T0 + 93, 300, 0)  # a pass by hand waits for no `every`


def test_a_pass_records_only_while_it_holds_the_lease(store):
    assert store.catchup.take("a", T0, 60, 0)
    assert store.catchup.extend("a", T0 + 50, 60)  # held until T0 + 110 now
    assert store.catchup.record(PassResult(baselines=("s",)), T0 + 100, owner="a") == []
    assert store.catchup.take("b", T0 + 200, 60, 0)  # a's lease ran out: b takes over
    assert not store.catchup.extend("a", T0 + 201, 60)
    result = PassResult(baselines=("t",), caught_up=(caught_up("evt_a", "dlv_a"),))
    assert store.catchup.record(result, T0 + 202, owner="a") is None
    assert store.catchup.baselined(["s", "t"]) == {"s"} and queued(store) == []
    assert store.catchup.record(result, T0 + 203, owner="b") == ["evt_a"]


def test_an_expired_lease_is_taken_over(store):
    lease = store.catchup
    assert lease.take("dead", T0, 300, 60)
    assert not lease.take("b", T0 + 299, 300, 60)
    assert lease.take("b", T0 + 300, 300, 60)
    assert not lease.release("dead", T0 + 301, done=True)  # too late: b holds it now
    assert not lease.take("c", T0 + 400, 300, 0)


def test_two_takes_at_once_one_wins(store_factory):
    stores = [store_factory() for _ in range(4)]
    stores[0].migrate()
    for round_ in range(5):
        barrier, won = threading.Barrier(4), []
        now = T0 + round_ * 1_000

        def go(i, now=now, won=won, barrier=barrier):
            barrier.wait()
            if stores[i].catchup.take(f"o{i}", now, 300, 60):
                won.append(i)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1
        assert stores[0].catchup.release(f"o{won[0]}", now + 1, done=True)


# -- lanes -------------------------------------------------------------------------------------


def test_a_write_back_goes_in_the_lane_of_notifications(store):
    store.accept(
        event("evt_1"),
        [delivery("dlv_d"), delivery("dlv_f", kind="workflow"), delivery("dlv_n", kind="notify")],
        600,
    )
    store.accept(event("evt_2"), [delivery("dlv_b", kind="wandb")], 600)
    github = store.claim("g", 10, 60, T0 + 1, kinds=("dispatch", "workflow"))
    assert sorted(c.id for c in github) == ["dlv_d", "dlv_f"]
    other = store.claim("n", 10, 60, T0 + 1, kinds=("notify", "wandb"))
    assert sorted(c.id for c in other) == ["dlv_b", "dlv_n"]
    assert {c.id: c.kind for c in other}["dlv_b"] == "wandb"
    with pytest.raises(ValueError):
        store.claim("x", 10, 60, T0 + 1, kinds=("dispatch", "wandb"))
    assert store.next_due(kinds=("dispatch", "workflow")) == T0 + 61


def test_a_write_back_is_neither_listed_as_nor_replayed_like_a_dispatch(store):
    store.accept(event("evt_1"), [delivery("dlv_b", kind="wandb")], 600)
    (c,) = store.claim("n", 10, 60, T0, kinds=("notify", "wandb"))
    ok = Attempt(1, T0, T0 + 1, 200, "delivered", "delivered", None, "n")
    assert store.finish(c, "n", ok, "delivered", T0 + 1)
    assert store.list_events("delivered", 10) == []
    assert store.replay("evt_1", T0 + 2).queued == []
    assert target_name("wandb", "ent/reg/model:v3", None, None, None) == "wandb:ent/reg/model:v3"


# -- retention and migration --------------------------------------------------------------------


def test_pruning_an_event_forgets_its_changes(store):
    eid = new_id("evt", T0)  # pruning reads the time in the id
    store.accept(event(eid), [delivery("dlv_1")], 600, changes={"dlv_1": CHANGE})
    (c,) = store.claim("w", 10, 60, T0)
    store.finish(c, "w", Attempt(1, T0, T0 + 1, 204, "delivered", "", None, "w"), "delivered", T0)
    assert store.catchup.record(PassResult(caught_up=(caught_up("evt_c", "dlv_x"),)), T0) == []
    assert store.prune(T0 + 10_000) == 1
    # the webhook's row went with its event: catch-up may record the change now
    result = PassResult(caught_up=(caught_up("evt_c", "dlv_c"),))
    assert store.catchup.record(result, T0 + 10_001) == ["evt_c"]


def test_a_store_at_version_8_migrates_with_its_rows(store_url):
    store = open_store(store_url)
    try:
        latest = store.migrations
        store.migrations = latest[:8]
        store.migrate()
        digest = hashlib.sha256(b"old").hexdigest()
        with store._transaction() as tx:
            tx.run(
                "INSERT INTO events (id, source, endpoint, received_at, body_sha256, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                ("evt_old", "wandb", "/webhooks/wandb", T0, digest, b"old"),
            )
            for did, kind in (("dlv_d", "dispatch"), ("dlv_n", "notify")):
                tx.run(
                    "INSERT INTO deliveries (id, event_id, route, repository, event_type, "
                    "client_payload, state, due_at, attempts, round_attempts, "
                    "round_started_at, created_at, updated_at, kind, notifier) "
                    "VALUES (?, 'evt_old', 'r', 'acme/svc', 'DEPLOY', '{}', ?, ?, 0, 0, ?, ?, "
                    "?, ?, 'slack')",
                    (did, "queued", T0, T0, T0, T0, kind),
                )
        store.migrations = latest
        store.migrate()
        assert schema_version(store_url) == len(latest) >= 9
        old = store.get_event("evt_old")
        assert old.origin == "webhook" and old.body == b"old"
        assert [c.id for c in store.claim("g", 10, 60, T0, kinds=("dispatch", "workflow"))] == [
            "dlv_d"
        ]
        assert [c.id for c in store.claim("n", 10, 60, T0, kinds=("notify", "wandb"))] == ["dlv_n"]
    finally:
        store.close()
