"""Assemble a delivery worker from the config: store, senders, run follower, metrics."""

from __future__ import annotations

import hashlib
import time

from bridge.config.model import Config
from bridge.delivery.credentials import new_session, token_provider
from bridge.delivery.follow import RunFollower
from bridge.delivery.github import GitHubClient
from bridge.delivery.senders import DryRunSender, GitHubSender, Sender
from bridge.delivery.worker import DeliveryWorker
from bridge.notify.send import NotifySender
from bridge.ops.metrics import Metrics
from bridge.store import SqlStore, open_store


def github_client(config: Config) -> GitHubClient:
    return GitHubClient(
        config.github.api_url,
        token_provider(config, time.time),
        new_session(config.delivery.concurrency + 1),
        config.delivery.timeout,
        time.time,
    )


def notify_sender(config: Config) -> NotifySender:
    notifiers = {n.name: n for n in config.notify}
    session = new_session(config.delivery.concurrency)
    return NotifySender(notifiers, session, config.delivery.timeout, time.time)


def build_sender(config: Config) -> Sender:
    if config.github.dry_run:
        return DryRunSender(config.github.api_url, notify_sender(config))
    return GitHubSender(github_client(config), notify_sender(config))


def credential_key(config: Config) -> str:
    """Names the credential whose rate limit workers share; never holds the secret."""
    gh = config.github
    if gh.app is not None:
        who = f"app:{gh.app.app_id}"
    elif gh.token is not None:
        who = "token:" + hashlib.sha256(gh.token.value.encode()).hexdigest()[:16]
    else:
        who = "dry-run"
    return f"{gh.api_url}|{who}"


def build_worker(config: Config, store: SqlStore | None = None) -> DeliveryWorker:
    store = store or open_store(config.store.value)
    metrics = Metrics(store.stats, time.time)
    worker = DeliveryWorker(
        config, store, build_sender(config), metrics, credential=credential_key(config)
    )
    if config.runs.follow and not config.github.dry_run:
        worker.follower = RunFollower(
            config,
            store,
            github_client(config),
            metrics,
            time.time,
            worker.owner,
            worker.credential,
        )
    return worker
