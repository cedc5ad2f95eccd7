"""The drill-downs show every field's own value: each field is given a value no other field has, at the
simulator, and each row of the screen must show its own, under the label the seed page gives it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from textual.pilot import Pilot

from tests.scenes import until
from tests.seed import INTX_BALANCE_AMOUNTS, INTX_BALANCE_FIELDS
from tests.test_app import SIZE, loaded, make_app
from tests.test_pane import screen_lines
from tui.sim import Simulator
from tui.ui.panes import VenuePane
from tui.ui.screens import IntxDetailScreen, KrakenDetailScreen
from tui.venues.kraken import CustodyCounter


def shown(screen: Any) -> dict[str, str]:
    """Label → value text, row by row, as the screen's fields table shows them."""
    table = screen.query_one("#fields")
    return {str(table.get_row(key)[0]): str(table.get_row(key)[1]).strip() for key in table.rows}


async def open_row(pilot: Pilot[Any], pane: VenuePane, key: str) -> None:
    await pilot.press(*(["tab"] if pane.index else []))
    pane.table.move_cursor(row=pane.table.get_row_index(key))
    await pilot.pause()
    assert pane.cursor_key() == key
    await pilot.press("enter")


async def test_every_intx_field_shows_its_own_value(sim: Simulator) -> None:
    portfolio = next(iter(sim.market.portfolios))
    asset = next(iter(sim.market.portfolios[portfolio].holdings))
    values = {name: f"{i + 1}.{i + 1:02d}00{i + 1:02d}" for i, name in enumerate(INTX_BALANCE_AMOUNTS)}
    sim.market.set_intx(portfolio, asset, **values)
    asset_id, asset_uuid = sim.market.asset_ids[asset]
    expected = {"asset_id": asset_id, "asset_name": asset, "asset_uuid": asset_uuid, **values}
    app = make_app(sim)
    async with app.run_test(size=(200, 40)) as pilot:
        _, coinbase = await loaded(pilot)
        await open_row(pilot, coinbase, f"{portfolio}:{asset}")
        screen = app.screen
        assert isinstance(screen, IntxDetailScreen)
        await until(pilot, lambda: screen.fetched_at is not None)
        rows = shown(screen)
    assert list(rows) == list(INTX_BALANCE_FIELDS)
    assert rows == expected


async def test_every_kraken_field_shows_its_own_value(sim: Simulator) -> None:
    vault = next(iter(sim.market.vaults))
    sim.market.set_kraken(vault, "XBT", "7.000000000000000001", "0.5")
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        kraken, _ = await loaded(pilot)
        await open_row(pilot, kraken, f"{vault}:XBT")
        screen = app.screen
        assert isinstance(screen, KrakenDetailScreen)
        await until(pilot, lambda: "%" in shown(screen)["share of vault"])
        opened = shown(screen)
        sim.market.set_kraken(vault, "XBT", "9.25", "1.000000000000000001")  # and live, as it moves
        await until(pilot, lambda: shown(screen)["balance"] == "9.25", timeout=30)
        moved = shown(screen)
    assert (opened["balance"], opened["hold (trade)"], opened["available"]) == (
        "7.000000000000000001",
        "0.5",
        "6.500000000000000001",  # worked out by hand: 7.000000000000000001 − 0.5
    )
    assert (moved["balance"], moved["hold (trade)"], moved["available"]) == (
        "9.25",
        "1.000000000000000001",
        "8.249999999999999999",  # 9.25 − 1.000000000000000001
    )


async def test_a_refresh_that_lands_before_a_drill_down_is_drawn_waits_for_it(sim: Simulator) -> None:
    """Seen in CI: a venue's answer came between Enter and the detail screen's first frame, and the app
    wrote into the screen's widgets before they existed (NoMatches '#worth')."""
    from tui.ui.app import VenueUpdated

    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        kraken, _ = await loaded(pilot)
        app.action_details()  # pushed now, composed and mounted only when the app is next idle
        screen = app.screen_stack[-1]
        assert isinstance(screen, KrakenDetailScreen) and not screen.is_mounted
        assert kraken.snapshot is not None
        app.on_venue_updated(VenueUpdated(kraken.index, kraken.snapshot))  # a refresh lands in between
        assert screen.worth is app.monitor.worth  # kept for it, and shown once it is drawn
        await until(pilot, lambda: screen.is_mounted and "%" in shown(screen)["share of vault"])
        assert str(screen.query_one("#worth").render()).startswith(" worth")


async def test_values_drawn_before_the_table_measured_them_are_drawn_again_at_full_width(sim: Simulator) -> None:
    """Seen in CI (textual#3533): a frame drawn between a new value and the table's next idle moment, when
    it widens the column, cached the value cut to the old width ("1fb17" for a UUID) until it changed."""
    app = make_app(sim)
    async with app.run_test(size=(200, 40)) as pilot:
        _, coinbase = await loaded(pilot)
        await open_row(pilot, coinbase, coinbase.cursor_key() or "")
        screen = app.screen
        assert isinstance(screen, IntxDetailScreen)
        await until(pilot, lambda: screen.fetched_at is not None)
        screen.workers.cancel_group(screen, "detail")  # no later poll to overwrite the value or redraw it
        balance = await screen.client.balance(screen.row.account_id, screen.row.asset)
        summary = await screen.client.summary(screen.row.account_id)
        wide = "98765432109876543210.000000000000000001"
        screen._show(balance.as_record() | {"quantity": wide}, summary.as_record())
        table = screen.query_one("#fields")
        for y in range(table.size.height):
            table.render_line(y)  # a frame before the idle pass that widens the column
        await until(pilot, lambda: any(wide in line for line in screen_lines(app)), why=lambda: screen_lines(app)[6:9])


