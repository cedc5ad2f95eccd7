"""The live TUI driven by Textual's pilot against the real simulator over HTTP."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from rich.protocol import rich_cast
from textual.binding import Binding
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, OptionList

from tests.scenes import Clock, pricing, until
from tui.config import parse
from tui.sim import Simulator
from tui.ui import panes
from tui.ui.app import BalanceApp
from tui.ui.panes import VenuePane
from tui.ui.screens import HelpScreen, IntxDetailScreen, KrakenDetailScreen
from tui.venues import intx

SIZE = (120, 40)
PATIENCE = 60.0  # a safety net for waits that poll for a state; no test asserts how fast anything is


def make_app(sim: Simulator, refresh: float = 1.0) -> BalanceApp:
    return BalanceApp(parse(sim.config_text(refresh)), demo=True)


async def loaded(pilot: Pilot[int]) -> tuple[VenuePane, VenuePane]:
    """Both panes filled and valued: from then on the rows stay in their order unless something moves."""
    app = pilot.app
    assert isinstance(app, BalanceApp)
    await until(
        pilot,
        lambda: all(p.rows and p.worth is not None and p.worth.priced for p in app.panes),
        why=lambda: (
            f"{[(p.venue_name, len(p.rows), p.snapshot and p.snapshot.error) for p in app.panes]}; {pricing(app)()}"
        ),
    )
    kraken, coinbase = app.panes
    return kraken, coinbase


async def refreshed(pilot: Pilot[int], pane: VenuePane) -> None:
    """Force one refresh of the pane's venue and wait until its result is on screen."""
    app = pilot.app
    assert isinstance(app, BalanceApp)
    before = pane.snapshot
    app.source.refreshers[pane.index].refresh_now()
    await until(
        pilot, lambda: pane.snapshot is not before and pane.snapshot is not None and not pane.snapshot.refreshing
    )


def header(pane: VenuePane) -> str:
    return str(pane.query_one(".pane-header").render())


async def painted(widget: Widget) -> None:
    """Until the widget has handled what is queued for it and the screen has been laid out and painted after
    that, twice over: a callback run after one repaint (a deferred scroll) may move things for the next."""
    for _ in range(2):
        await asyncio.wait_for(widget.wait_for_refresh(), PATIENCE)


async def run_command(pilot: Pilot[int], query: str, action: Callable[[], object]) -> None:
    """Ctrl+P, type `query`, and Enter once the palette's search has put `action` on top: Enter before the
    search has answered does nothing."""
    await pilot.press("ctrl+p", *query)

    def ready() -> bool:
        palette = pilot.app.screen
        if not isinstance(palette, CommandPalette) or palette.query_one(Input).value != query:
            return False
        commands = palette.query_one(OptionList)
        top = commands.get_option_at_index(commands.highlighted) if commands.highlighted is not None else None
        hit = getattr(top, "hit", None)
        return hit is not None and hit.command == action

    await until(pilot, ready, timeout=PATIENCE)
    await pilot.press("enter")


async def test_both_panes_fill_and_say_live(sim: Simulator) -> None:
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        kraken, coinbase = await loaded(pilot)
        assert len(kraken.rows) == sum(len(v.holdings) for v in sim.market.vaults.values())
        assert len(coinbase.rows) == sum(len(p.holdings) for p in sim.market.portfolios.values())
        await until(pilot, lambda: "live" in header(kraken) and "live" in header(coinbase))
        assert "3 vaults" in header(kraken) and "3 portfolios" in header(coinbase)
        assert "DEMO" in str(app.query_one("#demo-banner").render())


async def test_exact_amounts_reach_the_cells(sim: Simulator) -> None:
    vault = next(iter(sim.market.vaults))
    sim.market.set_kraken(vault, "XBT", "100.000000000000000001", "0")
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        kraken, _ = await loaded(pilot)
        cell = kraken.table.get_cell(f"{vault}:XBT", "balance")
        assert str(cell).strip() == "100.000000000000000001"


