"""The refresh engine: each venue's schedule, its last good data, and how it backs off.

One `VenueRefresher` per configured venue owns that venue's time: discovery, a refresh of every
account (concurrently, within the venue's rate limit), the last good answer per account and its
age, and when to call next (the wish, clamped by the rate limit; after failures, exponential backoff
with jitter, never sooner than the venue's retry-after). Errors are values: nothing raises past it.
The TUI and `--once` drive the same refreshers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any

from .assets import AssetNames
from .config import Config, ConfigError, VenueConfig, resolve_secrets
from .money import Account, Balance
from .prices import KRAKEN, KrakenPrices, PriceBook, PriceRefresher
from .schedule import backoff
from .snapshot import AccountSnapshot, Snapshot, VenueSnapshot
from .valuation import appraise, held_assets
from .venues.base import VenueClient
from .venues.errors import ErrorKind, VenueError, guarded

REDISCOVER_SECONDS = 1800.0
ONCE_PATIENCE = 15.0  # --once waits out a rate limit this short instead of failing
EMPTY_CONFIRMATIONS = 3  # empty answers in a row before an account that had balances is taken as empty


@dataclass
class _AccountState:
    account: Account
    balances: tuple[Balance, ...] = ()
    fetched_at: float | None = None
    error: VenueError | None = None
    empty_answers: int = 0
    summary: Mapping[str, Decimal | bool | None] | None = None

    def snapshot(self) -> AccountSnapshot:
        return AccountSnapshot(
            self.account.id, self.account.name, self.balances, self.fetched_at, self.error, self.summary
        )


_Answer = tuple[list[Balance], Mapping[str, Any] | None]


@dataclass
class _Timing:
    started: float = 0.0
    round_trip: float | None = None
    next_at: float | None = None
    period: float | None = None
    discovered_at: float | None = None


class VenueRefresher:
    def __init__(
        self,
        name: str,
        kind: str,
        client: VenueClient | None,
        *,
        refresh_seconds: float,
        accounts: tuple[str, ...] = (),
        broken: VenueError | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        summaries: bool = False,
    ) -> None:
        """`summaries`: also fetch each account's summary (one more request each), for alert rules on it."""
        self.name = name
        self.summaries = summaries and hasattr(client, "account_summary")
        self.kind = kind
        self.client = client
        self.refresh_seconds = refresh_seconds
        self.configured = accounts
        self.broken = broken
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()
        self._accounts: dict[str, _AccountState] = {a: _AccountState(Account(a, a)) for a in accounts}
        self._error: VenueError | None = broken
        self._fetched_at: float | None = None
        self._failures = 0
        self._timing = _Timing()
        self.refreshing = False
        self.resumed = asyncio.Event()
        self.resumed.set()
        self.wake = asyncio.Event()

    # --- one refresh ------------------------------------------------------------------------------

    async def refresh(self) -> VenueSnapshot:
        """Discover if needed, fetch every account, record the outcome. Never raises."""
        self.refreshing = True
        self._timing.started = self._clock()
        try:
            if self.client is None:
                self._failures += 1
                return self.snapshot()
            if self._needs_discovery() and not await self._discover():
                return self.snapshot()
            await self._fetch_all()
            return self.snapshot()
        finally:
            self.refreshing = False

    def _needs_discovery(self) -> bool:
        last = self._timing.discovered_at
        if last is None:
            return True
        return not self.configured and self._clock() - last > REDISCOVER_SECONDS

    async def _discover(self) -> bool:
        assert self.client is not None
        try:
            found = await guarded(self.client.discover())
        except VenueError as exc:
            if self.configured:  # names are a nicety when the ids are configured: go on without them
                self._timing.discovered_at = self._clock()
                return True
            self._error = exc  # not marked as discovered: the next refresh tries again
            self._failures += 1
            return False
        self._timing.discovered_at = self._clock()
        if self.configured:
            by_ref = {a.id: a for a in found}
            by_ref.update({a.details["portfolio_uuid"]: a for a in found if "portfolio_uuid" in a.details})
            for ref, state in self._accounts.items():
                match = by_ref.get(ref)
                if match is not None:
                    state.account = Account(ref, match.name, match.details)
        else:
            known = self._accounts
            self._accounts = {a.id: known.get(a.id) or _AccountState(a) for a in found}
            for a in found:
                self._accounts[a.id].account = a
        self._error = None
        return True

    async def _fetch_all(self) -> None:
        states = list(self._accounts.values())
        if not states:
            self._error = None
            self._failures = 0
            self._fetched_at = self._wall()
            return
        results = await asyncio.gather(*(self._timed_fetch(s.account.id) for s in states))
        now = self._wall()
        durations = []
        successes = 0
        for state, (outcome, took) in zip(states, results, strict=True):
            durations.append(took)
            if isinstance(outcome, VenueError):
                state.error = outcome
                continue
            successes += 1
            self._accept(state, *outcome, now)
        self._timing.round_trip = statistics.median(durations) if durations else None
        if successes:
            self._fetched_at = now
            self._error = None
            self._failures = 0
        else:
            self._failures += 1
            self._error = None

    async def _timed_fetch(self, account_id: str) -> tuple[_Answer | VenueError, float]:
        assert self.client is not None
        started = self._clock()
        outcome: _Answer | VenueError
        try:
            if self.summaries:
                balances, summary = await asyncio.gather(
                    guarded(self.client.fetch(account_id)),
                    guarded(self.client.account_summary(account_id)),  # type: ignore[attr-defined]
                )
                outcome = (balances, summary)
            else:
                outcome = (await guarded(self.client.fetch(account_id)), None)
        except VenueError as exc:
            outcome = exc
        return outcome, self._clock() - started

    def _accept(
        self, state: _AccountState, balances: list[Balance], summary: Mapping[str, Any] | None, now: float
    ) -> None:
        """Take a good answer, except that an empty one where there were balances is not yet proof of zero."""
        state.summary = summary if summary is not None else state.summary
        if not balances and state.balances and state.empty_answers + 1 < EMPTY_CONFIRMATIONS:
            state.empty_answers += 1
            state.error = VenueError(
                ErrorKind.BAD_RESPONSE,
                f"answered with no balances where it had {len(state.balances)}: not taken as zero "
                f"unless it persists ({state.empty_answers}/{EMPTY_CONFIRMATIONS})",
            )
            return
        state.empty_answers = 0
        state.balances = tuple(balances)
        state.fetched_at = now
        state.error = None

    # --- time ----------------------------------------------------------------------------------------

    def next_delay(self) -> float:
        """Seconds from now until the next refresh should start."""
        calls = max(1, len(self._accounts)) + (1 if self._needs_discovery() else 0)
        rate_delay = self.client.delay_for(calls) if self.client is not None else 0.0
        if self._failures == 0:
            elapsed = self._clock() - self._timing.started
            delay = max(self.refresh_seconds - elapsed, rate_delay, 0.0)
            self._timing.period = max(self.refresh_seconds, elapsed + rate_delay)
            return delay
        return max(backoff(self.refresh_seconds, self._failures, self._rng, self._current_error()), rate_delay)

    def _current_error(self) -> VenueError | None:
        return self._error or next((s.error for s in self._accounts.values() if s.error is not None), None)

    def snapshot(self) -> VenueSnapshot:
        note = self.client.note() if self.client is not None else None
        period = self._timing.period
        if note is None and period is not None and period > self.refresh_seconds * 1.05:
            note = f"refresh every {period:.1f} s: the venue's rate limit allows no faster"
        return VenueSnapshot(
            name=self.name,
            kind=self.kind,
            accounts=tuple(s.snapshot() for s in self._accounts.values()),
            error=self._error,
            fetched_at=self._fetched_at,
            refreshing=self.refreshing,
            next_refresh_at=self._timing.next_at,
            round_trip=self._timing.round_trip,
            failures=self._failures,
            period=period,
            note=note,
        )

    # --- the loop -------------------------------------------------------------------------------------

    async def run(self, publish: Callable[[VenueSnapshot], Any]) -> None:
        """Refresh forever on the schedule, publishing a snapshot as each refresh starts and ends.

        `wake` starts the next refresh at once; clearing `resumed` pauses after the current one.
        """
        while True:
            await self.resumed.wait()
            self.wake.clear()
            self._timing.next_at = None
            self.refreshing = True
            publish(self.snapshot())
            await self.refresh()
            delay = self.next_delay()
            self._timing.next_at = self._wall() + delay
            publish(self.snapshot())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=delay)

    def refresh_now(self) -> None:
        self.wake.set()

    def pause(self) -> None:
        self.resumed.clear()

    def resume(self) -> None:
        self.resumed.set()
        self.wake.set()

    @property
    def paused(self) -> bool:
        return not self.resumed.is_set()


