"""What an idle monitor draws: a refresh builds each pane's rows once, and a flash ends in the frame that draws
new data, not in a frame of its own (issue 24: the idle TUI's CPU)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.test_app import SIZE, loaded, make_app, refreshed
from tests.test_pane import _Host, _snapshot
from tui.sim import Simulator
from tui.ui import panes
from tui.ui.app import BalanceApp, VenueUpdated
from tui.ui.panes import VenuePane


def _styles(pane: VenuePane, row: str) -> str:
    return " ".join(str(span.style) for span in pane.table.get_cell(row, "balance").spans)


async def test_the_tick_ends_only_a_flash_no_data_came_to_end() -> None:
    """A flash lasts FLASH_SECONDS at least; past that, new data ends it (in its frame); the second's tick ends
    it only once it is over by FLASH_SECONDS more, so a monitor whose data stopped still goes plain."""
    async with _Host().run_test() as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot("1.5", "2.5"))
        await pilot.pause()
        pane.show(_snapshot("1.6", "2.5"))
        await pilot.pause()
        assert "reverse green" in _styles(pane, "V1:A0")
        over = time.monotonic() - 0.5  # its time is over, not by FLASH_SECONDS more
        pane._flashes = {k: (over, d) for k, (_, d) in pane._flashes.items()}
        pane.expire_flashes(overdue=True)
        assert "reverse green" in _styles(pane, "V1:A0"), "the tick ended a flash new data would have ended"
        pane.expire_flashes()
        assert "reverse" not in _styles(pane, "V1:A0")
        pane.show(_snapshot("1.7", "2.5"))
        await pilot.pause()
        long_over = time.monotonic() - panes.FLASH_SECONDS - 0.5
        pane._flashes = {k: (long_over, d) for k, (_, d) in pane._flashes.items()}
        pane.expire_flashes(overdue=True)
        assert "reverse" not in _styles(pane, "V1:A0"), "no data came, and the tick left the flash on"


async def test_a_flash_over_ends_with_the_next_refresh(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any venue's new data ends every pane's flashes whose time is over, in the same pass."""
    app = make_app(sim, refresh=60)
    async with app.run_test(size=SIZE) as pilot:
        kraken, coinbase = await loaded(pilot)
        monkeypatch.setattr(panes, "FLASH_SECONDS", 3600.0)  # the tick never ends one here
        portfolio = next(iter(sim.market.portfolios))
        asset = next(iter(sim.market.portfolios[portfolio].holdings))
        old = sim.market.portfolios[portfolio].holdings[asset]["hold"] or Decimal(0)
        sim.market.set_intx(portfolio, asset, hold=str(old + 1))
        await refreshed(pilot, coinbase)
        key = (f"{portfolio}:{asset}", "hold")
        assert key in coinbase._flashes
        over = time.monotonic() - 0.001
        coinbase._flashes = {k: (over, d) for k, (_, d) in coinbase._flashes.items()}
        app._tick()  # the second's tick leaves it to the next data
        assert key in coinbase._flashes
        await refreshed(pilot, kraken)  # another venue's data: its frame carries the end of the flash
        assert key not in coinbase._flashes
        assert "reverse" not in " ".join(str(s.style) for s in coinbase.table.get_cell(*key).spans)
        coinbase._flashes[key] = (time.monotonic() - 2 * panes.FLASH_SECONDS, "up")
        app._tick()  # no data came to end this one: the tick does
        assert key not in coinbase._flashes


async def test_a_refresh_builds_each_panes_rows_once(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A venue's answer and the values the monitor makes of it are drawn in one pass per pane: its pane and the
    totals were built twice (the snapshot, then its values), comparing every row each time."""
    app = make_app(sim, refresh=60)
    async with app.run_test(size=SIZE) as pilot:
        _, coinbase = await loaded(pilot)
        built: list[str] = []
        passes: list[tuple[str, list[str]]] = []  # per answer of a venue: the panes whose rows were built
        original, handle = VenuePane.render_rows, BalanceApp.on_venue_updated

        def counting(pane: VenuePane) -> None:
            built.append(pane.venue_name)
            original(pane)

        def answer(self: BalanceApp, message: VenueUpdated) -> None:
            built.clear()
            handle(self, message)
            if not message.snapshot.refreshing:
                passes.append((message.snapshot.name, list(built)))

        monkeypatch.setattr(VenuePane, "render_rows", counting)
        monkeypatch.setattr(BalanceApp, "on_venue_updated", answer)
        portfolio = next(iter(sim.market.portfolios))
        asset = next(iter(sim.market.portfolios[portfolio].holdings))
        old = sim.market.portfolios[portfolio].holdings[asset]["hold"] or Decimal(0)
        sim.market.set_intx(portfolio, asset, hold=str(old + 1))
        await refreshed(pilot, coinbase)
        assert app.totals_pane is not None
        builds = next(b for name, b in passes if name == coinbase.venue_name)
        assert builds.count(coinbase.venue_name) == 1, builds
        assert builds.count(app.totals_pane.venue_name) == 1, builds
