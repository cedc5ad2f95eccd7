"""Snapshots from a `serve`: the `SnapshotSource` of a viewer attached to a server. It reads the server's
snapshot every second; while the server is away it hands on the last snapshot marked failing, with its
age, and keeps trying (1 s, then every few seconds) until the server is back.

Pause and refresh act on this view only: a viewer never changes what the server does.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from tui.engine.prices import PriceBook
from tui.money import Balance
from tui.remote.client import AttachError, ServerClient
from tui.snapshot.model import Snapshot, VenueSnapshot
from tui.snapshot.pacing import Pacing
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.intx_summary import PortfolioSummary
from tui.venues.kraken_vault import VaultDetails

PERIOD = 1.0  # how often a viewer reads the server: it answers from memory, so this costs it little
MAX_RETRY = 8.0


class RemoteSource:
    def __init__(self, client: ServerClient, period: float = PERIOD) -> None:
        self.client = client
        self.via: str | None = client.via
        self.period = period
        self.last: Snapshot | None = None
        self.failures = 0
        self._pacing = Pacing()

    async def __aenter__(self) -> Self:
        await self.client.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.client.__aexit__(exc_type, exc, tb)

    async def once(self) -> Snapshot:
        await self.client.check()
        return await self.client.snapshot()

    async def run(self, on_venue: Callable[[VenueSnapshot], Any], on_prices: Callable[[PriceBook], Any]) -> None:
        while True:
            await self._pacing.turn()
            try:
                snapshot = await self.client.snapshot()
            except AttachError as exc:
                self.failures += 1
                for venue in self._away(exc):
                    on_venue(venue)
            else:
                self.failures, self.last = 0, snapshot
                for venue in snapshot.venues:
                    on_venue(venue)
                if snapshot.appraisal is not None and snapshot.appraisal.book is not None:
                    on_prices(snapshot.appraisal.book)
            self._pacing.went()
            delay = self.period if not self.failures else min(self.period * 2 ** (self.failures - 1), MAX_RETRY)
            await self._pacing.rest(delay)

    def _away(self, exc: AttachError) -> list[VenueSnapshot]:
        """The last snapshot, each venue marked failing with the cause: its age goes on showing how old."""
        if self.last is None:
            return []
        error = VenueError(ErrorKind.UNREACHABLE, exc.message)
        return [
            dataclasses.replace(
                v, error=error, failures=v.failures + self.failures, refreshing=False, next_refresh_at=None
            )
            for v in self.last.venues
        ]

    def refresh_now(self) -> None:
        self._pacing.now()

    def pause(self) -> None:
        self._pacing.pause()

    def resume(self) -> None:
        self._pacing.resume()

    def details(self, venue: str) -> RemoteDetails:
        return RemoteDetails(self.client, venue)


class RemoteDetails:
    """A drill-down's calls, answered by the server from its own client (its signer, its rate budget)."""

    def __init__(self, client: ServerClient, venue: str) -> None:
        self._client = client
        self._venue = venue
        self._pending: dict[str, asyncio.Task[tuple[Balance, PortfolioSummary]]] = {}

    async def balance(self, account: str, asset: str) -> Balance:
        return (await self._intx(account, asset))[0]

    async def summary(self, account: str) -> PortfolioSummary:
        """The summary that came with this account's latest balance (the server answers both at once)."""
        pending = self._pending.get(account)
        if pending is None:
            raise VenueError(ErrorKind.REQUEST, "ask for a balance of this portfolio first", retryable=False)
        return (await pending)[1]

    async def vault(self, account: str) -> VaultDetails:
        details: VaultDetails = await self._wrap(self._client.vault(self._venue, account))
        return details

    def _intx(self, account: str, asset: str) -> asyncio.Task[tuple[Balance, PortfolioSummary]]:
        task = asyncio.ensure_future(self._wrap(self._client.intx_detail(self._venue, account, asset)))
        self._pending[account] = task
        return task

    @staticmethod
    async def _wrap(call: Any) -> Any:
        try:
            return await call
        except AttachError as exc:
            raise VenueError(ErrorKind.UNREACHABLE, exc.message) from None
