"""What the holdings are worth: each balance's holding × its asset's USD price, exactly, summed per
account, per venue and for the firm, with INTX loans as liabilities (gross, loans, net).

A balance whose asset has no price is unpriced: its value is None, never 0, it is left out of every sum,
and its asset is listed. No Textual here: every sink shows what this computes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from tui.assets import AssetNames
from tui.money import Balance, mul, sub, total
from tui.snapshot.model import VenueSnapshot
from tui.venues import KINDS

if TYPE_CHECKING:
    from tui.engine.prices import PriceBook
    from tui.venues.kraken_prices import Price

LOAN = "loan"  # the INTX field that is a liability


@dataclass(frozen=True, slots=True)
class Worth:
    """One balance's worth: its price, the holding's value, and the loan's (INTX)."""

    price: Price | None
    value: Decimal | None
    loan_value: Decimal | None = None


NO_WORTH = Worth(None, None)


@dataclass(frozen=True, slots=True)
class Sums:
    """Values summed over some balances: what is held, what is owed, and the difference."""

    gross: Decimal = Decimal(0)
    loans: Decimal = Decimal(0)
    priced: int = 0  # how many balances had a price

    @property
    def net(self) -> Decimal:
        return sub(self.gross, self.loans)


@dataclass(frozen=True, slots=True)
class Appraisal:
    """The worth of every balance of some venues under one price book."""

    book: PriceBook | None
    now: float
    balances: dict[tuple[str, str, str], Worth] = field(default_factory=dict)  # (venue, account id, asset)
    accounts: dict[tuple[str, str], Sums] = field(default_factory=dict)  # (venue, account id)
    venues: dict[str, Sums] = field(default_factory=dict)
    assets: dict[str, Sums] = field(default_factory=dict)  # canonical asset name
    firm: Sums = Sums()
    unpriced: tuple[str, ...] = ()  # canonical names of held assets without a price

    @property
    def priced(self) -> bool:
        """False when there are no values at all (no source, or its prices are too old)."""
        return self.book is not None and self.book.usable(self.now)

    @property
    def stale(self) -> bool:
        return self.book is not None and self.book.stale(self.now)

    def worth(self, venue: str, account_id: str, asset: str) -> Worth:
        return self.balances.get((venue, account_id, asset), NO_WORTH)


def held_assets(venues: Iterable[VenueSnapshot], names: AssetNames) -> set[str]:
    """The canonical names of every asset these venues hold: what the price source is asked for."""
    return {names.canonical(b.asset) for v in venues for a in v.accounts for b in a.balances}


def worth(balance: Balance, quantity: str, price: Price | None) -> Worth:
    """holding × price and loan × price, exact; None without a price or a holding."""
    if price is None:
        return Worth(None, None)
    held, loan = balance.amount(quantity), balance.amount(LOAN)
    return Worth(
        price,
        mul(held, price.usd) if held is not None else None,
        mul(loan, price.usd) if loan is not None else None,
    )


def appraise(venues: Iterable[VenueSnapshot], book: PriceBook | None, names: AssetNames, now: float) -> Appraisal:
    balances: dict[tuple[str, str, str], Worth] = {}
    accounts: dict[tuple[str, str], list[Worth]] = {}
    by_venue: dict[str, list[Worth]] = {}
    by_asset: dict[str, list[Worth]] = {}
    unpriced: set[str] = set()
    pricing = book is not None and book.usable(now)
    for venue in venues:
        kind = KINDS.get(venue.kind)
        if kind is None:
            continue
        for account in venue.accounts:
            for balance in account.balances:
                asset = names.canonical(balance.asset)
                found = worth(balance, kind.quantity, book.price(asset, now) if book is not None else None)
                balances[(venue.name, account.id, balance.asset)] = found
                if found.value is None and pricing and _held(balance, kind.quantity):
                    unpriced.add(asset)
                accounts.setdefault((venue.name, account.id), []).append(found)
                by_venue.setdefault(venue.name, []).append(found)
                by_asset.setdefault(asset, []).append(found)
    return Appraisal(
        book,
        now,
        balances,
        {key: _sum(found) for key, found in accounts.items()},
        {key: _sum(found) for key, found in by_venue.items()},
        {key: _sum(found) for key, found in by_asset.items()},
        _sum(list(balances.values())),
        tuple(sorted(unpriced)),
    )


def _sum(found: list[Worth]) -> Sums:
    priced = [w for w in found if w.value is not None]
    gross = total(w.value for w in priced if w.value is not None)
    loans = total(w.loan_value for w in found if w.loan_value is not None)
    return Sums(gross, loans, len(priced))


def _held(balance: Balance, quantity: str) -> bool:
    return bool(balance.amount(quantity)) or bool(balance.amount(LOAN))
