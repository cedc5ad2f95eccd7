"""What an idle monitor draws: a refresh builds each pane's rows once, and a flash ends in the frame that draws
new data, not in a frame of its own (issue 24: the idle TUI's CPU)."""

from __future__ import annotations

import gc
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from rich.protocol import rich_cast
from textual._compositor import Compositor
from textual.app import App, ComposeResult
from textual.containers import Container
from textual.geometry import Size
from textual.widgets import Label

from tests.scenes import until
from tests.test_app import SIZE, loaded, make_app, refreshed
from tests.test_pane import _Host, _snapshot, screen_lines
from tui.engine.prices import PriceBook
from tui.monitor.valuation import Appraisal, Sums
from tui.sim import Simulator
from tui.snapshot.model import VenueSnapshot
from tui.ui import panes
from tui.ui.app import BalanceApp, VenueUpdated
from tui.ui.panes import VenuePane, View
from tui.ui.rows import Baseline
from tui.ui.tables import MeasuredTable


def _styles(pane: VenuePane, row: str) -> str:
    return " ".join(str(span.style) for span in rich_cast(pane.table.get_cell(row, "balance")).spans)


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
        assert "reverse" not in " ".join(str(s.style) for s in rich_cast(coinbase.table.get_cell(*key)).spans)
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


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class _ClockedHost(App[None]):
    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock

    def compose(self) -> ComposeResult:
        yield VenuePane(0, "bench", "kraken-custody", Baseline(), View(), now=self.clock)


def _counting_headers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    built: list[float] = []
    original = panes.header_text

    def counting(name: str, snap: VenueSnapshot | None, paused: bool, shown: int, now: float) -> Any:
        built.append(now)
        return original(name, snap, paused, shown, now)

    monkeypatch.setattr(panes, "header_text", counting)
    return built


async def test_the_tick_builds_no_calm_header_and_staleness_still_shows_the_moment_it_begins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A calm header (a time of day, nothing ticking) is not built again each second for the same inputs; the
    tick that finds the data stale (3 periods) shows it at once, and from then on the age ticks."""
    clock = _Clock(1795276800.0)
    async with _ClockedHost(clock).run_test() as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(replace(_snapshot("1.5"), fetched_at=clock.now, period=5.0))
        await pilot.pause()
        built = _counting_headers(monkeypatch)
        for _ in range(14):  # 14 s: not yet 3 periods old
            clock.now += 1.0
            pane.refresh_header()
        assert built == [], built
        assert "● live" in str(pane._header.render())
        clock.now += 1.5  # 15.5 s: stale now
        pane.refresh_header()
        assert "● stale for 15 s" in str(pane._header.render()), str(pane._header.render())
        clock.now += 1.0
        pane.refresh_header()
        assert "● stale for 16 s" in str(pane._header.render())
        assert len(built) == 2


async def test_the_tick_builds_a_header_whose_prices_are_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prices going stale change a calm header (their age, in yellow, ticking): the tick builds it."""
    clock = _Clock(1795276800.0)
    async with _ClockedHost(clock).run_test() as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(replace(_snapshot("1.5"), fetched_at=clock.now, period=3600.0))
        book = PriceBook("test", {}, fetched_at=clock.now, period=60.0)
        pane.show_worth(Appraisal(book, clock.now, venues={"bench": Sums(Decimal("10"), priced=1)}))
        await pilot.pause()
        assert "worth $10" in str(pane._header.render()) and "old" not in str(pane._header.render())
        built = _counting_headers(monkeypatch)
        clock.now += 181.0  # more than 3 periods of the prices: stale, still usable
        pane.refresh_header()
        assert "at prices 3 min 1 s old" in str(pane._header.render()), str(pane._header.render())
        clock.now += 1.0
        pane.refresh_header()
        assert "at prices 3 min 2 s old" in str(pane._header.render())
        assert len(built) == 2


async def test_each_input_of_a_calm_header_changes_it() -> None:
    """The rows shown (a filter), the mask, a pause and the header's width each change a calm header at once,
    though its data and time did not."""
    clock = _Clock(1795276800.0)
    async with _ClockedHost(clock).run_test(size=(120, 20)) as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(replace(_snapshot("1.5", "2.5", "3.5"), fetched_at=clock.now, period=3600.0))
        book = PriceBook("test", {}, fetched_at=clock.now, period=3600.0)
        pane.show_worth(Appraisal(book, clock.now, venues={"bench": Sums(Decimal("10"), priced=1)}))
        await pilot.pause()

        def shown() -> str:
            return str(pane._header.render())

        assert "● live" in shown() and "worth $10" in shown() and "\n" not in shown(), shown()
        pane.view.filter_text = "A1"
        pane.render_rows()
        pane.refresh_header()
        assert "showing 1 of 3" in shown(), shown()
        pane.view.mask = True
        pane.render_rows()
        pane.refresh_header()
        assert "worth $10" not in shown() and "worth $" in shown(), shown()
        pane.paused = True
        pane.refresh_header()
        assert "‖ paused" in shown(), shown()
        await pilot.resize_terminal(100, 20)  # still one line: the same height
        await pilot.pause()
        pane.refresh_header()
        assert pane._header_shown is not None and pane._header_shown[1] == 100, "not built for its new width"


