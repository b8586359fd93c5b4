"""``/readyz`` on a disk that still takes tiny writes but not a full-size event."""

from __future__ import annotations

import json
import os

import pytest

from bridge.ops.health import ROOM_FOR_EVENTS
from tests.bridge.e2e.conftest import SECRET, TOKEN
from tests.bridge.test_store_readiness import _mount, _umount

MAX_BODY = 512 * 1024


@pytest.fixture
def disk(tmp_path):
    """An 8 MiB tmpfs, mounted for one test (root only: see test_store_readiness)."""
    path = tmp_path / "disk"
    path.mkdir()
    _mount("-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(path))
    yield path
    _umount(path)


def free_bytes(path) -> int:
    fs = os.statvfs(path)
    return fs.f_bavail * fs.f_frsize


def test_readyz_is_503_while_the_disk_has_no_room_for_a_full_size_event(start_bridge, disk):
    bridge = start_bridge(
        with_worker=False, store=f"sqlite:///{disk}/bridge.db", max_body_bytes=MAX_BODY
    )
    assert bridge.client.get("/readyz").status_code == 200

    # Leave 1 MiB: room for a heartbeat and small events, not for ROOM_FOR_EVENTS bodies.
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (free_bytes(disk) - 1024 * 1024))
    assert free_bytes(disk) < ROOM_FOR_EVENTS * MAX_BODY

    ready = bridge.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["status"] == "unavailable"
    assert str(disk) not in ready.text  # the path is for the log, not for anyone who asks
    assert "free some space" in bridge.log()
    small = json.dumps({"event_type": "LINK_ARTIFACT", "n": 1}).encode()
    resp = bridge.post("/webhooks/wandb", small, secret=SECRET, token=TOKEN)
    assert resp.status_code == 202  # tiny writes still commit: readiness looks further

    filler.unlink()
    assert bridge.client.get("/readyz").status_code == 200
