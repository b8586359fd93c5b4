"""What a running bridge holds: its config, its store, its metrics and its clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bridge.config import Config
from bridge.metrics import Metrics
from bridge.store import SqlStore


@dataclass(frozen=True)
class Runtime:
    config: Config
    store: SqlStore
    metrics: Metrics
    clock: Callable[[], float]
