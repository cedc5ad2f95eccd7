"""What changed between two books, balance by balance: every field whose digits moved, and the change in value
split into a quantity move (Δquantity × the old price) and a price move (the new quantity × Δprice), exactly.

The two parts of a balance sum to its change in value, and every balance's to the change in the totals, to the
last digit: a value counts as the totals count it. A holding without a price is not in the totals, so it counts
at a price of 0 (a price appearing or vanishing is then a price move); a balance absent on one side is taken at
the other side's price there (or the price of that asset that side's book had), so an asset deposited is a
quantity move, not a price move. The loans of a venue that has them (INTX) are split the same way; net = the
holdings' moves less the loans'.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from tui.assets import AssetNames
from tui.money import Balance, mul, sub, total
from tui.monitor.book import Book
from tui.monitor.valuation import LOAN, NO_WORTH, Appraisal, Worth
from tui.snapshot.model import AccountSnapshot, VenueSnapshot
from tui.venues import KINDS
from tui.venues.kraken_prices import Price

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Split:
    """A value at the two instants (None: not counted in that instant's totals: absent, or without a price),
    and its change in two parts."""

    before: Decimal | None = ZERO
    after: Decimal | None = ZERO
    quantity_move: Decimal = ZERO
    price_move: Decimal = ZERO

    @property
    def change(self) -> Decimal:
        return sub(self.after or ZERO, self.before or ZERO)

    def __add__(self, other: Split) -> Split:
        return Split(*(total(pair) for pair in zip(self.parts(), other.parts(), strict=True)))

    def __sub__(self, other: Split) -> Split:
        return Split(*(sub(a, b) for a, b in zip(self.parts(), other.parts(), strict=True)))

    def parts(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        return (self.before or ZERO, self.after or ZERO, self.quantity_move, self.price_move)


def split(held: tuple[Decimal | None, Decimal | None], worth: tuple[Worth, Worth], loan: bool = False) -> Split:
    """One amount's value at two instants (the holding, or with `loan` the loan), and its two moves."""
    (q1, q2), (w1, w2) = held, worth
    value1, value2 = (w1.loan_value, w2.loan_value) if loan else (w1.value, w2.value)
    a1, a2 = _price_counted(q1, w1.price, value1), _price_counted(q2, w2.price, value2)
    if a1 is None:
        a1 = a2 if a2 is not None else ZERO
    if a2 is None:
        a2 = a1
    n1, n2 = q1 or ZERO, q2 or ZERO
    return Split(value1, value2, mul(sub(n2, n1), a1), mul(n2, sub(a2, a1)))


def _price_counted(quantity: Decimal | None, price: Price | None, value: Decimal | None) -> Decimal | None:
    """The price at which the totals count this amount: its own when valued, 0 when held but not valued, and
    None (either will do: nothing is held) when there is none of it."""
    if value is not None and price is not None:
        return price.usd
    if quantity:
        return ZERO
    return price.usd if price is not None else None


@dataclass(frozen=True, slots=True)
class Move:
    """One balance between the two instants (absent on a side: its amounts there are None)."""

    venue: str
    kind: str
    account_id: str
    account_name: str
    asset: str
    quantity_field: str
    quantity: tuple[Decimal | None, Decimal | None]
    fields: dict[str, tuple[Decimal | None, Decimal | None]]  # every amount field whose digits differ
    price: tuple[Price | None, Price | None]
    value: Split
    loan: Split | None  # a venue with loans (INTX)


@dataclass(frozen=True, slots=True)
class Moves:
    before: Book
    after: Book
    balances: tuple[Move, ...] = ()
    holdings: Split = Split()
    loans: Split = Split()
    priced: bool = False  # both books are valued (else no value is compared)
    unchanged: int = 0  # balances present with nothing moved, left out of `balances`
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def net(self) -> Split:
        return self.holdings - self.loans


def moves(before: Book, after: Book, names: AssetNames) -> Moves:
    """Every balance of either book that moved (a field's digits, or its value), with the totals' moves."""
    w1, w2 = before.snapshot.appraisal, after.snapshot.appraisal
    priced = w1 is not None and w2 is not None and w1.priced and w2.priced
    old, new = _balances(before.snapshot.venues), _balances(after.snapshot.venues)
    keys = list(old) + [key for key in new if key not in old]
    found: list[Move] = []
    holdings, loans, unchanged = Split(), Split(), 0
    for key in keys:
        (v1, a1, b1), (v2, a2, b2) = old.get(key, (None, None, None)), new.get(key, (None, None, None))
        venue = v2 or v1
        account = a2 or a1
        assert venue is not None and account is not None
        kind = KINDS[venue.kind]
        asset = key[2]
        canonical = names.canonical(asset)
        worth = (_worth(w1, key, b1, canonical, before.at), _worth(w2, key, b2, canonical, after.at))
        quantity = (_get(b1, kind.quantity), _get(b2, kind.quantity))
        value = split(quantity, worth) if priced else Split()
        has_loans = LOAN in kind.amounts
        loan = split((_get(b1, LOAN), _get(b2, LOAN)), worth, loan=True) if priced and has_loans else None
        fields = _moved(b1, b2, kind.amounts)
        holdings += value
        loans += loan or Split()
        if not fields and not value.change and not (loan and loan.change) and (b1 is None) == (b2 is None):
            unchanged += 1
            continue
        found.append(
            Move(
                venue.name,
                venue.kind,
                account.id,
                account.name,
                asset,
                kind.quantity,
                quantity,
                fields,
                (worth[0].price, worth[1].price),
                value,
                (loan or Split()) if has_loans else None,
            )
        )
    notes = () if priced else ("values are not compared: one of the two instants has no usable prices",)
    return Moves(before, after, tuple(found), holdings, loans, priced, unchanged, notes)


_Held = tuple[VenueSnapshot, AccountSnapshot, Balance]


def _balances(venues: Iterable[VenueSnapshot]) -> dict[tuple[str, str, str], _Held]:
    return {
        (v.name, a.id, b.asset): (v, a, b) for v in venues if v.kind in KINDS for a in v.accounts for b in a.balances
    }


def _worth(worth: Appraisal | None, key: tuple[str, str, str], balance: Balance | None, asset: str, at: float) -> Worth:
    """A balance's worth on one side; absent there, only the price its book had for the asset."""
    if worth is None:
        return NO_WORTH
    if balance is not None:
        return worth.worth(*key)
    price = worth.book.price(asset, at) if worth.book is not None else None
    return Worth(price, None)


def _get(balance: Balance | None, name: str) -> Decimal | None:
    return balance.amount(name) if balance is not None else None


def _moved(
    before: Balance | None, after: Balance | None, names: tuple[str, ...]
) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    out = {}
    for name in names:
        a, b = _get(before, name), _get(after, name)
        if (a is None) != (b is None) or (a is not None and b is not None and a.compare_total(b) != 0):
            out[name] = (a, b)
    return out
