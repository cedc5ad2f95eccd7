"""Per asset, the sum across every venue and account, exactly, and who holds it.

A venue's last good data still counts when its latest refresh failed, but the total then says it is
stale: a grand total must never look fresher than its oldest part.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from tui.assets import AssetNames
from tui.money import total
from tui.snapshot.model import VenueSnapshot
from tui.venues import KINDS

STALE_AFTER_PERIODS = 3


@dataclass(frozen=True, slots=True)
class Holding:
    venue: str
    account_id: str
    account: str
    asset: str  # as the venue spells it
    amount: Decimal
    stale: bool


@dataclass(frozen=True, slots=True)
class Total:
    asset: str  # the canonical name
    amount: Decimal
    holdings: tuple[Holding, ...]

    @property
    def stale(self) -> bool:
        return any(h.stale for h in self.holdings)

    @property
    def key(self) -> str:
        return f"total:{self.asset}"


def is_stale(venue: VenueSnapshot, now: float) -> bool:
    """The venue's data is not the latest answer: it failed, or it is older than a few refresh periods."""
    if venue.error is not None or venue.failures > 0:
        return True
    age = venue.age(now)
    return age is not None and venue.period is not None and age > STALE_AFTER_PERIODS * venue.period


def totals(venues: Iterable[VenueSnapshot], names: AssetNames, now: float) -> list[Total]:
    grouped: dict[str, list[Holding]] = {}
    for venue in venues:
        kind = KINDS.get(venue.kind)
        if kind is None:
            continue
        venue_stale = is_stale(venue, now)
        for account in venue.accounts:
            if account.fetched_at is None:
                continue
            for balance in account.balances:
                amount = balance.amount(kind.quantity)
                if amount is None:
                    continue
                holding = Holding(
                    venue.name,
                    account.id,
                    account.name,
                    balance.asset,
                    amount,
                    venue_stale or account.error is not None,
                )
                grouped.setdefault(names.canonical(balance.asset), []).append(holding)
    result = []
    for asset in sorted(grouped):
        holdings = grouped[asset]
        result.append(Total(asset, total(h.amount for h in holdings), tuple(holdings)))
    return result
