"""The TUI's values, driven by Textual's pilot against the simulator over HTTP: the value column, the
headers' worth, biggest positions first, the drill-down's price line, and prices that fail or age.
Expected figures are worked out here from the simulator's own holdings and prices."""

from __future__ import annotations

import decimal
import random
from decimal import Decimal

from tests.scenes import Clock, until
from tests.test_app import SIZE, header, loaded
from tests.test_drilldown import open_row
from tui.config import parse
from tui.sim import Simulator
from tui.ui.app import BalanceApp
from tui.ui.screens import KrakenDetailScreen

WIDE = decimal.Context(prec=100)


def cents(value: Decimal) -> str:
    """The screen's rounding, done here independently: half up to the cent, thousands separated."""
    return f"{value.quantize(Decimal('0.01'), rounding=decimal.ROUND_HALF_UP):,}"


def app_for(sim: Simulator, clock: Clock | None = None) -> BalanceApp:
    kwargs = {"clock": clock, "monotonic": lambda: 0.0, "jitter": random.Random(1)} if clock else {}
    return BalanceApp(parse(sim.config_text(60)), demo=True, **kwargs)  # type: ignore[arg-type]


async def test_value_column_header_worth_and_biggest_first(sim: Simulator) -> None:
    vault = next(iter(sim.market.vaults))
    sim.market.set_kraken(vault, "XBT", "12.3456789012", "0.5")
    sim.market.set_price("XBT", "97250.125")
    app = app_for(sim)
    async with app.run_test(size=(200, 40)) as pilot:
        kraken, _ = await loaded(pilot)
        row = f"{vault}:XBT"
        value = WIDE.multiply(Decimal("12.3456789012"), Decimal("97250.125"))  # 1200618.8163301...
        assert str(kraken.table.get_cell(row, "usd_value")).strip() == cents(value) == "1,200,618.82"
        worth = Decimal(0)
        for held in sim.market.vaults.values():
            for asset, amounts in held.holdings.items():
                worth += WIDE.multiply(amounts["balance"], sim.market.kraken_price(asset))
        assert f"worth ${cents(worth)}" in header(kraken)
        gross = owed = Decimal(0)  # INTX: quantity and loan, each at its price
        for portfolio in sim.market.portfolios.values():
            for asset, amounts in portfolio.holdings.items():
                price = sim.market.price(asset)
                gross += WIDE.multiply(amounts["quantity"] or Decimal(0), price)
                owed += WIDE.multiply(amounts["loan"] or Decimal(0), price)
        assert owed and f"worth ${cents(gross)} (loans ${cents(owed)})" in header(app.panes[1])
        order = [str(r.key.value) for r in kraken.table.ordered_rows]
        values = [kraken.rows[k].values["usd_value"] for k in order]
        assert values == sorted(values, reverse=True)  # every Kraken asset here has a price


async def test_the_drill_down_gives_price_source_and_exact_value(sim: Simulator) -> None:
    vault = next(iter(sim.market.vaults))
    sim.market.set_kraken(vault, "XBT", "12.3456789012", "0.5")
    sim.market.set_price("XBT", "97250.125")
    app = app_for(sim)
    async with app.run_test(size=SIZE) as pilot:
        kraken, _ = await loaded(pilot)
        await open_row(pilot, kraken, f"{vault}:XBT")
        screen = app.screen
        assert isinstance(screen, KrakenDetailScreen)
        line = str(screen.query_one("#worth").render())
    assert "$1,200,618.82" in line and "$97250.12500" in line and "XXBTZUSD on kraken" in line
    assert "exact  1200618.81635156265" in line  # 12.3456789012 × 97250.125, every digit


async def test_unpriced_rows_say_so_and_sort_last(sim: Simulator) -> None:
    vault = next(iter(sim.market.vaults))
    sim.market.set_kraken(vault, "NOPAIR", "1000000000", "0")  # a billion of something nobody prices
    app = app_for(sim)
    async with app.run_test(size=(200, 40)) as pilot:
        kraken, _ = await loaded(pilot)
        assert str(kraken.table.get_cell(f"{vault}:NOPAIR", "usd_value")).strip() == "unpriced"
        assert str(kraken.table.ordered_rows[-1].key.value) == f"{vault}:NOPAIR"
        assert app.totals_pane is not None and "1 unpriced" in header(app.totals_pane)


async def test_failing_prices_say_so_once_and_values_age_then_vanish(sim: Simulator) -> None:
    clock = Clock()
    app = app_for(sim, clock)
    async with app.run_test(size=(200, 40)) as pilot:
        kraken, _ = await loaded(pilot)
        book = app.monitor.book
        assert book is not None and book.fetched_at == clock.now
        sim.faults.set("http-5xx", venue="prices")
        prices = app.source.prices
        assert prices is not None
        prices.min_gap = 0  # this test wakes the source at will
        prices.wake.set()  # the next turn now, rather than in a minute
        await until(pilot, lambda: app.monitor.book is not None and app.monitor.book.error is not None)
        status = str(app.query_one("#status").render())
        assert "prices failing (values from prices fetched at 16:00:00 UTC)" in status and "503" in status
        assert "worth $" in header(kraken) and "prices" not in header(kraken)  # one place says why
        clock.advance(4 * 60)  # older than three periods: stale, and said so where the values are
        kraken.refresh_header()
        assert "at prices 4 min 0 s old" in header(kraken)
        clock.advance(15 * 60)  # older than fifteen: unknown, never shown as if current
        prices.wake.set()  # the source's next (failing) try brings the news
        await until(pilot, lambda: "worth" not in header(kraken), timeout=60)
        assert all(str(kraken.table.get_cell(k, "usd_value")).strip() == "" for k in kraken.rows)
        assert kraken.rows and all(r.values["balance"] is not None for r in kraken.rows.values())  # balances stay


async def test_prices_that_arrive_while_the_app_closes_are_ignored(sim: Simulator) -> None:
    """Seen in CI: a price book posted as the app tore its widgets down raised NoMatches('#status')."""
    from tui.engine.prices import PriceBook
    from tui.ui.app import PricesUpdated

    app = app_for(sim)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        for widget in [app.query_one("#status"), *app.all_panes]:
            await widget.remove()  # as at exit: the status line and the panes go first
        app.on_prices_updated(PricesUpdated(PriceBook("kraken")))
        app._status()
