"""``wandb-bridge events``: run as a user runs it (a subprocess, a real SQLite file).

The commands act on what a running bridge stored: they never create a store, say where
they looked when there is none, and say why when the file system keeps them out. Tests
run as root, for whom file modes mean nothing, so the permission checks run the command
with root's two capabilities that override them dropped (``setpriv``, util-linux): the
kernel then applies the modes to it as to any other user.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing

import psycopg
import pytest

from bridge.cli import _parser
from bridge.errors import StoreUnavailable
from bridge.ids import new_id
from bridge.store import open_store
from bridge.store.models import Attempt, CaughtUp, NewDelivery, NewEvent, NewRun, PassResult, Watch

T0 = 1_700_000_000.0
CONFIG = "sources: {w: {allow_unauthenticated: true}}\ngithub: {dry_run: true}\n"
DROP_DAC = "-dac_override,-dac_read_search"  # the capabilities that let root ignore modes


def bridge(*args, cwd=None, prefix=()):
    return subprocess.run(
        [*prefix, sys.executable, "-m", "bridge", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def config(tmp_path, store):
    path = tmp_path / "bridge.yaml"
    path.write_text(f"store: {store}\n{CONFIG}")
    return str(path)


# -- no store: never created, the path named ----------------------------------------------


def test_events_commands_never_create_a_store_and_name_the_path(tmp_path):
    cfg = config(tmp_path, "sqlite:///wandb-bridge.db")  # relative: to the working directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (("list",), ("show", "evt_x"), ("replay", "--dead"), ("prune",)):
        res = bridge("events", *args, "--config", cfg, cwd=elsewhere)
        assert res.returncode == 1, (args, res.stderr)
        assert f"no SQLite database at {elsewhere}/wandb-bridge.db" in res.stderr, res.stderr
        assert "relative to the directory" in res.stderr and "absolute path" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and res.stdout == ""
        assert os.listdir(elsewhere) == [], args


def test_events_list_finds_the_store_serve_created(tmp_path):
    cfg = config(tmp_path, "sqlite:///wandb-bridge.db")
    home = tmp_path / "home"
    home.mkdir()
    store = open_store(f"sqlite:///{home}/wandb-bridge.db")
    store.migrate()  # as serve does, in its directory
    store.close()
    res = bridge("events", "list", "--config", cfg, cwd=home)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "no events stored\n"


def test_an_empty_sqlite_file_is_not_made_a_store(tmp_path):
    (tmp_path / "b.db").write_bytes(b"")
    res = bridge("events", "list", "--config", config(tmp_path, f"sqlite:///{tmp_path}/b.db"))
    assert res.returncode == 1 and "holds no wandb-bridge tables" in res.stderr, res.stderr
    with closing(sqlite3.connect(tmp_path / "b.db")) as conn:  # CREATE TABLE rolled back
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


@pytest.mark.postgres
def test_events_commands_create_no_tables_in_postgres(postgres_url):
    store = open_store(postgres_url)
    try:
        with pytest.raises(StoreUnavailable, match="holds no wandb-bridge tables"):
            store.migrate(create=False)
    finally:
        store.close()
    with psycopg.connect(postgres_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    assert tables == []


# -- events list: a header, what matched nothing, --state, GitHub's text made inert ------


def _event(at, body):
    eid = new_id("evt", at)
    return eid, NewEvent(
        eid, "wandb", "/webhooks/wandb", at, body, hashlib.sha256(body).hexdigest()
    )


def _finish(store, now, outcome, **recorded):
    """Record the one due delivery's attempt as a worker would (``recorded``: the watch,
    run and notices that go with it)."""
    (c,) = store.claim("w", 1, 60, now)
    attempt = Attempt(1, now, now, 204 if outcome == "delivered" else 422, outcome, "ok", None, "w")
    assert store.finish(c, "w", attempt, outcome, now, **recorded)
    return c


@pytest.fixture
def seeded(tmp_path):
    """Two events: A's dispatch delivered and its notification dead, B's dispatch dead;
    A's dispatch started a run whose status GitHub spelled with a terminal escape."""
    url = f"sqlite:///{tmp_path}/b.db"
    store = open_store(url)
    store.migrate()
    a, event_a = _event(T0, b'{"a": 1}')
    b, event_b = _event(T0 + 10, b'{"b": 1}')
    dlv_a, ntf_a, dlv_b = new_id("dlv", T0), new_id("ntf", T0 + 1), new_id("dlv", T0 + 10)
    store.accept(event_a, [NewDelivery(dlv_a, "r", "acme/svc", "DEPLOY", "{}")], 600)
    watch = Watch(dlv_a, a, "acme/svc", "dispatch", None, None, T0, T0 + 300, None, 0)
    run = NewRun(
        7,
        "Deploy",
        "https://github.com/acme/svc/actions/runs/7",
        "\x1b[2J" + "x" * 200,
        None,
        T0,
        T0,
    )
    notice = NewDelivery(ntf_a, "r", "acme/svc", "delivered", "{}", kind="notify", notifier="n")
    _finish(store, T0 + 1, "delivered", watch=watch, run=run, notices=[notice])
    _finish(store, T0 + 2, "dead")  # the notification
    store.accept(event_b, [NewDelivery(dlv_b, "r", "acme/svc", "DEPLOY", "{}")], 600)
    _finish(store, T0 + 11, "dead")
    store.close()
    return config(tmp_path, url), {"a": a, "b": b, "dlv_a": dlv_a, "ntf_a": ntf_a, "dlv_b": dlv_b}


