"""Assemble a delivery worker from the config: store, sender, metrics."""

from __future__ import annotations

import time

from bridge.config import Config
from bridge.github import GitHubClient
from bridge.github_auth import new_session, token_provider
from bridge.metrics import Metrics
from bridge.store import open_store
from bridge.worker import DeliveryWorker, DryRunSender, GitHubSender, Sender


def build_sender(config: Config) -> Sender:
    gh = config.github
    if gh.dry_run:
        return DryRunSender(gh.api_url)
    client = GitHubClient(
        gh.api_url,
        token_provider(config, time.time),
        new_session(config.delivery.concurrency),
        config.delivery.timeout,
        time.time,
    )
    return GitHubSender(client)


def build_worker(config: Config) -> DeliveryWorker:
    store = open_store(config.store.value)
    return DeliveryWorker(config, store, build_sender(config), Metrics(store.stats, time.time))
