"""``wandb-bridge serve``: gunicorn with the app, and a delivery worker in each process.

Each gunicorn worker process runs one delivery worker thread next to its request
threads, so gunicorn supervises both (a killed worker is replaced, with its deliveries).
Claims go through the store with a lease, so any number of these, in any number of
replicas, share the work without doubling it.

Workers are threaded (gunicorn's ``gthread``): a connection that sends nothing waits in
the worker's poller, not in a thread, and a slow one holds one thread of many, so slow
or idle clients cannot starve health checks or webhooks the way they starve a
one-request-at-a-time worker.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from bridge.config.model import Config
from bridge.errors import ConfigError

if TYPE_CHECKING:
    from bridge.delivery.worker import DeliveryWorker

log = logging.getLogger(__name__)

METRICS_SUBDIR = "wandb-bridge-metrics"
# The files prometheus_client's multiprocess mode writes: <type>_<pid>.db, and for gauges
# gauge_<mode>_<pid>.db (mode: all, liveall, min, livemax, mostrecent, ...).
METRIC_FILE = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")


class BridgeServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: Config, options: dict[str, Any], with_worker: bool) -> None:
        self.bridge_config = config
        self.options = options
        self.with_worker = with_worker
        self._workers: dict[int, tuple[DeliveryWorker, threading.Thread]] = {}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("preload_app", True)
        self.cfg.set("child_exit", _child_exit)
        if self.with_worker:
            self.cfg.set("post_worker_init", self._start_delivery)
            self.cfg.set("worker_exit", self._stop_delivery)

    def load(self) -> Any:
        from bridge.app import create_app

        app = create_app(self.bridge_config)
        # Connections are opened per process; drop the master's before gunicorn forks.
        app.extensions["wandb_bridge"].store.close()
        return app

    def _start_delivery(self, worker: Any) -> None:
        from bridge.delivery.build import build_worker

        delivery = build_worker(self.bridge_config)
        thread = threading.Thread(
            target=delivery.run, args=(worker.ppid,), daemon=True, name="delivery"
        )
        self._workers[os.getpid()] = (delivery, thread)
        thread.start()

    def _stop_delivery(self, server: Any, worker: Any) -> None:
        """Let attempts in flight finish and be recorded (within their lease) before
        exiting."""
        entry = self._workers.pop(os.getpid(), None)
        if entry is not None:
            delivery, thread = entry
            delivery.stop()
            thread.join(self.bridge_config.delivery.lease + 2)


def _child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def prepare_metrics_dir() -> str | None:
    """Counters shared by gunicorn's processes need a directory, chosen before import.

    A directory the operator gives may hold other files (the data directory, with the
    database), and prometheus_client reads every ``*.db`` in its directory: so the bridge
    keeps its files in a subdirectory of its own, :data:`METRICS_SUBDIR`. Returns the
    directory when this call made it (and so must remove it)."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        own = Path(given) / METRICS_SUBDIR
        try:
            own.mkdir(exist_ok=True)
            # prometheus_client's rule: remove an earlier run's files before the server
            # starts, or its counters are added to this one's. Only metric files, though.
            for stale in own.iterdir():
                if METRIC_FILE.fullmatch(stale.name):
                    stale.unlink(missing_ok=True)
        except OSError as exc:
            raise ConfigError(
                [
                    f"PROMETHEUS_MULTIPROC_DIR: cannot prepare {own}: {exc.strerror or exc}; "
                    "give a directory the bridge's user can write, or unset it"
                ]
            ) from exc
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(own)
        return None
    made = tempfile.mkdtemp(prefix="wandb-bridge-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made


def serve(config: Config, bind: str, workers: int, with_worker: bool, threads: int = 64) -> None:
    made = prepare_metrics_dir()
    options = {
        "bind": bind,
        "workers": workers,
        # gunicorn's gthread, answering what it cannot parse with the JSON error shape
        "worker_class": "bridge.gunicorn_worker.JsonRefusalWorker",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": max(30, int(config.delivery.timeout) + 5),
        "accesslog": None,
        "control_socket_disable": True,
        "errorlog": "-",
    }
    try:
        BridgeServer(config, options, with_worker).run()
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
