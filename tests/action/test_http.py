"""``action.http.read_body`` over a real connection to the fake W&B."""

from __future__ import annotations

import requests

from action.http import read_body
from tests.action.fake_wandb import FakeArtifact, FakeWandb


def test_pieces_take_the_buffers_in_turn(fake: FakeWandb, artifact: FakeArtifact) -> None:
    """Each piece fills its buffer (whole 64-byte blocks for the MD5 lanes) and the next
    piece goes into the other buffer, so a piece stays intact while it is hashed."""
    f = next(f for f in artifact.files if f.path == "model/weights.bin")
    url = fake.file_url(f)  # pre-signed, as W&B's directUrl
    buffers = (memoryview(bytearray(4096)), memoryview(bytearray(4096)))
    with (
        requests.Session() as session,
        session.get(url, stream=True, timeout=10) as response,
    ):
        body, owners = bytearray(), []
        for piece in read_body(response, 4096, buffers):
            assert isinstance(piece, memoryview)
            owners.append(next(n for n, b in enumerate(buffers) if piece.obj is b.obj))
            body += piece
            if len(body) < f.size:
                assert len(piece) == 4096
    assert bytes(body) == f.read()
    assert owners == [n % 2 for n in range(len(owners))] and len(owners) > 2