async def test_cursor_keys_and_tab_between_panes(sim: Simulator) -> None:
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        kraken, coinbase = await loaded(pilot)
        table = kraken.table
        assert app.focused is table
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("down")
        assert table.cursor_row == 1
        await pilot.press("tab")
        assert app.focused is coinbase.table
        await pilot.press("shift+tab")
        assert app.focused is kraken.table


async def test_intx_drill_down_shows_all_17_fields_live_and_esc_returns_to_the_row(sim: Simulator) -> None:
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        _, coinbase = await loaded(pilot)
        await pilot.press("tab", "j", "j", "j")
        chosen = coinbase.cursor_key()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, IntxDetailScreen))
        screen = app.screen
        assert isinstance(screen, IntxDetailScreen)
        await until(pilot, lambda: screen.fetched_at is not None)
        fields = screen.query_one("#fields")
        assert [str(k.value) for k in fields.rows] == list(intx.FIELDS) and len(intx.FIELDS) == 17
        portfolio, asset = chosen.split(":")
        expected = sim.market.portfolios[portfolio].holdings[asset]["quantity"]
        assert str(fields.get_cell("quantity", "value")).strip() == format(expected, "f")
        assert sim.count("intx", "balance", "ok") >= 1 and sim.count("intx", "summary", "ok") >= 1
        summary = screen.query_one("#summary")
        assert str(summary.get_cell("row6", "value0")).strip() == "no"
        assert str(summary.get_cell("row6", "name0")) == "in liquidation"
        sim.market.set_intx(portfolio, asset, quantity=str(expected + 1))
        await until(pilot, lambda: str(fields.get_cell("quantity", "change")).strip().startswith("+1"))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, IntxDetailScreen))
        assert coinbase.cursor_key() == chosen
        assert app.focused is coinbase.table


async def test_kraken_drill_down(sim: Simulator) -> None:
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        kraken, _ = await loaded(pilot)
        await pilot.press("j")
        chosen = kraken.selected_row()
        assert chosen is not None
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, KrakenDetailScreen))
        screen = app.screen
        assert isinstance(screen, KrakenDetailScreen)
        await until(pilot, lambda: "%" in str(screen.query_one("#fields").get_cell("share", "value")))
        table = screen.query_one("#fields")
        assert str(table.get_cell("balance", "value")).strip() == format(chosen.values["balance"], "f")
        assert str(table.get_cell("available", "value")).strip() == format(chosen.values["available"], "f")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, KrakenDetailScreen))
        assert kraken.cursor_key() == chosen.key


async def test_header_names_accounts_state_age_next_refresh_and_round_trip(sim: Simulator) -> None:
    app = make_app(sim, refresh=5)
    async with app.run_test(size=SIZE) as pilot:
        kraken, coinbase = await loaded(pilot)
        await until(pilot, lambda: "● live" in header(kraken) and "● live" in header(coinbase))
        text = header(kraken)
        assert text.startswith(" Kraken custody (simulated) ")
        assert f"  {len(sim.market.vaults)} vaults  ● live" in text
        assert re.search(r"● live  at \d\d:\d\d:\d\d UTC  rtt \d+ ms", text), text  # no age, no countdown
        assert f"{len(sim.market.portfolios)} portfolios" in header(coinbase)