class Engine:
    """Every configured venue: its HTTP client, venue client and refresher. Use `async with`."""

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
        self._http: list[Any] = []

    async def __aenter__(self) -> Engine:
        from .venues import http
        from .venues.connect import connect

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
            web = http.new_client(self.config.prices.base_url)
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
        await asyncio.gather(*(web.aclose() for web in self._http), return_exceptions=True)
        self._http.clear()

    async def once(self, patience: float = ONCE_PATIENCE) -> Snapshot:
        """One refresh of every venue, concurrently.

        A venue that is only rate limited for a short while (another `--once` a moment ago used up
        Kraken's counter) is waited for and tried once more, rather than reported as failed.
        """
        venues = list(await asyncio.gather(*(r.refresh() for r in self.refreshers)))
        retry = [i for i, v in enumerate(venues) if _briefly_rate_limited(v, patience)]
        if retry:
            again = await asyncio.gather(*(self._after(self.refreshers[i]) for i in retry))
            for i, snapshot in zip(retry, again, strict=True):
                venues[i] = snapshot
        return self.appraised(venues, await self.price(venues))

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

    def seen(self, snapshot: VenueSnapshot) -> None:
        """A venue's refresh as it is published: a finished one is kept, and an asset it holds that the
        prices do not cover yet wakes the price source, once every venue has answered (or failed) once, so
        the first prices cover them all."""
        if snapshot.refreshing:
            return
        self.latest[snapshot.name] = snapshot
        everyone = len(self.latest) == len(self.refreshers)
        if everyone and self.prices is not None and self.prices.wants(held_assets([snapshot], self.names)):
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
        return Snapshot(tuple(venues), now, appraise(venues, book, self.names, now) if book is not None else None)

    @staticmethod
    async def _after(refresher: VenueRefresher) -> VenueSnapshot:
        await asyncio.sleep(refresher.next_delay())
        return await refresher.refresh()


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
