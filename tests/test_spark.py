"""Sparklines from exact values, and the drill-down's trend lines."""

from __future__ import annotations

from decimal import Decimal

from tui.spark import BLOCKS, sparkline


def test_a_rise_climbs_and_a_step_holds() -> None:
    points = [(0.0, Decimal(0)), (4.0, Decimal(7))]
    assert sparkline(points, 0.0, 8.0, 8) == BLOCKS[0] * 3 + BLOCKS[-1] * 5


def test_differences_beyond_float_precision_still_show() -> None:
    """1 and 1 + 1e-30 are the same float; as Decimals they are the lowest and the highest value."""
    low, high = Decimal("1"), Decimal("1.000000000000000000000000000001")
    assert float(low) == float(high)
    assert sparkline([(0.0, low), (1.5, high)], 0.0, 2.0, 2) == BLOCKS[0] + BLOCKS[-1]


def test_blank_before_the_first_point_and_flat_when_steady() -> None:
    line = sparkline([(5.0, Decimal("3.5"))], 0.0, 10.0, 10)
    assert line == " " * 4 + BLOCKS[(len(BLOCKS) - 1) // 2] * 6
    assert sparkline([], 0.0, 10.0, 10) == ""
