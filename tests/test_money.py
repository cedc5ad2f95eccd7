"""Exact amounts: parsing, formatting, arithmetic and alignment."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.money import AmountError, align, fmt, loads, mul, parse_amount, sub, total


def test_json_numbers_decode_exactly() -> None:
    data = loads(b'{"a": 12345678901234567890.123456789, "b": 1.10, "c": 7}')
    assert data["a"] == Decimal("12345678901234567890.123456789") and str(data["b"]) == "1.10"
    assert parse_amount(data["c"]) == Decimal(7)


@pytest.mark.parametrize("bad", ["", "abc", "NaN", "Infinity", True, 1.5, [], "1" * 200])
def test_non_amounts_are_refused(bad: object) -> None:
    with pytest.raises(AmountError):
        parse_amount(bad)


def test_format_never_uses_an_exponent_and_keeps_trailing_zeros() -> None:
    assert fmt(Decimal("1E+2")) == "100"
    assert fmt(Decimal("0E-10")) == "0.0000000000"
    assert fmt(Decimal("997.5000000000000")) == "997.5000000000000"
    assert fmt(None, "-") == "-"


def test_subtraction_is_exact_beyond_28_digits() -> None:
    a = Decimal("1234567890123456789012345678901234567890.000000000000000001")
    assert sub(a, Decimal("0.000000000000000001")) == Decimal("1234567890123456789012345678901234567890")


def test_align_lines_up_decimal_points_at_one_width() -> None:
    out = align(["2117137.5000", "4233080.00000000", "13", "", "-0.5"], width=20)
    assert len({len(t) for t in out}) == 1 and len(out[0]) == 20
    points = {t.index(".") for t in out if "." in t}
    assert len(points) == 1
    assert out[2].rstrip().endswith("13") and out[2].index("13") + 2 == points.pop()
    assert out[3].strip() == ""


@pytest.mark.parametrize("sort", ["value", "amount", "change"])
def test_rows_sort_on_every_digit(sort: str) -> None:
    """Two amounts that differ only in their 30th digit are not a tie broken by the asset's name."""
    from tui.ui.rows import Row, sort_rows

    small, big = Decimal("1234567890123456789012345678.91"), Decimal("1234567890123456789012345678.92")
    column = {"value": "usd_value", "amount": "quantity", "change": "change"}[sort]
    rows = [Row(f"P:{a}", "P", "Main", a, {column: v}) for a, v in (("AAA", small), ("ZZZ", big))]
    assert [r.asset for r in sort_rows(rows, sort, "quantity")] == ["ZZZ", "AAA"]


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("9" * 60, True),  # 60 digits: below 10^60
        ("1e60", False),
        ("-1" + "0" * 60, False),
        ("0." + "0" * 59 + "1", True),  # 60 places
        ("0." + "0" * 60 + "1", False),
        ("1e-61", False),
        ("0E-1000", False),  # a zero, but one that would carry a thousand places into every sum
        ("1e999999", False),  # garbage from a venue that would make every product raise
    ],
)
def test_amounts_beyond_sixty_digits_either_side_are_refused(raw: str, kept: bool) -> None:
    if kept:
        assert parse_amount(raw) == Decimal(raw)
    else:
        with pytest.raises(AmountError):
            parse_amount(raw)


def test_sums_of_products_of_the_widest_amounts_stay_exact() -> None:
    from tui.money import add, mul

    big, small = parse_amount("9" * 60), parse_amount("0." + "0" * 59 + "1")
    assert big is not None and small is not None
    total = add(mul(big, big), mul(small, small))  # (10^60 - 1)^2 + 10^-120 = 10^120 - 2*10^60 + 1 + 10^-120
    assert str(total) == "9" * 59 + "8" + "0" * 59 + "1." + "0" * 119 + "1"


# Amounts as the venues may send them: below 10^60, at most 60 places, either sign (the bounds parse_amount
# enforces). Judged with fractions.Fraction, which is exact by construction and shares no code with ours.
@st.composite
def wire_amounts(draw: st.DrawFn) -> Decimal:
    places = draw(st.integers(0, 60))
    digits = draw(st.integers(-(10 ** (60 + places)) + 1, 10 ** (60 + places) - 1))
    return Decimal(f"{digits}e-{places}")  # from text: exact (scaleb would round to 28 digits)


@settings(max_examples=300, deadline=None)
@given(st.lists(wire_amounts(), max_size=40))
def test_a_sum_of_any_amounts_is_exact(amounts: list[Decimal]) -> None:
    assert Fraction(total(amounts)) == sum((Fraction(a) for a in amounts), Fraction(0))


@settings(max_examples=300, deadline=None)
@given(wire_amounts(), wire_amounts())
def test_a_product_and_a_difference_of_any_two_amounts_are_exact(a: Decimal, b: Decimal) -> None:
    assert Fraction(mul(a, b)) == Fraction(a) * Fraction(b)
    assert Fraction(sub(a, b)) == Fraction(a) - Fraction(b)


@settings(max_examples=300, deadline=None)
@given(wire_amounts())
def test_any_amount_survives_the_wire_as_a_string_and_as_a_json_number(amount: Decimal) -> None:
    """Parsed from its text or from a JSON number, and written back: the same digits, trailing zeros kept."""
    text = format(amount, "f")
    assert fmt(parse_amount(text)) == text
    assert fmt(parse_amount(loads(f'{{"a": {text}}}')["a"])) == text  # as the parsers read one


@pytest.mark.parametrize("text", ["0", "0.0", "0.00000000", "0.000000000000000000"])
def test_a_zero_is_one_shared_decimal_with_its_digits(text: str) -> None:
    """Issue 24 (RSS): the zeros of 2,000 balances are one Decimal per spelling, not one per field; the digits
    stay those sent ("0.00000000" is still eight places)."""
    first, second = parse_amount(text), parse_amount("".join(text))  # two equal strings, not one object
    assert first is second
    assert isinstance(first, Decimal) and fmt(first) == text
    assert parse_amount("0.0000000000000000000") is not parse_amount("0.0000000000000000000")  # beyond: parsed


def test_other_spellings_of_zero_keep_theirs() -> None:
    assert fmt(parse_amount("-0")) == "-0" and fmt(parse_amount(" 0")) == "0"
    assert fmt(parse_amount("0E-8")) == "0.00000000" == fmt(Decimal("0E-8"))
