"""Assemble a delivery worker from the config: store, senders (GitHub, notifications,
W&B write-backs), run follower, catch-up of the W&B registry, metrics."""

from __future__ import annotations

import hashlib
import time

from bridge.config.model import Config
from bridge.config.secrets import Redactor
from bridge.delivery.credentials import token_provider
from bridge.delivery.follow import RunFollower
from bridge.delivery.github import GitHubClient
from bridge.delivery.senders import DryRunSender, GitHubSender, Sender
from bridge.delivery.worker import DeliveryWorker
from bridge.http import new_session
from bridge.metrics import Metrics
from bridge.notify.send import NotifySender
from bridge.store import SqlStore, open_store
from bridge.wandb.api import WandbApi
from bridge.wandb.catchup_run import CatchUpRunner
from bridge.wandb.client import GraphQL
from bridge.wandb.writeback import WandbWriter


def github_client(config: Config) -> GitHubClient:
    """The process's one GitHub client: its token cache serves the worker and the run
    follower alike (a 401 seen by one renews the token for both)."""
    session = new_session(config.delivery.concurrency + 2)
    redact = Redactor(config.secrets())
    tokens = token_provider(config, session, time.time, redact)
    timeout = config.delivery.timeout
    return GitHubClient(config.github.api_url, tokens, session, timeout, time.time, redact)


def notify_sender(config: Config) -> NotifySender:
    notifiers = {n.name: n for n in config.notify}
    session = new_session(config.delivery.concurrency)
    redact = Redactor(config.secrets())
    return NotifySender(notifiers, session, config.delivery.timeout, time.time, redact)


def wandb_writer(config: Config, store: SqlStore) -> WandbWriter | None:
    """The write-backs' W&B client (one session per process); None when no route
    writes back."""
    w = config.wandb
    if w is None or w.key is None or not any(r.write_back for r in config.routes):
        return None
    gql = GraphQL(
        w.base_url,
        w.key,
        session=new_session(config.delivery.concurrency),
        timeout=config.delivery.timeout,
        secrets=config.secrets(),
    )
    return WandbWriter(WandbApi(gql, w.entity), store, time.time)


def build_sender(
    config: Config, client: GitHubClient | None, store: SqlStore | None = None
) -> Sender:
    if client is None:
        return DryRunSender(config.github.api_url, notify_sender(config))
    writer = None if store is None else wandb_writer(config, store)
    return GitHubSender(client, notify_sender(config), writer)


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
    client = None if config.github.dry_run else github_client(config)
    worker = DeliveryWorker(
        config,
        store,
        build_sender(config, client, store),
        metrics,
        credential=credential_key(config),
    )
    if config.runs.follow and client is not None:
        worker.follower = RunFollower(
            config,
            store,
            client,
            metrics,
            time.time,
            worker.owner,
            worker.credential,
        )
    wb = config.wandb
    if wb is not None and wb.catch_up is not None and wb.key is not None:
        worker.catch_up = CatchUpRunner(config, store, wb.key, owner=worker.owner)
    return worker
