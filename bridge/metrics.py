"""Prometheus metrics, correct across gunicorn's worker processes.

Counters and the latency histogram live in ``prometheus_client``'s multiprocess files
when ``PROMETHEUS_MULTIPROC_DIR`` is set (``serve`` sets it before anything imports the
library); queue depth, deliveries by state and the oldest pending delivery's age are
read from the store at scrape time, so every process reports the same truth.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from bridge.states import AttemptOutcome, DeliveryState
from bridge.store.models import Stats

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


# GitHub's documented run conclusions, and the bridge's own "unknown": a label value
# comes from a fixed set, whatever text an answer holds.
CONCLUSIONS = frozenset(
    {
        "action_required",
        "cancelled",
        "failure",
        "neutral",
        "skipped",
        "stale",
        "startup_failure",
        "success",
        "timed_out",
        "unknown",
    }
)


def conclusion_label(conclusion: str) -> str:
    """``conclusion`` when it is one GitHub documents (or ``unknown``), else ``other``."""
    return conclusion if conclusion in CONCLUSIONS else "other"


def status_class(status: int | None) -> str:
    """``2xx`` .. ``5xx``; ``none`` when no HTTP answer came (network error, dry run)."""
    return "none" if status is None else f"{status // 100}xx"


class _StoreCollector:
    def __init__(self, stats: Callable[[], Stats], clock: Callable[[], float]) -> None:
        self.stats = stats
        self.clock = clock

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from bridge.errors import StoreUnavailable

        try:
            stats = self.stats()
        except StoreUnavailable:
            return
        by_state = GaugeMetricFamily(
            "wandb_bridge_deliveries", "Deliveries in the store by state.", labels=["state"]
        )
        for state in DeliveryState:
            by_state.add_metric([state], stats.by_state.get(state, 0))
        yield by_state
        yield GaugeMetricFamily(
            "wandb_bridge_queue_depth",
            "Deliveries waiting to be sent (queued or in flight).",
            value=stats.by_state.get(DeliveryState.QUEUED, 0)
            + stats.by_state.get(DeliveryState.IN_FLIGHT, 0),
        )
        age = 0.0 if stats.oldest_queued_at is None else self.clock() - stats.oldest_queued_at
        yield GaugeMetricFamily(
            "wandb_bridge_oldest_queued_age_seconds",
            "Age of the oldest delivery not yet delivered or dead (0 when none).",
            value=age,
        )


class Metrics:
    """The bridge's metrics; construct after the multiprocess directory is decided."""

    def __init__(self, stats: Callable[[], Stats], clock: Callable[[], float]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._registry = None if self.multiprocess else CollectorRegistry()
        self._collector = _StoreCollector(stats, clock)
        reg = self._registry
        self._requests = Counter(
            "wandb_bridge_requests",
            "Webhook requests by source and outcome.",
            ["source", "outcome"],
            registry=reg,
        )
        self._refusals = Counter(
            "wandb_bridge_refusals",
            "Refused webhook requests by reason (the error code).",
            ["reason"],
            registry=reg,
        )
        self._duplicates = Counter(
            "wandb_bridge_duplicates", "Requests answered duplicate_of.", ["source"], registry=reg
        )
        self._attempts = Counter(
            "wandb_bridge_delivery_attempts",
            "Delivery attempts by GitHub status class.",
            ["status_class"],
            registry=reg,
        )
        self._outcomes = Counter(
            "wandb_bridge_delivery_outcomes",
            "Attempt outcomes: delivered, retry, dead, dry_run (github.dry_run: nothing sent).",
            ["outcome"],
            registry=reg,
        )
        self._latency = Histogram(
            "wandb_bridge_delivery_latency_seconds",
            "From the event's acceptance (or replay) to GitHub's acceptance.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._runs = Counter(
            "wandb_bridge_runs",
            "Workflow runs followed to their end, by repository and conclusion (success, "
            "failure, cancelled, ..., unknown when the bridge gave up, other for a value "
            "GitHub does not document).",
            ["repository", "conclusion"],
            registry=reg,
        )
        self._no_runs = Counter(
            "wandb_bridge_no_run_started",
            "Dispatches GitHub accepted that started no workflow run within runs.no_run_after.",
            ["repository"],
            registry=reg,
        )
        if self._registry is not None:
            self._registry.register(self._collector)

    def received(self, source: str, outcome: str) -> None:
        self._requests.labels(source=source, outcome=outcome).inc()
        if outcome == "duplicate":
            self._duplicates.labels(source=source).inc()

    def refused(self, reason: str, source: str = "-") -> None:
        self._requests.labels(source=source, outcome="refused").inc()
        self._refusals.labels(reason=reason).inc()

    def attempt(self, status: int | None, outcome: str, latency: float) -> None:
        """Count one attempt; ``outcome`` is the attempt's (delivered, retry, dead, dry_run)."""
        self._attempts.labels(status_class=status_class(status)).inc()
        self._outcomes.labels(outcome=outcome).inc()
        if outcome == AttemptOutcome.DELIVERED:
            self._latency.observe(latency)

    def run_concluded(self, repository: str, conclusion: str) -> None:
        self._runs.labels(repository=repository, conclusion=conclusion_label(conclusion)).inc()

    def no_run(self, repository: str) -> None:
        self._no_runs.labels(repository=repository).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = self._registry
        if registry is None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            registry.register(self._collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST
