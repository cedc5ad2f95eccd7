"""When to try again after failures: one rule for every poller (venues and the price source)."""

from __future__ import annotations

import random

from tui.venues.errors import VenueError

MAX_BACKOFF = 300.0
NOT_RETRYABLE_FLOOR = 60.0
RETRY_BASE = 10.0  # the first retry comes within this, however long the period: one glitch costs seconds


def backoff(period: float, failures: int, rng: random.Random, error: VenueError | None) -> float:
    """Seconds to wait after `failures` failures in a row: the period (at most RETRY_BASE: a minute-long
    period must not leave a screen empty for a minute after one dropped connection) doubled each time up
    to five minutes, jittered by ±20 % so many monitors do not retry in step, at least a minute for an error
    retrying cannot fix, and never sooner than the venue's own retry-after."""
    delay = min(min(period, RETRY_BASE) * 2.0 ** (failures - 1), MAX_BACKOFF) * rng.uniform(0.8, 1.2)
    if error is not None and not error.retryable:
        delay = max(delay, NOT_RETRYABLE_FLOOR)
    if error is not None and error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return delay