async def test_what_exists_once_every_pane_answered_is_frozen_for_the_apps_life(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector's full passes walk only what was made after the panes were loaded: the objects of the
    loaded screen are frozen once, when every pane has shown an answer, and given back to the collector when
    the app ends (a process that goes on, as the tests' does, must not keep them out of its sight)."""
    freeze = gc.freeze
    answered: list[list[bool]] = []

    def frozen() -> None:
        answered.append([p.snapshot is not None and not p.snapshot.refreshing for p in app.panes])
        freeze()

    monkeypatch.setattr(gc, "freeze", frozen)
    app = make_app(sim, refresh=60)
    async with app.run_test(size=SIZE) as pilot:
        kraken, _ = await loaded(pilot)
        assert answered == [[True, True]]
        assert gc.get_freeze_count() > 10_000  # Textual's widgets and styles, the modules, the first rows
        await refreshed(pilot, kraken)
        assert len(answered) == 1, "frozen once, not at every answer"
    assert gc.get_freeze_count() == 0


async def test_a_column_gaining_a_digit_redraws_the_table_and_lays_out_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pane's table fills its pane: a wider column changes how it scrolls, not where anything is, and the
    whole screen was laid out again for it (~22 ms, a tenth of an idle monitor's main thread). Only a scrollbar
    appearing takes a layout; either way the frame is the one a full layout would draw."""
    reflows: list[Size] = []
    reflow = Compositor.reflow

    def counting(self: Compositor, parent: Any, size: Size) -> Any:
        reflows.append(size)
        return reflow(self, parent, size)

    monkeypatch.setattr(Compositor, "reflow", counting)

    class Desk(_Host):
        CSS_PATH = BalanceApp.CSS_PATH  # the desk's panes, whose tables fill them

    async with Desk().run_test(size=(120, 20)) as pilot:
        app = pilot.app
        pane = app.query_one(VenuePane)
        table = pane.table

        async def shown(amount: str, wider: bool = True) -> None:
            width = table.virtual_size.width
            pane.show(_snapshot("1.5", amount))
            await until(
                pilot,
                lambda: (
                    (table.virtual_size.width > width or not wider) and any(amount[:60] in s for s in screen_lines(app))
                ),
                why=lambda: (width, table.virtual_size, screen_lines(app)),
            )
            await pilot.pause()

        async def as_a_layout_draws_it() -> None:
            frame = app.export_screenshot()
            app.screen._refresh_layout()
            assert app.export_screenshot() == frame

        await shown("2.5", wider=False)
        await shown("2222222222.5")
        reflows.clear()
        await shown("22222222222.5")
        assert reflows == [], "a column one digit wider laid the screen out"
        assert any(" " * 11 + "1.5 " in line for line in screen_lines(app)), "the column's numbers not aligned"
        await as_a_layout_draws_it()

        await shown("1" * 70 + ".5")  # wider than the terminal: the scrollbar takes a line of the pane
        assert reflows and table.show_horizontal_scrollbar
        await as_a_layout_draws_it()
        reflows.clear()
        await shown("1" * 90 + ".5")
        assert reflows == [] and table.horizontal_scrollbar.window_virtual_size == table.virtual_size.width
        await as_a_layout_draws_it()


async def test_a_table_sized_by_its_content_grows_with_it() -> None:
    """A table whose height is its rows' (a detail screen's fields) is laid out again when rows come: what
    is below it moves down, and a wider cell widens a table whose width is its columns'."""

    class Stacked(App[None]):
        CSS = (
            "#rows { height: auto; } #wide { width: auto; height: 3; }"
            " #grid { layout: grid; grid-size: 1; grid-rows: auto; height: auto; } #gridded { height: 1fr; }"
        )

        def compose(self) -> ComposeResult:
            yield MeasuredTable[str](id="rows")
            yield Label("below", id="below")
            yield MeasuredTable[str](id="wide")
            with Container(id="grid"):  # a table of height 1fr in a row as high as its content
                yield MeasuredTable[str](id="gridded")

    async with Stacked().run_test(size=(80, 30)) as pilot:
        app = pilot.app
        rows, below, wide = (
            app.query_one("#rows", MeasuredTable),
            app.query_one("#below"),
            app.query_one("#wide", MeasuredTable),
        )
        rows.add_column("name", key="name")
        wide.add_column("name", key="name")
        await until(pilot, lambda: below.region.y == 1, why=lambda: below.region)  # the header's line
        for count in (1, 4):
            rows.add_rows([[f"row {i}"] for i in range(count)])
            await until(pilot, lambda: below.region.y == 1 + len(rows.rows), why=lambda: (below.region, rows.region))
        gridded = app.query_one("#gridded", MeasuredTable)
        gridded.add_column("name", key="name")
        gridded.add_rows([[f"row {i}"] for i in range(3)])
        await until(pilot, lambda: gridded.region.height == 4, why=lambda: gridded.region)
        wide.add_row("a much wider cell than the header", key="w")
        await until(
            pilot, lambda: wide.region.width == len(" a much wider cell than the header "), why=lambda: wide.region
        )