async def test_a_slow_venue_reads_refreshing_then_stale_and_live_again(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's clocks stand still unless the test moves them (as in the scenes), so how stale the data reads
    follows the test, not the machine's speed. A 4.5 s latency holds the INTX refreshes meanwhile."""
    clock = Clock()
    app = BalanceApp(parse(sim.config_text(1)), demo=True, clock=clock, monotonic=lambda: 0.0)
    held = threading.Event()
    draw = sim.faults.draw

    def noting(venue: str, endpoint: str) -> tuple[float, float, object]:
        outcome = draw(venue, endpoint)
        if venue == "intx" and outcome[0]:
            held.set()
        return outcome

    monkeypatch.setattr(sim.faults, "draw", noting)
    async with app.run_test(size=SIZE) as pilot:
        _, coinbase = await loaded(pilot)
        await until(pilot, lambda: "● live" in header(coinbase))
        sim.faults.set("latency", venue="intx", value=4.5)
        await until(pilot, lambda: held.is_set() and "◌ refreshing" in header(coinbase), timeout=PATIENCE)
        # No await from here to the asserts: the app cannot finish the refresh in between.
        assert "stale" not in header(coinbase), header(coinbase)  # refreshing, with data fresh by the app's clock
        clock.advance(5)  # more than 3 periods of 1 s since the last answer
        coinbase.refresh_header()
        assert "◌ refreshing  stale for 5 s  updated 5 s ago" in header(coinbase), header(coinbase)
        assert coinbase.rows  # the last good rows stay on screen meanwhile
        sim.faults.clear()
        await until(pilot, lambda: "● live" in header(coinbase), timeout=PATIENCE)
        assert "stale" not in header(coinbase)


async def test_one_account_failing_reads_partial_with_its_cause(sim: Simulator) -> None:
    pid = next(iter(sim.market.portfolios))
    text = sim.config_text(1) + f'portfolios = ["{pid}", "999999"]\n'
    app = BalanceApp(parse(text), demo=True)
    async with app.run_test(size=SIZE) as pilot:
        _, coinbase = await loaded(pilot)
        await until(pilot, lambda: "◐ partial" in header(coinbase))
        assert "◐ partial: 999999: balances: not found" in header(coinbase), header(coinbase)
        assert all(row.account_id == pid for row in coinbase.rows.values())
        assert not coinbase.has_class("-failing")


async def test_the_command_palette_offers_every_key(sim: Simulator) -> None:
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        _, coinbase = await loaded(pilot)
        offered = {command.callback for command in app.get_system_commands(app.screen)}
        for binding in app.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.action not in ("focus_next", "focus_previous", "clear_filter"):
                assert getattr(app, f"action_{binding.action}") in offered, binding.key
        assert app.action_details in offered  # Enter

        await pilot.press("tab", "j", "j")
        chosen = coinbase.cursor_key()
        await run_command(pilot, "details", app.action_details)
        await until(pilot, lambda: isinstance(app.screen, IntxDetailScreen))
        detail = app.screen
        assert isinstance(detail, IntxDetailScreen) and f"{detail.row.account_id}:{detail.row.asset}" == chosen
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, IntxDetailScreen))
        await run_command(pilot, "mask amounts", app.action_mask)
        await until(pilot, lambda: app.view.mask)
        assert coinbase.cursor_key() == chosen


async def test_r_refreshes_now_and_p_pauses(sim: Simulator) -> None:
    app = make_app(sim, refresh=60)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        refresher = app.source.refreshers[1]
        before = sim.count("intx", "balances")
        await pilot.press("r")
        await until(pilot, lambda: sim.count("intx", "balances") > before and not refresher.refreshing)
        await pilot.press("p")
        assert "paused" in header(app.panes[1])
        paused_at = sim.count("intx", "balances")
        await pilot.press("p")
        await until(pilot, lambda: sim.count("intx", "balances") > paused_at)


