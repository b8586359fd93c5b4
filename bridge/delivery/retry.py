"""When to try a failed delivery again, and when to give up. Pure functions.

Waits grow exponentially from ``initial_backoff`` (about 5 s) to ``max_backoff`` (1 h),
each spread by ±20 % jitter so a burst of failures does not come back as a burst. A
time GitHub names (``Retry-After``, ``x-ratelimit-reset``) is a lower bound, itself
capped at ``max_backoff``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bridge.config.model import DeliveryConfig
from bridge.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from bridge.states import DeliveryState
from bridge.store.models import Claimed


@dataclass(frozen=True)
class Decision:
    state: str  # delivered, queued (retry) or dead
    due_at: float
    wait: float | None
    reason: str  # what is recorded with the attempt


def backoff(attempt: int, initial: float, cap: float, rand: Callable[[], float]) -> float:
    """The wait after the ``attempt``-th failure (1-based): initial·2^(n-1), jittered."""
    base = min(cap, initial * 2.0 ** min(attempt - 1, 60))
    return min(cap, base * (0.8 + 0.4 * rand()))


def decide(
    claimed: Claimed,
    error: DeliveryError | None,
    now: float,
    cfg: DeliveryConfig,
    rand: Callable[[], float],
) -> Decision:
    """What becomes of ``claimed`` after an attempt that ended with ``error`` (or not)."""
    if error is None:
        return Decision(DeliveryState.DELIVERED, now, None, "delivered")
    if isinstance(error, PermanentDeliveryError):
        return Decision(DeliveryState.DEAD, now, None, error.message)
    wait = backoff(claimed.round_attempts, cfg.initial_backoff, cfg.max_backoff, rand)
    if isinstance(error, TransientDeliveryError) and error.not_before is not None:
        # GitHub's time is a lower bound, but no answer may park a delivery for years.
        wait = min(max(wait, error.not_before - now), cfg.max_backoff)
    if claimed.round_attempts >= cfg.max_attempts:
        return Decision(
            DeliveryState.DEAD,
            now,
            None,
            f"gave up after {claimed.round_attempts} attempts (delivery.max_attempts); "
            f"last: {error.message}",
        )
    if now + wait > claimed.round_started_at + cfg.max_age:
        return Decision(
            DeliveryState.DEAD,
            now,
            None,
            f"gave up: the next attempt would come after delivery.max_age; last: {error.message}",
        )
    return Decision(DeliveryState.QUEUED, now + wait, wait, error.message)