def test_events_list_prints_a_header_then_one_event_a_line(seeded):
    cfg, ids = seeded
    res = bridge("events", "list", "--config", cfg)
    assert res.returncode == 0, res.stderr
    header, first, second = res.stdout.splitlines()
    assert header.split() == ["EVENT", "RECEIVED", "SOURCE", "DELIVERIES"]
    assert first.startswith(ids["b"]) and f"{ids['dlv_b']}:dead" in first
    assert second.startswith(ids["a"]) and f"{ids['ntf_a']}:dead" in second
    for row in (first, second):  # the columns line up under the header
        assert row.index("wandb") == header.index("SOURCE")
        assert row.index("dlv_") == header.index("DELIVERIES")


def test_events_list_makes_githubs_text_inert_and_short(seeded):
    cfg, ids = seeded
    (line,) = [
        row
        for row in bridge("events", "list", "--config", cfg).stdout.splitlines()
        if row.startswith(ids["a"])
    ]
    assert "\x1b" not in line and "\\x1b[2J" in line
    run = line.split(f"{ids['dlv_a']}:delivered:run=", 1)[1].split(",", 1)[0]
    assert run.endswith("...") and len(run) == 40


def test_state_is_the_state_of_the_events_dispatches(seeded):
    cfg, ids = seeded
    dead = bridge("events", "list", "--state", "dead", "--config", cfg).stdout.splitlines()
    assert [row.split()[0] for row in dead[1:]] == [ids["b"]]  # not A: only its notice died
    done = bridge("events", "list", "--state", "delivered", "--config", cfg).stdout.splitlines()
    assert [row.split()[0] for row in done[1:]] == [ids["a"]]


def test_events_list_says_which_filters_matched_nothing(seeded):
    cfg, _ = seeded
    res = bridge("events", "list", "--state", "queued", "--run", "failed", "--config", cfg)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "no events matched --state queued --run failed\n"


def test_every_option_and_subcommand_has_help():
    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    if not choice.help:
                        missing.append(f"{path} {choice.dest}")
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {action.option_strings or action.dest}")

    walk(_parser(), "wandb-bridge")
    assert missing == []


# -- the file system in the way: the path, the reason, the fix ----------------------------


