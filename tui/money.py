"""Exact amounts: parsing what venues send, arithmetic that never rounds, and the balance record.

Every amount is a `Decimal` holding the digits the venue sent. The default decimal context keeps
28 significant digits, which silently rounds a 64-character Kraken amount; all arithmetic here runs
in a context wide enough for any amount a venue can send and traps inexact results.
"""

from __future__ import annotations

import decimal
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

EXACT = decimal.Context(prec=400, Emax=999_999, Emin=-999_999, traps=[decimal.Inexact, decimal.InvalidOperation])

ROUNDED = decimal.Context(prec=400, Emax=999_999, Emin=-999_999, rounding=decimal.ROUND_HALF_UP)
CENT = Decimal("0.01")
MAX_AMOUNT_CHARS = 128
MAX_PLACES = 60  # an amount is below 10^60 and has at most 60 decimal places: a product of two such has at most
# 240 digits and one of three (a percent alert on a worth: its |value| x threshold) at most 360, a sum of a
# million of them a few more: all inside EXACT's 400, so never rounded and never raising. "1e999999" from a
# venue is refused as garbage instead


ZEROS = {text: Decimal(text) for text in ("0", *("0." + "0" * places for places in range(1, 19)))}
# "0", "0.0", ... "0.000000000000000000": nearly half the amounts of a venue's answer are zeros so spelled; one
# Decimal each (immutable, so sharing is safe) instead of one per field per balance (issue 24, RSS)


class AmountError(ValueError):
    """A value that should have been an amount was not one."""


def loads(raw: str | bytes) -> Any:
    """Decode JSON keeping every fractional number exact as `Decimal` (integers are exact as `int`).

    A string escape naming half a surrogate pair alone (`"\\ud800"`) is valid JSON but no text: nothing can
    print, store or send it (it raises at the first encode, deep in a writer thread). Each is read as U+FFFD,
    the replacement character, as a UTF-8 decoder reads a broken byte."""
    value = json.loads(raw, parse_float=Decimal)
    escape = _SURROGATE_ESCAPE if isinstance(raw, str) else _SURROGATE_ESCAPE_BYTES
    return value if escape.search(raw) is None else _whole(value)  # type: ignore[arg-type]


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _whole(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_whole(item) for item in value]
    if isinstance(value, dict):
        return {_whole(key): _whole(item) for key, item in value.items()}
    return value


def parse_amount(value: object) -> Decimal | None:
    """An amount from the wire: a decimal string, a JSON number already decoded as Decimal, or an int.

    `None` means "not reported"; anything else that is not a finite decimal raises `AmountError`.
    """
    if value is None:
        return None
    if type(value) is str:  # the usual case first: a refresh parses thousands of these
        zero = ZEROS.get(value)
        if zero is not None:
            return zero
        if len(value) > MAX_AMOUNT_CHARS:
            raise AmountError(f"expected an amount, got {_excerpt(value)!r}")
        try:
            amount = Decimal(value)  # surrounding blanks are accepted, as before; an empty string is not
        except decimal.InvalidOperation:
            raise AmountError(f"expected an amount, got {_excerpt(value)!r}") from None
    elif isinstance(value, bool):
        raise AmountError(f"expected an amount, got {value!r}")
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):  # a str subclass
        return parse_amount(str(value))
    else:  # a float here means something upstream already lost digits: refuse it
        raise AmountError(f"expected an amount, got a {type(value).__name__}")
    if not amount.is_finite():
        raise AmountError(f"expected a finite amount, got {amount}")
    if amount.adjusted() >= MAX_PLACES or amount.as_tuple().exponent < -MAX_PLACES:  # type: ignore[operator]
        raise AmountError(
            f"expected an amount below 10^{MAX_PLACES} with at most {MAX_PLACES} places, got {_excerpt(str(value))!r}"
        )
    return amount


def fmt(amount: Decimal | None, missing: str = "") -> str:
    """The amount's exact digits, never in scientific notation; `missing` when not reported."""
    if amount is None:
        return missing
    return format(amount, "f")


def fmt_result(amount: Decimal) -> str:
    """A computed amount (a value, a sum of values) with every digit and none more: 2.50 × 2 is "5"."""
    return format(amount.normalize(EXACT), "f")