async def test_filter_sort_hide_and_mask(sim: Simulator) -> None:
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        kraken, coinbase = await loaded(pilot)
        await pilot.press("slash", "B", "T", "C")
        assert coinbase.rows and all(r.asset == "BTC" for r in coinbase.rows.values())
        # Kraken's spot API spells it XBT, the custody docs BTC (the simulator's odd vaults): only those match
        assert kraken.rows and all(r.asset == "BTC" for r in kraken.rows.values())
        assert any(a == "XBT" for v in sim.market.vaults.values() for a in v.holdings)
        assert "showing" in header(coinbase)
        await pilot.press("enter")
        assert all(r.asset == "BTC" for r in coinbase.rows.values())
        await pilot.press("escape")
        assert kraken.rows and len({r.asset for r in coinbase.rows.values()}) > 1

        order = [str(r.key.value) for r in coinbase.table.ordered_rows]  # the default: biggest value first
        values = [coinbase.rows[k].values["usd_value"] for k in order]
        valued = [v for v in values if v is not None]
        assert valued and valued == sorted(valued, reverse=True) and values[: len(valued)] == valued
        await pilot.press("s", "s")  # value → account → asset
        order = [str(r.key.value) for r in coinbase.table.ordered_rows]
        assets = [coinbase.rows[k].asset for k in order]
        assert assets == sorted(assets)

        portfolio = next(iter(sim.market.portfolios))
        zero = {f: "0" for f in intx.AMOUNTS}
        sim.market.set_intx(portfolio, "ZERO", **zero)
        await refreshed(pilot, coinbase)
        assert f"{portfolio}:ZERO" in coinbase.rows
        await pilot.press("h")
        assert f"{portfolio}:ZERO" not in coinbase.rows
        await pilot.press("h")
        assert f"{portfolio}:ZERO" in coinbase.rows

        await pilot.press("m")
        cells = [str(c) for row in coinbase.table.ordered_rows for c in coinbase.table.get_row(row.key)[2:]]
        assert cells and not any(ch.isdigit() for cell in cells for ch in cell)
        await pilot.press("m")
        cells = [str(c) for row in coinbase.table.ordered_rows for c in coinbase.table.get_row(row.key)[2:]]
        assert any(ch.isdigit() for cell in cells for ch in cell)


