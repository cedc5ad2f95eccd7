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


def test_a_long_session_keeps_a_bounded_coarser_line_without_history() -> None:
    from tui.config import parse
    from tui.money import Balance
    from tui.monitor import SERIES_POINTS, Monitor
    from tui.snapshot import AccountSnapshot, VenueSnapshot

    config = parse('[[venue]]\nkind = "kraken-custody"\nname = "K"\napi_key = "k"\napi_secret = "s"\n')
    monitor = Monitor(config, started=0.0)
    for i in range(5000):
        value = Decimal(i)
        balance = Balance("XBT", {"balance": value, "hold_trade": Decimal(0), "available": value})
        monitor.take(VenueSnapshot("K", "kraken-custody", (AccountSnapshot("V1", "T", (balance,), float(i)),)), i)
    line = monitor.series[("K", "V1", "XBT")]
    assert len(line) <= SERIES_POINTS + 1 and line[-1] == (4999.0, Decimal(4999))
    assert line[0][0] < 200  # the start of the session is still drawn
    session, _ = monitor.trend("K", "V1", "XBT", 5000.0)
    assert "0 … 4999" in session
