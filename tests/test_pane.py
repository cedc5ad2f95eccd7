"""The pane's in-place update, driven directly with snapshots: what is written, and what is not."""

from __future__ import annotations

from decimal import Decimal

from textual.app import App, ComposeResult

from tui.money import Balance
from tui.panes import VenuePane, View
from tui.rows import Baseline
from tui.snapshot import AccountSnapshot, VenueSnapshot


def _snapshot(*amounts: str) -> VenueSnapshot:
    balances = tuple(
        Balance(f"A{i}", {"balance": Decimal(a), "hold_trade": Decimal("0"), "available": Decimal(a)})
        for i, a in enumerate(amounts)
    )
    return VenueSnapshot("bench", "kraken-custody", (AccountSnapshot("V1", "vault", balances, 0.0),), fetched_at=0.0)


class _Host(App[None]):
    def compose(self) -> ComposeResult:
        yield VenuePane(0, "bench", "kraken-custody", Baseline(), View())


def _balance_cells(pane: VenuePane) -> list[str]:
    return [str(pane.table.get_cell(key, "balance")).strip() for key in pane.rows]


async def test_trailing_zeros_the_venue_adds_are_shown() -> None:
    """1.0 and 1.00 are equal numbers but not the same digits: the screen follows the venue's digits."""
    async with _Host().run_test() as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot("1.0", "20"))
        await pilot.pause()
        pane.show(_snapshot("1.00", "20"))
        await pilot.pause()
        assert _balance_cells(pane) == ["1.00", "20"]


async def test_unchanged_rows_are_not_rewritten_and_changed_ones_are() -> None:
    async with _Host().run_test() as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot("1.5", "2.5", "3.5"))
        await pilot.pause()
        before = dict(pane.rows)
        pane.show(_snapshot("1.5", "2.6", "3.5"))
        await pilot.pause()
        assert pane.rows["V1:A0"] is before["V1:A0"] and pane.rows["V1:A2"] is before["V1:A2"]
        assert pane.rows["V1:A1"] is not before["V1:A1"]
        assert _balance_cells(pane) == ["1.5", "2.6", "3.5"]
        assert str(pane.table.get_cell("V1:A1", "change")).strip() == "+0.1"


async def test_a_wider_number_realigns_the_whole_column() -> None:
    async with _Host().run_test() as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot("1.5", "2.5"))
        await pilot.pause()
        pane.show(_snapshot("1.5", "12345.125"))
        await pilot.pause()
        texts = [str(pane.table.get_cell(key, "balance")) for key in pane.rows]
        assert len({len(t) for t in texts}) == 1
        assert len({t.index(".") for t in texts}) == 1, texts  # decimal points in one column
