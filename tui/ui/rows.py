"""What a pane's table shows, computed from snapshots: rows with stable keys, change since start,
filtering, sorting, hiding zeros. No Textual here: the pane only writes what this decides."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from tui.money import Balance, dollars, fmt, sub
from tui.snapshot.model import VenueSnapshot
from tui.untrusted import visible
from tui.venues import KINDS

if TYPE_CHECKING:
    from tui.monitor.valuation import Appraisal


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    numeric: bool = True


VALUE = Column("usd_value", "value (USD)")
COLUMNS: dict[str, tuple[Column, ...]] = {
    "kraken-custody": (
        Column("account", "vault", False),
        Column("asset", "asset", False),
        VALUE,
        Column("balance", "balance"),
        Column("hold_trade", "hold (trade)"),
        Column("available", "available"),
        Column("change", "change since start"),
    ),
    "totals": (
        Column("asset", "asset", False),
        VALUE,
        Column("total", "total"),
        Column("change", "change since start"),
        Column("spelled", "spelled", False),
        Column("held_at", "held in (venue by venue)", False),
    ),
    "coinbase-intx": (
        Column("account", "portfolio", False),
        Column("asset", "asset", False),
        VALUE,
        Column("quantity", "quantity"),
        Column("hold", "hold"),
        Column("collateral_value", "collateral value"),
        Column("max_withdraw_amount", "max withdraw"),
        Column("loan", "loan"),
        Column("change", "change since start"),
    ),
}
PRIMARY = {"totals": "total"} | {name: kind.quantity for name, kind in KINDS.items()}
SORTS = ("value", "account", "asset", "amount", "change")
SORT_LABELS = {  # as they read in the default direction; S turns each round
    "value": ("value ↓", "value ↑"),
    "account": ("account, asset ↓", "account, asset ↑"),
    "asset": ("asset, account ↓", "asset, account ↑"),
    "amount": ("amount ↓", "amount ↑"),
    "change": ("change ↓", "change ↑"),
}


def sort_label(sort: str, reverse: bool) -> str:
    return SORT_LABELS[sort][reverse]


UNPRICED = "unpriced"


def available_columns(kind: str, valued: bool) -> tuple[Column, ...]:
    """Every column a pane of this kind can show: its default ones, then every other amount field of the venue
    (INTX has 14), labelled by their names. The value column only when there is a price source."""
    shown = COLUMNS.get(kind, ())
    kind_of = KINDS.get(kind)
    extra = [
        Column(f, f.replace("_", " ")) for f in (kind_of.amounts if kind_of else ()) if f not in {c.key for c in shown}
    ]
    return tuple(c for c in (*shown, *extra) if valued or c is not VALUE)


def columns_for(
    kind: str, valued: bool, chosen: tuple[str, ...] | None = None, needed: Iterable[str] = ()
) -> tuple[Column, ...]:
    """A pane's columns: its names first (always), then the `chosen` amounts in their order (None: the kind's
    default ones), then any column an alert marks (`needed`) that is not among them, so a marked cell is never
    hidden, then the kind's words after its amounts (the totals' spellings and places)."""
    available = available_columns(kind, valued)
    default = tuple(c for c in COLUMNS.get(kind, ()) if valued or c is not VALUE)
    lead = next((i for i, c in enumerate(default) if c.numeric), len(default))
    names, words = default[:lead], tuple(c for c in default[lead:] if not c.numeric)
    by_key = {c.key: c for c in available if c.numeric}
    wanted = [c.key for c in default if c.numeric] if chosen is None else list(chosen)
    picked = [by_key[k] for k in dict.fromkeys([*wanted, *needed]) if k in by_key]
    return names + tuple(picked) + words


@dataclass(frozen=True, slots=True)
class Fields:
    """Which amount each place of a row's `amounts` holds: one shared by every row of the same columns."""

    names: tuple[str, ...]
    at: dict[str, int] = field(compare=False, repr=False)


@lru_cache(maxsize=64)
def fields_of(names: tuple[str, ...]) -> Fields:
    return Fields(names, {name: i for i, name in enumerate(names)})