@pytest.fixture
def as_a_plain_user():
    """The command prefix that runs a command as root without the power to ignore modes."""
    setpriv = shutil.which("setpriv")
    probe = (
        subprocess.run(
            [setpriv or "setpriv", f"--bounding-set={DROP_DAC}", "true"],
            capture_output=True,
            text=True,
            check=False,
        )
        if setpriv
        else None
    )
    if os.geteuid() != 0 or probe is None or probe.returncode != 0:
        reason = "needs root and setpriv (util-linux) allowed to drop capabilities"
        if probe is not None:
            reason += f": {probe.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: these tests must run)", pytrace=False)
        pytest.skip(reason)
    return (setpriv, f"--bounding-set={DROP_DAC}", f"--inh-caps={DROP_DAC}")


def _store_in(directory):
    directory.mkdir()
    store = open_store(f"sqlite:///{directory}/b.db")
    store.migrate()
    store.close()
    return directory / "b.db"


def test_a_directory_the_user_cannot_write_is_named_with_the_reason(tmp_path, as_a_plain_user):
    db = _store_in(tmp_path / "data")
    os.chown(db.parent, 65534, 65534)  # someone else's directory, 0755
    os.chown(db, 65534, 65534)
    db.chmod(0o666)  # the file itself is writable: only the -wal and -shm cannot be made
    cfg = config(tmp_path, f"sqlite:///{db}")
    for args in (("events", "list"), ("worker",)):
        res = bridge(*args, "--config", cfg, prefix=as_a_plain_user)
        assert res.returncode == 1, (args, res.stderr)
        assert str(db) in res.stderr and "cannot create" not in res.stderr
        assert f"its directory {db.parent} is not writable by user root" in res.stderr
        assert "b.db-wal and b.db-shm" in res.stderr
    assert sorted(os.listdir(db.parent)) == ["b.db"]


def test_a_database_file_the_user_cannot_write_is_named(tmp_path, as_a_plain_user):
    db = _store_in(tmp_path / "data")
    os.chown(db, 65534, 65534)  # someone else's file, 0644, in a directory the user owns
    res = bridge("worker", "--config", config(tmp_path, f"sqlite:///{db}"), prefix=as_a_plain_user)
    assert res.returncode == 1, res.stderr
    assert str(db) in res.stderr and "b.db is not readable and writable by user root" in res.stderr


def test_a_missing_directory_is_named(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/no/such/b.db")
    with pytest.raises(StoreUnavailable, match=rf"its directory {tmp_path}/no/such does not exist"):
        store.migrate()
    assert os.listdir(tmp_path) == []


def test_events_show_and_list_json_name_the_origin_and_a_write_back(tmp_path):
    """An event catch-up recorded, with a write-back to W&B among its deliveries."""
    url = f"sqlite:///{tmp_path}/b.db"
    store = open_store(url)
    store.migrate()
    eid, found = _event(T0, b'{"event_type": "LINK_MODEL"}')
    payload = '{"aliases": ["ok"]}'
    back = NewDelivery(
        new_id("wbk", T0), "r", "ent/reg/model:v3", "run_succeeded", payload, "wandb"
    )
    change = "LINK_MODEL|reg/model|QXJ0|"
    assert store.catchup.record(PassResult(caught_up=(CaughtUp(found, (back,), "r", change),)), T0)
    webhook, plain = _event(T0 + 1, b"{}")
    store.accept(plain, [], 600)
    store.close()
    cfg = config(tmp_path, url)
    listed = bridge("events", "list", "--json", "--config", cfg)
    assert listed.returncode == 0, listed.stderr
    events = json.loads(listed.stdout)["events"]
    assert [(e["id"], e["origin"]) for e in events] == [(webhook, "webhook"), (eid, "catch_up")]
    shown = json.loads(bridge("events", "show", eid, "--config", cfg).stdout)
    (d,) = shown["deliveries"]
    assert shown["origin"] == "catch_up" and d["target"] == "wandb:ent/reg/model:v3"
    assert d["kind"] == "wandb_write_back" and d["write_back"] == {"aliases": ["ok"]}
    assert "runs" not in d
