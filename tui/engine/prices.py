"""What an asset is worth in US dollars, from a public price source (`venues/kraken_prices.py`). USD
itself is exactly 1; a stablecoin is priced by its own market like anything else; an asset with no USD
market has no price, never a price of 0.

The source keeps its own schedule and backoff (`PriceRefresher`), so a failing or slow price source never
delays a balance and never spends a venue key's private rate limit. Its prices go stale after a few
periods and unknown after many: a value is shown old, then not at all, never wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tui.engine.schedule import backoff
from tui.venues.errors import VenueError, guarded
from tui.venues.kraken_prices import USD, KrakenPrices, Price

STALE_AFTER_PERIODS = 3  # prices older than this many periods are shown as stale
UNKNOWN_AFTER_PERIODS = 15  # and older than this, not at all
MIN_GAP = 10.0  # seconds between two fetches at the least, however many new assets appear


ONE_DOLLAR = Price(Decimal(1), "")


@dataclass(frozen=True, slots=True)
class PriceBook:
    """The prices in force: the last good answer, when it came, and why the latest attempt failed."""

    source: str
    prices: Mapping[str, Price] = field(default_factory=dict)  # canonical asset name -> price
    fetched_at: float | None = None  # wall time of the last good answer
    error: VenueError | None = None  # the latest attempt's failure, if it failed
    unpriceable: frozenset[str] = frozenset()  # assets the source has no USD market for
    period: float = 60.0

    def age(self, now: float) -> float | None:
        return None if self.fetched_at is None else max(0.0, now - self.fetched_at)

    def stale(self, now: float) -> bool:
        """Older than a few periods. A failure alone does not make a minute-old price stale: the failure
        is said once (the status line, `prices.error`), the age where the values are."""
        age = self.age(now)
        return age is not None and age > STALE_AFTER_PERIODS * self.period

    def usable(self, now: float) -> bool:
        age = self.age(now)
        return age is not None and age <= UNKNOWN_AFTER_PERIODS * self.period

    def price(self, asset: str, now: float) -> Price | None:
        """The price of a canonical asset name, if one is known and not too old. Without usable prices even
        USD has none: a total that counted only the dollars would look like a fall in value."""
        if not self.usable(now):
            return None
        return ONE_DOLLAR if asset == USD else self.prices.get(asset)


class PriceRefresher:
    """The price source on its own schedule: every `refresh_seconds`, sooner when asked (new assets), with
    exponential backoff and jitter after failures. Never raises; its `book` is always the prices in force.

    The backoff starts at the period or ten seconds (`schedule.RETRY_BASE`), whichever is shorter: a source
    that failed once is tried again soon, so one glitch costs seconds of values, not a minute without any."""

    def __init__(
        self,
        source: KrakenPrices,
        refresh_seconds: float,
        *,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.refresh_seconds = refresh_seconds
        self._wall = wall
        self._clock = clock
        self._rng = rng or random.Random()
        self.book = PriceBook(source.source, period=refresh_seconds)
        self.min_gap = MIN_GAP
        self.failures = 0
        self.wake = asyncio.Event()
        self._last_try: float | None = None

    async def refresh(self, assets: Iterable[str]) -> PriceBook:
        self._last_try = self._clock()
        try:
            prices, unpriceable = await guarded(self.source.fetch(assets))
        except VenueError as exc:
            self.failures += 1
            self.book = PriceBook(
                self.book.source, self.book.prices, self.book.fetched_at, exc, self.book.unpriceable, self.book.period
            )
            return self.book
        self.failures = 0
        self.book = PriceBook(self.book.source, prices, self._wall(), None, unpriceable, self.refresh_seconds)
        return self.book

    def next_delay(self) -> float:
        if self.failures == 0:
            return self.refresh_seconds
        return backoff(self.refresh_seconds, self.failures, self._rng, self.book.error)

    def wants(self, assets: Iterable[str]) -> bool:
        """True when some of these assets have neither a price nor a known lack of one (a new holding)."""
        book = self.book
        return any(a != USD and a not in book.prices and a not in book.unpriceable for a in assets)

    async def run(self, assets: Callable[[], set[str]], publish: Callable[[PriceBook], Any]) -> None:
        """Forever: fetch the prices of `assets()`, publish the book, wait for the next turn or a wake."""
        while True:
            self.wake.clear()  # before the fetch: new assets announced while it runs still wake the next one
            held = assets()
            if held:
                publish(await self.refresh(held))
                delay = self.next_delay()
            else:
                delay = self.refresh_seconds  # nothing held yet: wait to be woken by the first balances
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=delay)
            if self.wake.is_set() and self._last_try is not None:  # woken early: not sooner than min_gap
                await asyncio.sleep(max(0.0, self._last_try + self.min_gap - self._clock()))

    def refresh_soon(self) -> None:
        """New assets appeared: fetch again soon (at most every `min_gap` seconds), unless failing (the
        backoff decides then)."""
        if self.failures == 0:
            self.wake.set()
