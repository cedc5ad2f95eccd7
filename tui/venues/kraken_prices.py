"""Kraken's public spot market data, for USD prices (no key): AssetPairs says which pair prices each asset
in USD (its quote is USD), Ticker gives those pairs' last trades (`c[0]`) in one request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from tui.assets import AssetNames
from tui.money import AmountError, parse_amount
from tui.venues import http
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.kraken import read_payload

USD = "USD"
KRAKEN = "kraken"
PAIRS_MAX_AGE = 6 * 3600.0  # AssetPairs changes when Kraken lists a market: re-read it now and then


@dataclass(frozen=True, slots=True)
class Price:
    """An asset's price in US dollars, exact, and the market it came from."""

    usd: Decimal
    pair: str  # the market it came from ("XXBTZUSD"); "" for USD itself


class KrakenPrices:
    """Kraken's public market data: which pair prices each asset in USD, and those pairs' last trades."""

    source = KRAKEN

    def __init__(self, client: httpx.AsyncClient, names: AssetNames, clock: Callable[[], float] = time.monotonic):
        self._client = client
        self._names = names
        self._clock = clock
        self._pairs: dict[str, str] = {}  # canonical asset -> pair name
        self._pairs_at: float | None = None
        self._ahead: asyncio.Task[dict[str, str]] | None = None  # AssetPairs read ahead of the next fetch

    def read_ahead(self) -> None:
        """Start reading AssetPairs now, for the next `fetch`, if it has never been read: what a caller that
        knows that fetch will ask for an asset other than dollars (a venue answered holding one) does, so
        that AssetPairs travels while the other venues are still answering. The fetch waits for this read
        and fails with its failure: AssetPairs is asked once, as it would be without reading ahead."""
        if self._ahead is None and self._pairs_at is None:
            self._ahead = asyncio.ensure_future(self._usd_pairs(refresh=False))

    def cancel_ahead(self) -> None:
        """A read ahead that no fetch took (the caller failed or was cancelled first) is abandoned."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.cancel()
            ahead.add_done_callback(_settled)

    async def fetch(self, assets: Iterable[str]) -> tuple[dict[str, Price], frozenset[str]]:
        """Prices of these canonical assets, and those that have no USD market on Kraken."""
        wanted = sorted({a for a in assets if a != USD})
        if not wanted:  # nothing to ask (no venue holds anything but dollars): no request at all
            return {}, frozenset()
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            await ahead  # read just now: the call below finds it fresh
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


def _settled(task: asyncio.Task[dict[str, str]]) -> None:
    """Its failure, if it failed before it was abandoned, is taken: asyncio would log it as never retrieved."""
    if not task.cancelled():
        task.exception()
