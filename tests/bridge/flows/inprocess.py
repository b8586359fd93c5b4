"""The bridge in the test process: the app behind Flask's test client, on a real store,
with the real delivery worker in a thread sending to the fake GitHub on loopback.

What ``serve`` does in each gunicorn worker process, without the process: the app from
``create_app(config)``, a delivery worker from ``build_worker(config)`` running its loop
(``DeliveryWorker.run``) in a thread next to it, each with a store of its own, and the
config read from the YAML file the command line reads. Logs go through the bridge's own
formatter into memory; the command line runs in this process too (:func:`run_cli`).
What only gunicorn can show (kill -9, replicas, slow clients, signals, its parser's
limits) stays in ``tests/bridge/e2e``.
"""

from __future__ import annotations

import io
import logging
import sqlite3
import sys
import threading
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bridge.app import create_app
from bridge.cli import main
from bridge.config.load import load_config
from bridge.config.model import Config
from bridge.delivery.build import build_worker
from bridge.delivery.worker import DeliveryWorker
from bridge.logs import JsonFormatter, TextFormatter
from bridge.store import SqlStore
from bridge.store.models import Event
from harness.loopback import LoopbackServer
from harness.wait import wait_until
from tests.bridge.e2e.conftest import ENV, base_config
from tests.bridge.harness import wandb_headers


def assert_error(resp: TestResponse, status: int, code: str) -> None:
    """A refusal with ``status`` and the JSON error body a W&B admin can read."""
    assert resp.status_code == status, resp.text
    body = resp.json
    assert body is not None and body["error"] == code
    assert isinstance(body["message"], str) and len(body["message"]) > 20


# Threads running the command line (run_cli): in a deployment it is a process of its own,
# so its records are not in the bridge's log.
_CLI_THREADS: set[int] = set()


