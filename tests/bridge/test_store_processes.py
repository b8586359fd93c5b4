"""The store across real processes (spawned, as gunicorn workers and replicas are separate
programs): dedupe races, shared pauses, wake-ups, and a writer killed with SIGKILL."""

import multiprocessing
import os
import signal
import time

from bridge.store import open_store
from tests.bridge.test_store import SVC_A, SVC_B, T0, delivery, event

SPAWN = multiprocessing.get_context("spawn")
RACE_BODY = b'{"event_type": "DEPLOY", "client_payload": {"model": "m:v3"}}'


def _start(target, *args):
    proc = SPAWN.Process(target=target, args=args, daemon=True)
    proc.start()
    return proc


def _joined(procs, timeout=60.0):
    for proc in procs:
        proc.join(timeout)
        assert proc.exitcode == 0, f"{proc.name} exited {proc.exitcode}"


# -- in the child processes -------------------------------------------------------------------


def _accept_at_once(url, barrier, eid, endpoint, results):
    store = open_store(url)
    try:
        store.stats()  # connected before the race starts
        barrier.wait(60)
        accepted = store.accept(event(eid, RACE_BODY, endpoint=endpoint), [delivery(eid)], 600)
        results.put((endpoint, accepted.event_id, accepted.duplicate_of))
    finally:
        store.close()


def _pause_elsewhere(url, results):
    store = open_store(url)
    try:
        results.put(store.paused_until("app:1", T0))
        store.pause("app:1", T0 + 30)
        store.pause("app:1", T0 + 90)
    finally:
        store.close()


def _accept_one(url, eid):
    store = open_store(url)
    try:
        store.accept(event(eid, eid.encode()), [delivery(eid)], 600)
    finally:
        store.close()


def _accept_until_killed(url, sink):
    store = open_store(url)
    i = 0
    while True:
        store.accept(event(f"evt_{i:06}", b"%d" % i), [delivery(f"dlv_{i:06}")], 600)
        sink.send(i)  # only once the accept has returned, as the 202 is
        i += 1


# -- the tests --------------------------------------------------------------------------------


def test_processes_racing_with_one_body_store_one_event_per_path(store_factory, store_url):
    store = store_factory()
    barrier, results = SPAWN.Barrier(6), SPAWN.Queue()
    paths = [SVC_A, SVC_B, SVC_A, SVC_B, SVC_A, SVC_B]
    procs = [
        _start(_accept_at_once, store_url, barrier, f"evt_{i}", path, results)
        for i, path in enumerate(paths)
    ]
    _joined(procs)
    answers = [results.get(timeout=10) for _ in procs]
    for path in (SVC_A, SVC_B):
        mine = [(eid, dup) for p, eid, dup in answers if p == path]
        (original,) = [eid for eid, dup in mine if dup is None]
        assert sorted(dup for _, dup in mine if dup) == [original, original]
    assert store.stats().by_state["queued"] == 2


def test_a_pause_is_shared_across_processes(store_factory, store_url):
    store = store_factory()
    store.pause("app:1", T0 + 60)
    results = SPAWN.Queue()
    _joined([_start(_pause_elsewhere, store_url, results)])
    assert results.get(timeout=10) == T0 + 60  # the other process saw this one's pause
    assert store.paused_until("app:1", T0) == T0 + 90  # and this one sees its later end


def test_work_queued_in_another_process_wakes_a_waiter_here(store_factory, store_url):
    store = store_factory()
    waiter = store.waiter()
    try:
        time.sleep(0.5)  # let the listener open the pipe or LISTEN before the commit
        _joined([_start(_accept_one, store_url, "evt_other")])
        assert waiter.wait(10)
    finally:
        waiter.close()
    assert store.get_event("evt_other").deliveries[0].state == "queued"


def test_every_accept_that_returned_survives_sigkill(store_factory, store_url):
    store = store_factory()
    reader, writer = SPAWN.Pipe(duplex=False)
    proc = _start(_accept_until_killed, store_url, writer)
    writer.close()
    acknowledged = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 50 and time.monotonic() < deadline:
        if reader.poll(1):
            acknowledged.append(reader.recv())
    os.kill(proc.pid, signal.SIGKILL)  # mid-transaction, most likely
    proc.join(10)
    while reader.poll(0.1):
        try:
            acknowledged.append(reader.recv())
        except EOFError:
            break
    assert len(acknowledged) >= 50
    for i in acknowledged:
        assert store.get_event(f"evt_{i:06}").deliveries[0].state == "queued"
    store.check_writable(T0)  # the killed writer's locks died with it
    store.accept(event("evt_after", b"after"), [delivery("dlv_after")], 600)
