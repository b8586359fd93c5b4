"""What a running app holds (config, store, metrics, clock), and how a view reaches it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from bridge.config.model import Config
from bridge.metrics import Metrics
from bridge.store import SqlStore

EXTENSION = "wandb_bridge"


@dataclass(frozen=True)
class Services:
    config: Config
    store: SqlStore
    metrics: Metrics
    clock: Callable[[], float]


def services() -> Services:
    """The services of the app handling the current request."""
    found: Services = current_app.extensions[EXTENSION]
    return found
