"""A fake W&B server for the action's tests and self-test workflow (see ``server``)."""

from harness.fake_wandb.server import FakeWandb, Seen, demo_files
from harness.fake_wandb.store import FakeArtifact, Store, StoredFile, md5_b64, xxh128_b64

__all__ = [
    "FakeArtifact",
    "FakeWandb",
    "Seen",
    "Store",
    "StoredFile",
    "demo_files",
    "md5_b64",
    "xxh128_b64",
]
