"""What a pane's table shows, computed from snapshots: rows with stable keys, change since start,
filtering, sorting, hiding zeros. No Textual here: the pane only writes what this decides."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .money import align, fmt, sub
from .snapshot import VenueSnapshot


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    numeric: bool = True


COLUMNS: dict[str, tuple[Column, ...]] = {
    "kraken-custody": (
        Column("account", "vault", False),
        Column("asset", "asset", False),
        Column("balance", "balance"),
        Column("hold_trade", "hold (trade)"),
        Column("available", "available"),
        Column("change", "change since start"),
    ),
    "coinbase-intx": (
        Column("account", "portfolio", False),
        Column("asset", "asset", False),
        Column("quantity", "quantity"),
        Column("hold", "hold"),
        Column("collateral_value", "collateral value"),
        Column("max_withdraw_amount", "max withdraw"),
        Column("loan", "loan"),
        Column("change", "change since start"),
    ),
}
PRIMARY = {"kraken-custody": "balance", "coinbase-intx": "quantity"}
SORTS = ("account", "asset", "amount", "change")
SORT_LABELS = {"account": "account, asset", "asset": "asset, account", "amount": "amount ↓", "change": "change ↓"}


@dataclass(frozen=True, slots=True)
class Row:
    key: str  # "<account id>:<asset>", stable across refreshes
    account_id: str
    account: str
    asset: str
    values: dict[str, Decimal | None]  # the numeric columns, plus "change"

    def text(self, column: str) -> str:
        if column == "account":
            return self.account
        if column == "asset":
            return self.asset
        value = self.values.get(column)
        if column == "change" and value is not None and value > 0:
            return "+" + fmt(value)
        return fmt(value)


class Baseline:
    """The first value seen of each row's primary amount this session: "change since start" is relative to it."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, str], Decimal] = {}

    def change(self, venue: str, key: str, value: Decimal | None) -> Decimal | None:
        if value is None:
            return None
        first = self._first.setdefault((venue, key), value)
        return sub(value, first)

    def first(self, venue: str, key: str) -> Decimal | None:
        return self._first.get((venue, key))


def build_rows(
    snapshot: VenueSnapshot,
    baseline: Baseline,
    *,
    filter_text: str = "",
    hide_zero: bool = False,
    sort: str = "account",
) -> list[Row]:
    primary = PRIMARY.get(snapshot.kind, "")
    numeric = [c.key for c in COLUMNS.get(snapshot.kind, ()) if c.numeric and c.key != "change"]
    rows = []
    for account in snapshot.accounts:
        for balance in account.balances:
            key = f"{account.id}:{balance.asset}"
            values = {name: balance.amount(name) for name in numeric}
            values["change"] = baseline.change(snapshot.name, key, balance.amount(primary))
            rows.append(Row(key, account.id, account.name, balance.asset, values))
    if filter_text:
        needle = filter_text.lower()
        rows = [
            r
            for r in rows
            if needle in r.asset.lower() or needle in r.account.lower() or needle in r.account_id.lower()
        ]
    if hide_zero:
        rows = [r for r in rows if any(v for k, v in r.values.items() if k != "change")]
    return sort_rows(rows, sort, primary)


def sort_rows(rows: Iterable[Row], sort: str, primary: str) -> list[Row]:
    rows = list(rows)
    if sort == "asset":
        return sorted(rows, key=lambda r: (r.asset, r.account))
    if sort == "amount":
        return sorted(rows, key=lambda r: (-(r.values.get(primary) or Decimal(0)), r.asset))
    if sort == "change":
        return sorted(rows, key=lambda r: (-abs(r.values.get("change") or Decimal(0)), r.asset))
    return rows  # the venue's own order of accounts, assets within each


def aligned_column(rows: list[Row], column: str, width: int = 0) -> list[str]:
    """A numeric column's texts, all of one width (at least `width`), decimal points lined up."""
    return align([r.text(column) for r in rows], width)


MASK = "•••••••"


def masked(text: str) -> str:
    """An amount hidden for screen sharing: a fixed mark that reveals neither digits nor magnitude."""
    return MASK.rjust(len(text)) if text.strip() else text