@dataclass(frozen=True, slots=True, init=False)
class Row:
    """A row of a pane: its amounts as a tuple in the order of a `Fields` shared by every row of the same columns,
    their digits made when asked (the cells keep them, padded). At 2,000 rows a dict of values and a dict of texts
    per row cost a megabyte."""

    key: str  # "<account id>:<asset>", stable across refreshes
    account_id: str
    account: str
    asset: str
    fields: Fields
    amounts: tuple[Decimal | None, ...]  # the numeric columns, plus "change"
    source: Balance | None = field(compare=False)  # what it was built from, to reuse it
    value_text: str = field(compare=False, repr=False)  # the value column as shown: dollars, "unpriced" or blank

    def __init__(
        self,
        key: str,
        account_id: str,
        account: str,
        asset: str,
        values: Mapping[str, Decimal | None],
        source: Balance | None = None,
        value_text: str | None = None,
    ) -> None:
        """`value_text`: how the value column shows (None: its dollars, blank without a value)."""
        fields = fields_of(tuple(values))
        amounts = tuple(values.values())
        if value_text is None:
            value = amounts[fields.at[VALUE.key]] if VALUE.key in fields.at else None
            value_text = dollars(value) if value is not None else ""
        for name, given in (
            ("key", key),
            ("account_id", account_id),
            ("account", account),
            ("asset", asset),
            ("fields", fields),
            ("amounts", amounts),
            ("source", source),
            ("value_text", value_text),
        ):
            object.__setattr__(self, name, given)

    @property
    def values(self) -> dict[str, Decimal | None]:
        """The amounts by column (a new dict: for the detail screens and tests, not for what runs every refresh)."""
        return dict(zip(self.fields.names, self.amounts, strict=True))

    def value(self, column: str) -> Decimal | None:
        at = self.fields.at.get(column)
        return None if at is None else self.amounts[at]

    def text(self, column: str) -> str:
        """The cell as shown: names and labels from outside made visible, amounts as their digits."""
        if column == "account":
            return visible(self.account)
        if column == "asset":
            return visible(self.asset)
        if column == VALUE.key:
            return self.value_text
        at = self.fields.at.get(column)
        if at is None:  # a label column: words the source carries
            return visible((self.source.labels.get(column) if self.source else None) or "")
        value = self.amounts[at]
        return "+" + fmt(value) if column == "change" and value is not None and value > 0 else fmt(value)


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
    sort: str = "value",
    previous: Mapping[str, Row] | None = None,
    worth: Appraisal | None = None,
    reverse: bool = False,
    columns: tuple[Column, ...] | None = None,
) -> list[Row]:
    """The rows to show, with the amounts of `columns` (the kind's default ones if None). A row of
    `previous` whose balance and value are unchanged is reused as it is: on a refresh where 1% of cells
    move, the other 99% cost one comparison each (`previous` must hold rows of the same columns)."""
    primary = PRIMARY.get(snapshot.kind, "")
    shown = columns if columns is not None else COLUMNS.get(snapshot.kind, ())
    numeric = [c.key for c in shown if c.numeric and c.key not in ("change", VALUE.key)]
    previous = previous or {}
    priced = worth is not None and worth.priced
    rows = []
    for account in snapshot.accounts:
        for balance in account.balances:
            key = f"{account.id}:{balance.asset}"
            value = _value(snapshot, account.id, balance.asset, worth) if priced else None
            old = previous.get(key)
            if (
                old is not None
                and old.account == account.name
                and old.source
                and old.source.identical(balance)
                and old.value(VALUE.key) == value
                and (old.text(VALUE.key) == UNPRICED) == (priced and value is None)
            ):
                rows.append(old)  # unchanged: its values, change and texts still hold
                continue
            values = {name: balance.amount(name) for name in numeric}
            values[VALUE.key] = value
            values["change"] = baseline.change(snapshot.name, key, balance.amount(primary))
            value_text = dollars(value) if value is not None else (UNPRICED if priced else "")
            rows.append(Row(key, account.id, account.name, balance.asset, values, balance, value_text))
    if filter_text:
        needle = filter_text.lower()
        rows = [
            r
            for r in rows
            if needle in r.asset.lower() or needle in r.account.lower() or needle in r.account_id.lower()
        ]
    if hide_zero:
        rows = [r for r in rows if any(v for k, v in zip(r.fields.names, r.amounts, strict=True) if k != "change")]
    return sort_rows(rows, sort, primary, reverse)


def _value(snapshot: VenueSnapshot, account_id: str, asset: str, worth: Appraisal | None) -> Decimal | None:
    """What the row is worth: a balance's value, or on the totals pane the asset's value across venues."""
    if worth is None:
        return None
    if snapshot.kind == "totals":
        sums = worth.assets.get(asset)
        return sums.gross if sums is not None and sums.priced and asset not in worth.unpriced else None
    return worth.worth(snapshot.name, account_id, asset).value


def sort_rows(rows: Iterable[Row], sort: str, primary: str, reverse: bool = False) -> list[Row]:
    """Rows in the order asked; `reverse` turns it round, except that rows without a value stay after every
    valued one when sorting by value (an unpriced asset is not the smallest position)."""
    rows = list(rows)
    if sort == "value":  # the biggest positions first; rows without a value after every valued one
        valued = sorted((r for r in rows if r.value(VALUE.key) is not None), key=_by_value, reverse=reverse)
        return valued + sorted((r for r in rows if r.value(VALUE.key) is None), key=_by_value)
    if sort == "asset":
        key = lambda r: (r.asset, r.account)  # noqa: E731
    elif sort == "amount":
        key = lambda r: ((r.value(primary) or Decimal(0)).copy_negate(), r.asset)  # noqa: E731
    elif sort == "change":
        key = lambda r: ((r.value("change") or Decimal(0)).copy_abs().copy_negate(), r.asset)  # noqa: E731
    else:  # accounts in the venue's own order, assets by name within each
        order: dict[str, int] = {}
        for row in rows:
            order.setdefault(row.account_id, len(order))
        key = lambda r: (order[r.account_id], r.asset)  # noqa: E731
    return sorted(rows, key=key, reverse=reverse)


def _by_value(row: Row) -> tuple[bool, Decimal, str, str]:
    value = row.value(VALUE.key)
    return (value is None, (value or Decimal(0)).copy_negate(), row.asset, row.account)


MASK = "•••••••"


def masked(text: str) -> str:
    """An amount hidden for screen sharing: a fixed mark that reveals neither digits nor magnitude."""
    return MASK.rjust(len(text)) if text.strip() else text