async def test_values_that_land_on_a_screen_being_taken_down_are_not_drawn(sim: Simulator) -> None:
    """Seen in CI: the app closing removes a drill-down's widgets before the screen itself, and a refresh that
    landed in between was drawn into them (NoMatches '#worth'). A poll's reply or a timer can land the same way
    on a screen the operator has left."""
    from tui.ui.app import VenueUpdated
    from tui.ui.screens import AlertsScreen

    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        kraken, coinbase = await loaded(pilot)
        assert kraken.snapshot is not None
        await open_row(pilot, kraken, kraken.cursor_key() or "")
        screen = app.screen
        assert isinstance(screen, KrakenDetailScreen)
        await until(pilot, lambda: "%" in shown(screen)["share of vault"])
        await pilot.press("escape")
        await until(pilot, lambda: not screen.children)  # its widgets gone; late values still reach it
        screen.update_from(kraken.snapshot)
        screen.show_worth(app.monitor.worth)
        screen.show_trend()

        await open_row(pilot, coinbase, coinbase.cursor_key() or "")
        intx = app.screen
        assert isinstance(intx, IntxDetailScreen)
        await until(pilot, lambda: intx.fetched_at is not None)
        balance = await intx.client.balance(intx.row.account_id, intx.row.asset)
        summary = await intx.client.summary(intx.row.account_id)
        await pilot.press("escape")
        await until(pilot, lambda: not intx.children)
        intx._show(balance.as_record(), summary.as_record())
        intx._title()
        intx.show_worth(app.monitor.worth)

        await pilot.press("a")
        alerts = app.screen
        assert isinstance(alerts, AlertsScreen)
        await pilot.press("a")
        await until(pilot, lambda: not alerts.children)
        alerts.refresh_alerts()
        app.on_venue_updated(VenueUpdated(kraken.index, kraken.snapshot))  # and the app is still well
        assert app.screen is not screen and app.is_running


async def test_a_screen_being_taken_down_is_not_drawn_into(sim: Simulator) -> None:
    """While Textual removes a screen (the app closing prunes the one on top), its widgets may still be there:
    nothing is drawn into them, so none is half gone when it is written to."""
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        kraken, _ = await loaded(pilot)
        await open_row(pilot, kraken, kraken.cursor_key() or "")
        screen = app.screen
        assert isinstance(screen, KrakenDetailScreen)
        await until(pilot, lambda: "%" in shown(screen)["share of vault"] and screen.worth is not None)
        box = screen.query_one("#worth")
        assert box.styles.display == "block"
        removing = screen.remove()  # as the app closing does: the screen is still on top, its widgets still there
        assert screen.children
        screen.show_worth(None)  # drawn, this would hide the box
        assert box.styles.display == "block"
        await removing


def worth_of(screen: Any) -> Decimal | None:
    return screen.worth.worth(screen.venue, screen.row.account_id, screen.row.asset).value if screen.worth else None


def price_of(screen: Any) -> Decimal:
    return screen.worth.worth(screen.venue, screen.row.account_id, screen.row.asset).price.usd


async def test_a_drill_down_under_help_or_the_alerts_keeps_up(sim: Simulator) -> None:
    """Help and the alerts view open over a drill-down: it still takes each refresh and its values, so it is
    current the moment the operator comes back to it."""
    from tui.ui.screens import AlertsScreen, HelpScreen

    vault = next(iter(sim.market.vaults))
    sim.market.set_kraken(vault, "XBT", "3", "0")
    app = make_app(sim)
    async with app.run_test(size=SIZE) as pilot:
        kraken, _ = await loaded(pilot)
        sim.kraken_rate_limit = False
        for refresher in app.source.refreshers:  # "refresh now" not held back by Kraken's call counter
            if hasattr(refresher.client, "counter"):
                refresher.client.counter = CustodyCounter(limit=10**6)
        await open_row(pilot, kraken, f"{vault}:XBT")
        screen = app.screen
        assert isinstance(screen, KrakenDetailScreen)
        await until(pilot, lambda: "%" in shown(screen)["share of vault"])
        for key, over in (("question_mark", HelpScreen), ("a", AlertsScreen)):
            await pilot.press(key)
            assert isinstance(app.screen, over)
            moved = "4.25" if over is HelpScreen else "5.5"
            sim.market.set_kraken(vault, "XBT", moved, "0")
            app.action_refresh_now()
            await until(pilot, lambda m=moved: shown(screen)["balance"] == m)  # the refresh, underneath
            await until(pilot, lambda m=moved: worth_of(screen) == Decimal(m) * price_of(screen))  # and its worth
            await pilot.press("escape")
            assert app.screen is screen
