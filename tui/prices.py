"""What an asset is worth in US dollars, from a public price source: Kraken's spot market data (no key).

AssetPairs says which pair prices an asset in USD (its quote is USD); Ticker gives the last trade price
(`c[0]`) of every held asset's pair in one request. USD itself is exactly 1; a stablecoin is priced by
its own pair like anything else; an asset with no USD pair has no price, never a price of 0.

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

import httpx

from .assets import AssetNames
from .money import AmountError, parse_amount
from .schedule import backoff
from .venues import http
from .venues.errors import ErrorKind, VenueError, guarded
from .venues.kraken import read_payload

USD = "USD"
KRAKEN = "kraken"
STALE_AFTER_PERIODS = 3  # prices older than this many periods are shown as stale
UNKNOWN_AFTER_PERIODS = 15  # and older than this, not at all
MIN_GAP = 10.0  # seconds between two fetches at the least, however many new assets appear
PAIRS_MAX_AGE = 6 * 3600.0  # AssetPairs changes when Kraken lists a market: re-read it now and then


@dataclass(frozen=True, slots=True)
class Price:
    usd: Decimal
    pair: str  # the market it came from ("XXBTZUSD"); "" for USD itself


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


class KrakenPrices:
    """Kraken's public market data: which pair prices each asset in USD, and those pairs' last trades."""

    source = KRAKEN

    def __init__(self, client: httpx.AsyncClient, names: AssetNames, clock: Callable[[], float] = time.monotonic):
        self._client = client
        self._names = names
        self._clock = clock
        self._pairs: dict[str, str] = {}  # canonical asset -> pair name
        self._pairs_at: float | None = None

    async def fetch(self, assets: Iterable[str]) -> tuple[dict[str, Price], frozenset[str]]:
        """Prices of these canonical assets, and those that have no USD market on Kraken."""
        wanted = sorted({a for a in assets if a != USD})
        pairs = await self._usd_pairs(refresh=any(a not in self._pairs for a in wanted))
        asked = {pairs[a]: a for a in wanted if a in pairs}
        last = await self._tickers(sorted(asked)) if asked else {}
        prices = {asset: Price(last[pair], pair) for pair, asset in asked.items() if pair in last}
        return prices, frozenset(a for a in wanted if a not in pairs)

    async def usd_markets(self) -> dict[str, str]:
        """Each asset that has a USD market, and that market's pair (`config check` asks once)."""
        return await self._usd_pairs(refresh=False)

    async def _usd_pairs(self, refresh: bool) -> dict[str, str]:
        """AssetPairs, read once and again when an asset has no known pair (at most every few minutes) or
        after some hours: Kraken answers an unknown pair with an error for the whole Ticker request."""
        now = self._clock()
        age = None if self._pairs_at is None else now - self._pairs_at
        if age is None or age > PAIRS_MAX_AGE or (refresh and age > 300):
            payload = await self._get("/0/public/AssetPairs", "AssetPairs")
            self._pairs = usd_pairs(payload.get("result"), self._names)
            self._pairs_at = now
        return self._pairs

    async def _tickers(self, pairs: list[str]) -> dict[str, Decimal]:
        try:
            payload = await self._get("/0/public/Ticker", "Ticker", {"pair": ",".join(pairs)})
        except VenueError as exc:
            if exc.kind is ErrorKind.REQUEST:  # an unknown pair: read AssetPairs afresh next time
                self._pairs_at = None
            raise
        return last_trades(payload.get("result"))

    async def _get(self, path: str, method: str, params: Mapping[str, str] | None = None) -> Mapping[str, Any]:
        request = self._client.build_request("GET", path, params=params, headers={"Accept": "application/json"})
        return read_payload(await http.send(self._client, request), method)


def usd_pairs(result: Any, names: AssetNames) -> dict[str, str]:
    """Canonical asset -> the name of a pair that prices it in USD. Dark-pool pairs (".d") are left out;
    where several remain, the plainest name wins (no suffix, then the shortest, then alphabetical)."""
    if not isinstance(result, Mapping):
        raise VenueError(ErrorKind.BAD_RESPONSE, "AssetPairs: Kraken's answer is not an object of pairs")
    candidates: dict[str, list[str]] = {}
    for name, info in result.items():
        if not isinstance(info, Mapping) or str(name).endswith(".d"):
            continue
        base, quote = info.get("base"), info.get("quote")
        if not isinstance(base, str) or not isinstance(quote, str) or names.canonical(quote) != USD:
            continue
        candidates.setdefault(names.canonical(base), []).append(str(name))
    return {asset: min(found, key=lambda n: ("." in n, len(n), n)) for asset, found in candidates.items()}


def last_trades(result: Any) -> dict[str, Decimal]:
    """Pair -> the last trade price (`c[0]`), exact, from a Ticker answer."""
    if not isinstance(result, Mapping):
        raise VenueError(ErrorKind.BAD_RESPONSE, "Ticker: Kraken's answer is not an object of pairs")
    prices = {}
    for pair, info in result.items():
        last = info.get("c") if isinstance(info, Mapping) else None
        try:
            price = parse_amount(last[0]) if isinstance(last, list) and last else None
        except AmountError as exc:
            raise VenueError(ErrorKind.BAD_RESPONSE, f"Ticker: {str(pair)[:20]}: {exc}") from None
        if price is None or price < 0:
            raise VenueError(ErrorKind.BAD_RESPONSE, f"Ticker: no last trade price for {str(pair)[:20]}")
        prices[str(pair)] = price
    return prices


class PriceRefresher:
    """The price source on its own schedule: every `refresh_seconds`, sooner when asked (new assets), with
    exponential backoff and jitter after failures. Never raises; its `book` is always the prices in force."""

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
            held = assets()
            if held:
                publish(await self.refresh(held))
                delay = self.next_delay()
            else:
                delay = self.refresh_seconds  # nothing held yet: wait to be woken by the first balances
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=delay)
            if self.wake.is_set() and self._last_try is not None:  # woken early: not sooner than MIN_GAP
                await asyncio.sleep(max(0.0, self._last_try + MIN_GAP - self._clock()))

    def refresh_soon(self) -> None:
        """New assets appeared: fetch again soon (at most every MIN_GAP seconds), unless failing (the
        backoff decides then)."""
        if self.failures == 0:
            self.wake.set()