class LogLines(logging.Handler):
    """The bridge's log records as ``serve`` writes them (its formatter, its level), kept
    in memory. On the ``bridge`` logger, so that the command line, which replaces the root
    logger's handlers for its process (``bridge.logs.configure``), leaves it be."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        json_lines = config.logging.format == "json"
        self.setFormatter(JsonFormatter() if json_lines else TextFormatter())
        self.addFilter(lambda record: record.thread not in _CLI_THREADS)
        self.level_name = config.logging.level
        self.lines: list[str] = []
        self._saved_level = logging.NOTSET

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def attach(self) -> None:
        logger = logging.getLogger("bridge")
        self._saved_level = logger.level
        logger.addHandler(self)
        logger.setLevel(self.level_name)

    def detach(self) -> None:
        logger = logging.getLogger("bridge")
        logger.removeHandler(self)
        logger.setLevel(self._saved_level)

    def text(self) -> str:
        return "\n".join(self.lines)


class ServedClient(FlaskClient):
    """Flask's test client, closing each answer once it is read, as a server does once it
    has sent it: what the app runs then (the request's log line) runs here too."""

    def open(self, *args: Any, buffered: bool = True, **kwargs: Any) -> TestResponse:
        return super().open(*args, buffered=buffered, **kwargs)


class Bridge:
    """One bridge: ``client`` is Flask's test client of its app, ``store`` the app's
    store, ``worker`` its delivery worker (None with ``with_worker=False``)."""

    def __init__(self, workdir: Path, config_path: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.config_path = config_path
        self.env = dict(env)
        self.config = load_config(str(config_path), self.env)
        self.logs = LogLines(self.config)
        self.logs.attach()
        try:
            self.app: Flask = create_app(self.config)
        except BaseException:
            self.logs.detach()
            raise
        self.app.test_client_class = ServedClient
        self.client: FlaskClient = self.app.test_client()
        self.store: SqlStore = self.app.extensions["wandb_bridge"].store
        self.worker: DeliveryWorker | None = None
        self._thread: threading.Thread | None = None
        self._server: LoopbackServer | None = None

    # -- served on loopback, for a peer that calls it (W&B's webhooks) ---------------------

    def serve(self) -> str:
        """Serve the app on loopback as well; its URL (a new port each time)."""
        assert self._server is None, "served already"
        self._server = LoopbackServer(self.app, "bridge").start()
        return self._server.url

    def down(self) -> None:
        """No longer served, no worker: the bridge is down (its store stays)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self.stop_worker()

    def up(self) -> str:
        """Back after :meth:`down`: served again, and a new worker started; its URL."""
        url = self.serve()
        self.start_worker()
        return url

    # -- the delivery worker --------------------------------------------------------------

    def start_worker(self) -> None:
        """``serve``'s delivery worker: its own store, its loop in a thread."""
        assert self.worker is None, "the worker runs already"
        self.worker = build_worker(self.config)
        self._thread = threading.Thread(target=self.worker.run, name="delivery", daemon=True)
        self._thread.start()

    def stop_worker(self) -> None:
        """As ``serve`` stops one: attempts in flight finish and are recorded first."""
        worker, thread, self.worker, self._thread = self.worker, self._thread, None, None
        if worker is None or thread is None:
            return
        worker.stop()
        thread.join(self.config.delivery.lease + 5)
        assert not thread.is_alive(), "the delivery worker did not stop"
        worker.store.close()

    def close(self) -> None:
        try:
            self.down()
        finally:
            self.store.close()
            self.logs.detach()

    # -- talking to it --------------------------------------------------------------------

    def post(self, path: str, body: bytes, **how: Any) -> TestResponse:
        """POST ``body`` to ``path`` as W&B sends a webhook (see :func:`wandb_headers`)."""
        return self.client.post(path, data=body, headers=wandb_headers(body, **how))

    def log(self) -> str:
        return self.logs.text()

    def event(self, event_id: str) -> Event:
        found = self.store.get_event(event_id)
        assert found is not None, event_id
        return found

    def wait_for_state(self, event_id: str, state: str, timeout: float = 30.0) -> Event:
        """The event once each of its deliveries is in ``state``."""

        def reached() -> Event | None:
            event = self.event(event_id)
            return event if all(d.state == state for d in event.deliveries) else None

        found: Event = wait_until(
            reached, timeout=timeout, what=f"{event_id}'s deliveries to be {state}"
        )
        return found

    @property
    def db(self) -> Path:
        """The SQLite store's file."""
        url = self.config.store.value
        assert url.startswith("sqlite:///"), "a SQLite store"
        return Path(url.removeprefix("sqlite:///"))

    def events_in_store(self) -> int:
        """How many events the bridge's SQLite store holds."""
        with closing(sqlite3.connect(self.db)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def run(self, *args: str) -> Ran:
        """``wandb-bridge ARGS --config <its config>``, in this process."""
        return run_cli(*args, "--config", str(self.config_path), env=self.env)

    def cli(self, *args: str, check: bool = True) -> str:
        """The standard output of :meth:`run`; with ``check``, a failure fails the test."""
        ran = self.run(*args)
        assert ran.code == 0 or not check, ran.err
        return ran.out


@dataclass(frozen=True)
class Ran:
    """What a command line run left: its exit status, standard output and error."""

    code: int
    out: str
    err: str


def run_cli(*args: str, env: Mapping[str, str], stdin: str = "") -> Ran:
    """``wandb-bridge ARGS`` in this process, with ``env`` set. The command line configures
    logging for its process: the root logger's handlers are put back after it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        out, err = io.StringIO(), io.StringIO()
        mp.setattr(sys, "stdin", io.StringIO(stdin))
        mp.setattr(sys, "stdout", out)
        mp.setattr(sys, "stderr", err)
        _CLI_THREADS.add(threading.get_ident())
        try:
            code = main(list(args))
        finally:
            _CLI_THREADS.discard(threading.get_ident())
            for handler in list(root.handlers):
                root.removeHandler(handler)
            for handler in handlers:
                root.addHandler(handler)
            root.setLevel(level)
    return Ran(code, out.getvalue(), err.getvalue())


def open_bridge(
    workdir: Path,
    github_url: str,
    env: Mapping[str, str] | None = None,
    name: str = "bridge",
    **over: Any,
) -> Bridge:
    """A bridge (no worker yet) on ``base_config(workdir, github_url, **over)``, its config
    written to ``NAME.yaml`` in ``workdir``."""
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(base_config(workdir, github_url, **over)))
    return Bridge(workdir, path, {**ENV, **(env or {})})