def dollars(amount: Decimal | None, missing: str = "") -> str:
    """A US dollar figure for the screen: rounded to the cent (half up), thousands separated ("1,234.57").

    Only the screen rounds: JSON, CSV and history keep every digit."""
    if amount is None:
        return missing
    return format(amount.quantize(CENT, context=ROUNDED), ",f")


@dataclass(frozen=True, slots=True)
class Shape:
    """How a column of decimal strings is laid out: digits before and after the point, and the width."""

    whole: int
    frac: int
    point: bool
    width: int


def shape_of(texts: Iterable[str], width: int = 0, grow: Shape | None = None) -> Shape:
    """The shape that fits every text (and, given `grow`, everything that shape already fitted)."""
    whole, frac, point = (grow.whole, grow.frac, grow.point) if grow else (0, 0, False)
    for text in texts:
        dot = text.find(".")
        if dot < 0:
            whole = max(whole, len(text))
        else:
            point = True
            whole = max(whole, dot)
            frac = max(frac, len(text) - dot - 1)
    width = max(width, grow.width if grow else 0)
    return Shape(whole, frac, point, max(width, whole + frac + (1 if point else 0)))


def pad(text: str, shape: Shape) -> str:
    """One decimal string laid out in its column's shape (see `align`)."""
    if not text:
        return " " * shape.width
    integer, dot, decimals = text.partition(".")
    point = "." if dot else (" " if shape.point else "")
    return (integer.rjust(shape.whole) + point + decimals.ljust(shape.frac)).rjust(shape.width)


def align(texts: list[str], width: int = 0) -> list[str]:
    """Decimal strings padded to one width (at least `width`) so their points line up.

    Integers get a blank where the point would be; blanks stay blank. The result is meant to be shown
    left-justified: right-justifying (as Rich does) strips the trailing padding that aligns the points.
    """
    shape = shape_of(texts, width)
    return [pad(text, shape) for text in texts]


def sub(a: Decimal, b: Decimal) -> Decimal:
    """a − b, exactly."""
    return EXACT.subtract(a, b)


def add(a: Decimal, b: Decimal) -> Decimal:
    """a + b, exactly."""
    return EXACT.add(a, b)


def mul(a: Decimal, b: Decimal) -> Decimal:
    """a × b, exactly: a 64-digit holding times a price stays well inside the context's 400 digits."""
    return EXACT.multiply(a, b)


def total(values: Iterable[Decimal]) -> Decimal:
    """The exact sum."""
    result = Decimal(0)
    for value in values:
        result = EXACT.add(result, value)
    return result


def _excerpt(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True, slots=True)
class Balance:
    """One asset in one account, with the venue's fields in the venue's order.

    `amounts` holds every amount field the venue defines for a balance (None where the venue did not
    report it); `labels` holds non-amount identifiers (INTX asset ids and uuids).
    """

    asset: str
    amounts: Mapping[str, Decimal | None]
    labels: Mapping[str, str | None] = field(default_factory=dict)

    def amount(self, name: str) -> Decimal | None:
        return self.amounts.get(name)

    def identical(self, other: Balance) -> bool:
        """Same fields with the same digits: unlike `==`, 1.0 and 1.00 differ (the screen shows digits)."""
        if self is other:
            return True
        if self.asset != other.asset or self.labels != other.labels:
            return False
        mine, theirs = self.amounts, other.amounts
        if mine != theirs:  # fast and decisive when a value moved; blind to trailing zeros
            return False
        return not any(
            value is not None and value.compare_total(theirs[name])  # type: ignore[arg-type]  # equal: not None
            for name, value in mine.items()
        )

    def as_record(self) -> dict[str, str | None]:
        """The balance as flat strings, for JSON, CSV and the stream: the contract's shape."""
        record: dict[str, str | None] = {"asset": self.asset}
        record.update(self.labels)
        record.update({name: None if value is None else fmt(value) for name, value in self.amounts.items()})
        return record


@dataclass(frozen=True, slots=True)
class Account:
    """A Kraken vault or an INTX portfolio."""

    id: str
    name: str
    details: Mapping[str, str] = field(default_factory=dict)
