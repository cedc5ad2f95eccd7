"""The drill-downs `serve` answers (`/detail/intx`, `/detail/kraken`), fetched with the server's own venue
clients: the same signer, nonces and rate limiter as its refreshes, never a second set. Each answer is
kept for the venue's refresh period, and viewers asking meanwhile (or while it is being fetched) share
it: many viewers cost one call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tui.credentials import redact
from tui.engine.engine import Engine
from tui.engine.refresher import VenueRefresher
from tui.money import fmt
from tui.venues.errors import VenueError
from tui.venues.intx import IntxClient
from tui.venues.kraken import KrakenCustodyClient
from tui.venues.kraken_vault import VaultDetails

MAX_KEPT = 256  # answers kept at most, whatever viewers ask for
AT_ONCE = 2  # drill-downs fetched at once per venue: the key's rate budget is the refreshes' first

Answer = tuple[int, dict[str, Any]]  # HTTP status, JSON body


@dataclass
class _Entry:
    task: asyncio.Task[Answer]
    done_at: float | None = None


class Details:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self._clock = clock
        self.kept: dict[tuple[str, ...], _Entry] = {}
        self._at_once: dict[str, asyncio.Semaphore] = {}

    async def intx(self, venue: str, account: str, asset: str) -> Answer:
        """`{"balance": ..., "summary": ...}`: one asset's balance with every field, and its portfolio's summary."""
        refresher, problem = self._find(venue, account, IntxClient, "INTX", asset)
        if refresher is None:
            return problem
        client = refresher.client
        assert isinstance(client, IntxClient)

        async def fetch() -> dict[str, Any]:
            balance, summary = await asyncio.gather(
                refresher.call(client.balance(account, asset)), refresher.call(client.summary(account))
            )
            return {"balance": balance.as_record(), "summary": summary.as_record()}

        return await self._kept(("intx", venue, account, asset), refresher, fetch)

    async def kraken(self, venue: str, account: str) -> Answer:
        """The vault's details as GetCustodyVault gives them, decimals as exact strings."""
        refresher, problem = self._find(venue, account, KrakenCustodyClient, "Kraken custody")
        if refresher is None:
            return problem
        client = refresher.client
        assert isinstance(client, KrakenCustodyClient)

        async def fetch() -> dict[str, Any]:
            return vault_record(await refresher.call(client.vault(account)))

        return await self._kept(("kraken", venue, account), refresher, fetch)

    def _find(
        self, venue: str, account: str, kind: type, label: str, asset: str | None = None
    ) -> tuple[VenueRefresher | None, Answer]:
        """The venue's refresher, if it polls this account (and it holds this asset): a viewer can ask only
        about what the server already shows, so no viewer can spend the key's budget on anything else."""
        refresher = next((r for r in self.engine.refreshers if r.name == venue and isinstance(r.client, kind)), None)
        if refresher is None:
            return None, (404, {"error": f"no {label} venue named {venue[:80]!r} here"})
        known = self.engine.latest.get(venue) or refresher.snapshot()
        held = next((a for a in known.accounts if a.id == account), None)
        if held is None:
            return None, (404, {"error": f"{venue} has no account {account[:80]!r}"})
        if asset is not None and asset not in {b.asset for b in held.balances}:
            return None, (404, {"error": f"{venue} shows no {asset[:40]!r} in {account[:80]!r}"})
        return refresher, (200, {})

    async def _kept(
        self, key: tuple[str, ...], refresher: VenueRefresher, fetch: Callable[[], Awaitable[dict[str, Any]]]
    ) -> Answer:
        period = refresher.snapshot().period or refresher.refresh_seconds
        entry = self.kept.get(key)
        now = self._clock()
        if entry is None or (entry.done_at is not None and now - entry.done_at >= period):
            self._forget(now, period)
            if len(self.kept) >= MAX_KEPT:
                return 503, {"error": "too many drill-downs at once: try again in a moment"}
            turn = self._at_once.setdefault(refresher.name, asyncio.Semaphore(AT_ONCE))
            entry = _Entry(asyncio.get_running_loop().create_task(_answer(fetch, turn)))
            self.kept[key] = entry
            entry.task.add_done_callback(lambda _: setattr(entry, "done_at", self._clock()))
        return await asyncio.shield(entry.task)  # a viewer that leaves does not cancel the others' answer

    def _forget(self, now: float, period: float) -> None:
        """Drop answers older than a period; past the bound, the oldest finished ones."""
        for key, entry in list(self.kept.items()):
            if entry.done_at is not None and now - entry.done_at >= period:
                del self.kept[key]
        finished = [key for key, entry in self.kept.items() if entry.done_at is not None]
        for key in finished[: max(0, len(self.kept) - MAX_KEPT + 1)]:
            del self.kept[key]

    def close(self) -> None:
        for entry in self.kept.values():
            entry.task.cancel()
        self.kept.clear()


async def _answer(fetch: Callable[[], Awaitable[dict[str, Any]]], turn: asyncio.Semaphore) -> Answer:
    try:
        async with turn:
            return 200, await fetch()
    except VenueError as exc:
        return 502, {"error": redact(exc.message), "error_kind": exc.kind.value}


def vault_record(vault: VaultDetails) -> dict[str, Any]:
    return {
        "assets": {
            name: {
                "usd_price": _exact(item.usd_price),
                "quantity": _exact(item.quantity),
                "usd_value": _exact(item.usd_value),
                "available_quantity": _exact(item.available_quantity),
                "available_usd_value": _exact(item.available_usd_value),
            }
            for name, item in vault.assets.items()
        },
        "balance_fiat": _exact(vault.balance_fiat),
        "available_balance_fiat": _exact(vault.available_balance_fiat),
        "status": vault.status,
    }


def _exact(amount: Decimal | None) -> str | None:
    return None if amount is None else fmt(amount)
