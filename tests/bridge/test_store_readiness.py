"""``check_writable``: readiness says whether an event would be accepted right now.

The failures are real ones: a database file deleted or replaced, a full disk (a small
tmpfs) and a read-only file system (a read-only bind mount). Tests run as root, for whom
file modes mean nothing, so mounts are the honest way; where mounting is not allowed
they skip, except under CI=true (CI runs as root on the same kind of machine).
"""

import os
import subprocess

import psycopg
import pytest

from bridge.errors import StoreUnavailable
from bridge.store import open_store
from tests.bridge.test_store import T0, delivery, event


def test_a_deleted_database_is_unavailable_and_not_created_again(sqlite_store):
    sqlite_store.accept(event("evt_1"), [delivery("dlv_1")], 600)
    sqlite_store.check_writable(T0)
    os.remove(sqlite_store.path)
    for check in (
        lambda: sqlite_store.check_writable(T0 + 1),
        sqlite_store.stats,  # a read
        lambda: sqlite_store.accept(event("evt_2", b"2"), [delivery("dlv_2")], 600),
    ):
        with pytest.raises(StoreUnavailable, match="does not exist"):
            check()
    assert not os.path.exists(sqlite_store.path)
    other = open_store(f"sqlite:///{sqlite_store.path}")  # a process that starts now
    try:
        with pytest.raises(StoreUnavailable, match="does not exist"):
            other.check_writable(T0 + 2)
        assert not os.path.exists(sqlite_store.path)
        # the deleted database's WAL is still there: SQLite would apply it to a new file
        with pytest.raises(StoreUnavailable, match=r"move .*-wal"):
            other.migrate()
        assert not os.path.exists(sqlite_store.path)
        os.remove(sqlite_store.path + "-wal")  # as the message says
        os.remove(sqlite_store.path + "-shm")
        other.migrate()  # the one step that may create it
        other.check_writable(T0 + 3)
        assert other.list_events(None, 10) == []
        with pytest.raises(StoreUnavailable, match="replaced"):
            sqlite_store.check_writable(T0 + 4)  # a store keeps to its file until closed
    finally:
        other.close()


def test_only_migrate_creates_the_database(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/new.db")
    try:
        for check in (lambda: store.check_writable(T0), store.stats):
            with pytest.raises(StoreUnavailable, match="does not exist"):
                check()
        assert os.listdir(tmp_path) == []
        store.migrate()
        store.check_writable(T0)
    finally:
        store.close()


@pytest.mark.parametrize("replacement", ["not a database", "a directory"])
def test_a_replaced_database_file_is_unavailable(sqlite_store, tmp_path, replacement):
    sqlite_store.check_writable(T0)
    stand_in = tmp_path / "stand-in"
    if replacement == "a directory":
        stand_in.mkdir()
    else:
        stand_in.write_bytes(b"this is not a SQLite database\n" * 200)
    os.remove(sqlite_store.path)
    os.rename(stand_in, sqlite_store.path)
    with pytest.raises(StoreUnavailable, match="replaced"):
        sqlite_store.check_writable(T0 + 1)
    with pytest.raises(StoreUnavailable):
        sqlite_store.accept(event("evt_1"), [delivery("dlv_1")], 600)


# -- a full disk and a read-only file system: real mounts -------------------------------------


def _mount(*args):
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = f"mount {' '.join(args)} failed: {done.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: these tests must run)", pytrace=False)
        pytest.skip(f"{reason}; they need root with CAP_SYS_ADMIN")


def _umount(path):
    subprocess.run(["umount", "--lazy", str(path)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs, mounted for one test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount("-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(disk))
    yield disk
    _umount(disk)


def test_a_full_disk_is_unavailable_until_space_is_freed(small_disk):
    store = open_store(f"sqlite:///{small_disk}/bridge.db")
    try:
        store.migrate()
        store.accept(event("evt_1"), [delivery("dlv_1")], 600)
        filler = small_disk / "filler"
        with open(filler, "wb") as f, pytest.raises(OSError, match="No space left"):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        with pytest.raises(StoreUnavailable, match="disk"):
            store.check_writable(T0)
        with pytest.raises(StoreUnavailable):
            store.accept(event("evt_2", b"x" * 20000), [delivery("dlv_2")], 600)
        store.stats()  # reading still works
        filler.unlink()
        store.check_writable(T0 + 1)
        store.accept(event("evt_2", b"x" * 20000), [delivery("dlv_2")], 600)
        assert [e.id for e in store.list_events(None, 10)] == ["evt_2", "evt_1"]
    finally:
        store.close()


def test_a_read_only_file_system_is_unavailable(small_disk, tmp_path):
    writable = open_store(f"sqlite:///{small_disk}/bridge.db")
    view = tmp_path / "read-only"
    view.mkdir()
    try:
        writable.migrate()
        writable.accept(event("evt_1"), [delivery("dlv_1")], 600)
        _mount("--bind", str(small_disk), str(view))
        try:
            _mount("-o", "remount,bind,ro", str(view))
            store = open_store(f"sqlite:///{view}/bridge.db")
            try:
                store.stats()  # while the writable side holds the WAL open, reads work
                with pytest.raises(StoreUnavailable, match="readonly"):
                    store.check_writable(T0)
                with pytest.raises(StoreUnavailable):
                    store.accept(event("evt_2", b"2"), [delivery("dlv_2")], 600)
                writable.close()  # and once nobody else has it open, nothing works
                with pytest.raises(StoreUnavailable):
                    store.check_writable(T0)
            finally:
                store.close()
        finally:
            _umount(view)
        writable.check_writable(T0)
        assert [e.id for e in writable.list_events(None, 10)] == ["evt_1"]
    finally:
        writable.close()


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_read_only_database_is_unavailable(postgres_url):
    store = open_store(postgres_url)
    store.migrate()
    store.close()
    dbname = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {dbname} SET default_transaction_read_only = on")
    store = open_store(postgres_url)  # new sessions are read-only, as on a standby
    try:
        store.stats()  # reads work
        with pytest.raises(StoreUnavailable, match="read-only"):
            store.check_writable(T0)
    finally:
        store.close()