async def test_help_and_maximise(sim: Simulator) -> None:
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        _, coinbase = await loaded(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = "".join(str(w.render()) for w in app.screen.query("Static"))
        for word in ("filter", "sort", "mask", "pause", "drill down", "quit", "maximise"):
            assert word in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("tab", "z")
        assert app.screen.maximized is coinbase
        await pilot.press("z")
        assert app.screen.maximized is None


async def test_a_failing_venue_keeps_its_rows_the_other_carries_on_and_it_recovers(sim: Simulator) -> None:
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        kraken, coinbase = await loaded(pilot)
        rows_before = dict(kraken.rows)
        sim.faults.set("http-5xx", venue="kraken")
        await until(pilot, lambda: kraken.has_class("-failing"))
        assert "failing" in header(kraken) and "503" in header(kraken)
        assert kraken.rows == rows_before  # last good rows stay, dimmed by the -failing class
        fetched = coinbase.snapshot.fetched_at if coinbase.snapshot else None
        await until(pilot, lambda: coinbase.snapshot is not None and coinbase.snapshot.fetched_at != fetched)
        assert "failing" not in header(coinbase) and not coinbase.has_class("-failing")
        sim.faults.clear()
        await until(pilot, lambda: not kraken.has_class("-failing"), timeout=PATIENCE)
        await until(pilot, lambda: "live" in header(kraken))


async def test_cursor_stays_on_its_row_across_20_refreshes_and_a_resort(sim: Simulator) -> None:
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        _, coinbase = await loaded(pilot)
        await pilot.press("tab", "j", "j", "j", "j", "j")
        chosen = coinbase.cursor_key()
        portfolio = next(iter(sim.market.portfolios))
        for i in range(20):
            sim.tick()
            if i == 5:
                sim.market.set_intx(portfolio, "AAA", quantity="1", hold="0")  # sorts before the cursor row
            if i == 12:
                sim.market.remove_intx(portfolio, "AAA")
            await refreshed(pilot, coinbase)
            assert coinbase.cursor_key() == chosen, f"refresh {i + 1}"
        await pilot.press("s")
        assert coinbase.cursor_key() == chosen
        await pilot.press("s")
        assert coinbase.cursor_key() == chosen


async def test_the_view_stays_put_when_rows_come_and_go_above_it(sim: Simulator) -> None:
    """Scrolled down a long table, the operator keeps reading the same rows at the same place on screen."""
    app = make_app(sim, refresh=60)
    async with app.run_test(size=SIZE) as pilot:
        _, coinbase = await loaded(pilot)
        table = coinbase.table
        await pilot.press("s")  # the venue's own order (account, asset): rows are added above the view
        await pilot.press("tab", "G", "k", "k", "k")
        await painted(table)  # G scrolls to the bottom after the next repaint

        def view() -> tuple[str, int, str | None]:
            top = str(table.ordered_rows[round(table.scroll_y)].key.value)
            return top, table.cursor_row - round(table.scroll_y), coinbase.cursor_key()

        before = view()
        assert table.scroll_y > 0 and before[1] > 0
        first = next(iter(sim.market.portfolios))
        for i in range(8):
            sim.tick()
            if i == 2:
                sim.market.set_intx(first, "AAA", quantity="1", hold="0")  # sorts above the view
            if i == 5:
                sim.market.remove_intx(first, "AAA")
            await refreshed(pilot, coinbase)
            await painted(table)  # scrolls deferred to after a repaint have happened
            assert view() == before, f"refresh {i + 1}"


async def test_only_changed_cells_are_written_and_they_flash(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(sim, refresh=60)
    async with app.run_test(size=SIZE) as pilot:
        _, coinbase = await loaded(pilot)
        table = coinbase.table
        writes: list[tuple[str, str]] = []
        original = table.update_cell

        def counting(row_key: object, column_key: object, value: object, **kw: object) -> None:
            writes.append((str(getattr(row_key, "value", row_key)), str(getattr(column_key, "value", column_key))))
            original(row_key, column_key, value, **kw)  # type: ignore[arg-type]

        original_many = table.write_cells

        def counting_many(cells: list[tuple[str, str, object]]) -> None:
            writes.extend((row, column) for row, column, _ in cells)
            original_many(cells)  # type: ignore[arg-type]

        monkeypatch.setattr(table, "update_cell", counting)
        monkeypatch.setattr(table, "write_cells", counting_many)
        monkeypatch.setattr(table, "clear", lambda *a, **k: pytest.fail("the table was cleared"))
        monkeypatch.setattr(panes, "FLASH_SECONDS", 3600.0)  # no flash may end (a write) on a slow machine
        portfolio = next(iter(sim.market.portfolios))
        asset = next(iter(sim.market.portfolios[portfolio].holdings))
        old = sim.market.portfolios[portfolio].holdings[asset]["hold"] or Decimal(0)
        sim.market.set_intx(portfolio, asset, hold=str(old + 1))
        await refreshed(pilot, coinbase)
        key = f"{portfolio}:{asset}"
        assert writes == [(key, "hold")]
        cell = rich_cast(table.get_cell(key, "hold"))  # as the table draws it
        assert "reverse" in str(cell.spans[0].style) and "green" in str(cell.spans[0].style)


async def test_usable_at_80x24(sim: Simulator) -> None:
    """Both venues in view with their whole header (wrapped onto a second line) and rows to read; the totals
    wait for `t`, and `z` gives one pane the whole screen."""
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        kraken, coinbase = await loaded(pilot)
        await until(pilot, lambda: "rtt" in header(kraken) and "rtt" in header(coinbase))
        await painted(app.screen)  # laid out again for the headers' new height
        assert app.totals_pane is not None and not app.totals_pane.display
        for pane in (kraken, coinbase):
            assert pane._header.size.height == 2, "the header's second line (rtt) is cut off"
            assert pane.table.scrollable_content_region.height - 1 >= 4  # data rows below the column labels
        assert kraken.region.bottom <= coinbase.region.y and coinbase.region.bottom <= 24
        await pilot.press("t")
        assert app.totals_pane.display
        await pilot.press("z")
        assert app.screen.maximized is kraken and kraken.table.scrollable_content_region.height - 1 >= 12


async def test_decimal_points_line_up_in_every_numeric_column(sim: Simulator) -> None:
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        for pane in await loaded(pilot):
            table = pane.table
            for column in ("balance", "available") if pane.kind == "kraken-custody" else ("quantity", "hold", "loan"):
                cells = [str(table.get_cell(row.key, column)) for row in table.ordered_rows]
                assert len({len(c) for c in cells}) == 1, column
                assert len({c.index(".") for c in cells if "." in c}) == 1, column
