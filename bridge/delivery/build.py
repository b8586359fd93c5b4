"""Assemble a delivery worker from the config: store, sender, metrics."""

from __future__ import annotations

import hashlib
import time

from bridge.config.model import Config
from bridge.delivery.credentials import new_session, token_provider
from bridge.delivery.github import GitHubClient
from bridge.delivery.senders import DryRunSender, GitHubSender, Sender
from bridge.delivery.worker import DeliveryWorker
from bridge.ops.metrics import Metrics
from bridge.store import open_store


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


def build_worker(config: Config) -> DeliveryWorker:
    store = open_store(config.store.value)
    return DeliveryWorker(
        config,
        store,
        build_sender(config),
        Metrics(store.stats, time.time),
        credential=credential_key(config),
    )
