"""What the engine hands every sink: immutable snapshots of venues and accounts, and their contract shape."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tui.money import Balance
from tui.venues.errors import VenueError

if TYPE_CHECKING:
    from tui.monitor.valuation import Appraisal


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """One account (a Kraken vault, an INTX portfolio) as last refreshed."""

    id: str
    name: str
    balances: tuple[Balance, ...]  # the last good answer (kept when a refresh fails)
    fetched_at: float | None  # wall time of that answer; None if never fetched
    error: VenueError | None = None  # why the latest refresh of this account failed
    summary: Mapping[str, Decimal | bool | None] | None = None  # account-wide fields, when asked for

    @property
    def ok(self) -> bool:
        return self.error is None and self.fetched_at is not None


@dataclass(frozen=True, slots=True)
class VenueSnapshot:
    """One venue as last refreshed: its accounts, its state and its pace."""

    name: str
    kind: str
    accounts: tuple[AccountSnapshot, ...]
    error: VenueError | None = None  # the venue as a whole failed (discovery, auth, lockout)
    fetched_at: float | None = None  # when the last refresh with any good data ended
    refreshing: bool = False
    next_refresh_at: float | None = None  # wall time
    round_trip: float | None = None  # seconds, median of the last refresh's requests
    failures: int = 0  # consecutive failed refreshes
    period: float | None = None  # the refresh period in force after rate-limit clamping
    note: str | None = None  # e.g. clock skew or rate-limit clamping, for the operator

    @property
    def ok(self) -> bool:
        return self.error is None and all(a.ok for a in self.accounts)

    def first_error(self) -> VenueError | None:
        return self.error or next((a.error for a in self.accounts if a.error is not None), None)

    def age(self, now: float | None = None) -> float | None:
        if self.fetched_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.fetched_at)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every venue at one moment, with what the holdings were worth then (`appraisal`, when priced)."""

    venues: tuple[VenueSnapshot, ...]
    generated_at: float = field(default_factory=time.time)
    appraisal: Appraisal | None = None
    names: Mapping[str, str] = field(default_factory=dict)  # the config's [assets]: how totals name assets

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.venues)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
