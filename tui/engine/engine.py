"""Every configured venue's refresher and the price source, behind one object: what the TUI, `--once`,
`--watch` and `serve` drive. Each venue owns its time (`refresher.py`); prices keep their own
(`prices.py`).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx

from tui.assets import AssetNames
from tui.config import Config, ConfigError, VenueConfig, resolve_secrets
from tui.engine.prices import PriceBook, PriceRefresher
from tui.engine.refresher import ONCE_PATIENCE, VenueRefresher
from tui.monitor.valuation import appraise, held_assets
from tui.snapshot.model import Snapshot, VenueSnapshot
from tui.venues.base import VenueClient
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.kraken_prices import KRAKEN, USD, KrakenPrices

PRICES_TIMEOUT = httpx.Timeout(connect=3.0, read=5.0, write=5.0, pool=5.0)  # values wait less than balances


class Engine:
    """Every configured venue: its HTTP client, venue client and refresher, and the price source; a
    `SnapshotSource` that polls the venues itself. Use `async with`."""

    via: str | None = None

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        keep_nonces: bool = True,
    ) -> None:
        """`keep_nonces`: Kraken's last nonce per key is kept on disk across runs (not for the demo)."""
        self.config = config
        self.keep_nonces = keep_nonces
        self._clock = clock
        self._wall = wall
        self._rng = rng
        self._secrets = [resolve_secrets(v, config) for v in config.venues]
        _refuse_shared_kraken_keys(config, self._secrets)
        self.names = AssetNames(config.assets)
        self.refreshers: list[VenueRefresher] = []
        self.prices: PriceRefresher | None = None  # None when [prices] source = "none"
        self.latest: dict[str, VenueSnapshot] = {}  # each venue's last finished refresh
        self._polling = False  # joined the keys' ledgers as a poller (left on exit)
        self._http: list[Any] = []

    async def __aenter__(self) -> Engine:
        from tui.venues import http
        from tui.venues.connect import connect

        for venue, secrets in zip(self.config.venues, self._secrets, strict=True):
            web = http.new_client(venue.base_url)
            self._http.append(web)
            client: VenueClient | None
            try:
                client, broken = connect(venue.kind.kind, web, secrets, keep_nonces=self.keep_nonces), None
            except VenueError as exc:
                client, broken = None, exc
            self.refreshers.append(self._refresher(venue, client, broken))
        if self.config.prices.source == KRAKEN:
            web = http.new_client(self.config.prices.base_url, timeout=PRICES_TIMEOUT)
            self._http.append(web)
            source = KrakenPrices(web, self.names)  # its pacing is in real time: the venue's limits are
            self.prices = PriceRefresher(source, self.config.prices.refresh_seconds, wall=self._wall, rng=self._rng)
        return self

    def _refresher(self, venue: VenueConfig, client: VenueClient | None, broken: VenueError | None) -> VenueRefresher:
        return VenueRefresher(
            venue.name,
            venue.kind.kind,
            client,
            refresh_seconds=self.config.refresh_seconds,
            accounts=venue.accounts,
            summaries=any(rule.wants_summary(venue.name) for rule in self.config.alerts),
            broken=broken,
            clock=self._clock,
            wall=self._wall,
            rng=self._rng,
        )

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._polling:
            await asyncio.gather(*(ledger.leave() for ledger in self._ledgers()), return_exceptions=True)
        await asyncio.gather(*(web.aclose() for web in self._http), return_exceptions=True)
        self._http.clear()

    async def join_pollers(self, url: str | None = None) -> list[str]:
        """Record this process as a poller of every key it uses (`url`: where a `serve` shares its answers);
        what to tell the operator of each other live balance-tui polling one of them, once, at start."""
        self._polling = True
        said: list[str] = []
        for refresher in self.refreshers:
            ledger = getattr(refresher.client, "ledger", None)
            if ledger is None:
                continue
            for other in await ledger.join(url):
                line = f"{refresher.name}: {other.describe()}; both keep within the key's budget"
                if line not in said:
                    said.append(line)
        return said

    def _ledgers(self) -> list[Any]:
        return [ledger for r in self.refreshers if (ledger := getattr(r.client, "ledger", None)) is not None]

    async def once(self, patience: float = ONCE_PATIENCE) -> Snapshot:
        """One refresh of every venue, concurrently, then their prices.

        A venue that is only rate limited for a short while (another `--once` a moment ago used up
        Kraken's counter) is waited for and tried once more, rather than reported as failed.

        The price source's list of markets (Kraken's AssetPairs) is read as soon as one venue's final answer
        holds an asset other than dollars, while the others are still answering: the prices would ask for it
        anyway, once every venue had answered (issue 24: one round trip less; the same requests, and none
        when no venue holds anything but dollars)."""

        async def refreshed(refresher: VenueRefresher) -> VenueSnapshot:
            snapshot = await refresher.refresh(urgent=True)
            final = not _briefly_rate_limited(snapshot, patience)  # a retried venue's answer is replaced
            if self.prices is not None and final and held_assets([snapshot], self.names) - {USD}:
                self.prices.source.read_ahead()
            return snapshot

        try:
            venues = list(await asyncio.gather(*(refreshed(r) for r in self.refreshers)))
            retry = [i for i, v in enumerate(venues) if _briefly_rate_limited(v, patience)]
            if retry:
                again = await asyncio.gather(*(self._after(self.refreshers[i]) for i in retry))
                for i, snapshot in zip(retry, again, strict=True):
                    venues[i] = snapshot
            return self.appraised(venues, await self.price(venues))
        finally:
            if self.prices is not None:
                self.prices.source.cancel_ahead()

    async def run(self, on_venue: Callable[[VenueSnapshot], Any], on_prices: Callable[[PriceBook], Any]) -> None:
        """Every venue on its schedule and the price source on its own, until cancelled: what `--watch`
        (and any sink that is not the TUI) runs. A sink's exception (a closed pipe) ends it."""

        def venue(snapshot: VenueSnapshot) -> None:
            self.seen(snapshot)
            on_venue(snapshot)

        tasks = [asyncio.create_task(r.run(venue)) for r in self.refreshers]
        if self.prices is not None:
            tasks.append(asyncio.create_task(self.prices.run(self.held, on_prices)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def refresh_now(self) -> None:
        for refresher in self.refreshers:
            refresher.refresh_now()

    def pause(self) -> None:
        for refresher in self.refreshers:
            refresher.pause()

    def resume(self) -> None:
        for refresher in self.refreshers:
            refresher.resume()

    def details(self, venue: str) -> VenueClient | None:
        """The venue's own client: a drill-down's calls go through its signer and rate limiter."""
        return next((r.client for r in self.refreshers if r.name == venue), None)

    def seen(self, snapshot: VenueSnapshot) -> None:
        """A venue's refresh as it is published: a finished one is kept, and once every venue has answered
        (or failed) once, so that the first prices cover them all, any held asset the prices do not cover
        yet wakes the price source. Every venue's assets count, not only this one's: when the last venue
        to answer first fails, the others' assets still need their first prices."""
        if snapshot.refreshing:
            return
        self.latest[snapshot.name] = snapshot
        everyone = len(self.latest) == len(self.refreshers)
        if everyone and self.prices is not None and self.prices.wants(self.held()):
            self.prices.refresh_soon()

    def held(self) -> set[str]:
        """Every asset the venues hold now (canonical names): what the price source is asked for."""
        return held_assets(self.latest.values(), self.names)

    async def price(self, venues: list[VenueSnapshot]) -> PriceBook | None:
        """The prices of every asset these venues hold, fetched now (None without a price source)."""
        if self.prices is None:
            return None
        return await self.prices.refresh(held_assets(venues, self.names))

    def appraised(self, venues: list[VenueSnapshot], book: PriceBook | None) -> Snapshot:
        now = self._wall()
        worth = appraise(venues, book, self.names, now) if book is not None else None
        return Snapshot(tuple(venues), now, worth, self.config.assets)

    @staticmethod
    async def _after(refresher: VenueRefresher) -> VenueSnapshot:
        await asyncio.sleep(refresher.next_delay())
        return await refresher.refresh(urgent=True)


def _briefly_rate_limited(snapshot: VenueSnapshot, patience: float) -> bool:
    errors = [snapshot.error] if snapshot.error else [a.error for a in snapshot.accounts if a.error]
    return bool(errors) and all(e.kind is ErrorKind.RATE_LIMIT and (e.retry_after or 0) <= patience for e in errors)


def _refuse_shared_kraken_keys(config: Config, secrets: list[dict[str, Any]]) -> None:
    seen: dict[str, VenueConfig] = {}
    for venue, loaded in zip(config.venues, secrets, strict=True):
        if venue.kind.kind != "kraken-custody":
            continue
        tag = hashlib.sha256(loaded["api_key"].reveal().encode()).hexdigest()
        if tag in seen:
            raise ConfigError(
                config.path,
                f"venues {seen[tag].name!r} and {venue.name!r} use the same Kraken key: their nonces would "
                "collide; use one [[venue]] per key",
                key=f"venue[{venue.index + 1}].api_key",
                line=config.line_of("venue", venue.index, "api_key"),
            )
        seen[tag] = venue
