"""Sparklines from exact values, and the drill-down's trend lines."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tui.monitor.spark import BLOCKS, sparkline


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


def test_trends_come_from_the_history_and_say_when_it_is_off(tmp_path: Path) -> None:
    from tui.config import parse
    from tui.money import Balance
    from tui.monitor.history import History
    from tui.monitor.monitor import Monitor
    from tui.snapshot.model import AccountSnapshot, VenueSnapshot

    config = parse('[[venue]]\nkind = "kraken-custody"\nname = "K"\napi_key = "k"\napi_secret = "s"\n')
    quiet = Monitor(config, started=0.0)
    assert "history is off" in quiet.trend("K", "V1", "XBT", 10.0)[0]
    history = History(tmp_path / "h.sqlite3")
    monitor = Monitor(config, history, started=0.0)
    for i in range(100):
        value = Decimal(i % 7)
        balance = Balance("XBT", {"balance": value, "hold_trade": Decimal(0), "available": value})
        monitor.take(VenueSnapshot("K", "kraken-custody", (AccountSnapshot("V1", "T", (balance,), float(i)),)), i)
    history.flush()
    session, day = monitor.trend("K", "V1", "XBT", 100.0)
    assert "0 … 6" in session and "0 … 6" in day
    history.close()
