"""The keys a desk reaches for, in the live app against the simulator: the mask hides every figure on every
screen, ←/→ reach every column, the columns are the operator's to choose (and an alert's column always
shows), the sort turns round, `r` refreshes once while paused, the palette names each action once, and the
demo's alert rules fire for a newcomer."""

from __future__ import annotations

import io
import re
from collections import Counter
from decimal import Decimal

from rich.console import Console
from rich.protocol import rich_cast

from tests.scenes import until
from tests.test_app import PATIENCE, SIZE, loaded
from tui.config import parse
from tui.sim import Simulator
from tui.ui.app import BalanceApp
from tui.ui.demo import DEMO_RULES, demo_config
from tui.ui.panes import VenuePane
from tui.ui.screens import AlertsScreen, ColumnsScreen, IntxDetailScreen, KrakenDetailScreen


def _screen(app: BalanceApp) -> str:
    """The whole screen's text as the terminal gets it (notifications included), without its styles."""
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), force_terminal=True)
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", update.render_segments(console))


def _figures(sim: Simulator) -> set[str]:
    """Every amount the simulator holds, and every holding's value in dollars and cents, as a screen would
    write them (decided here from the market itself, not from the app): none may show under the mask."""
    found: set[str] = set()
    market = sim.market
    holdings = [(a, h) for v in market.vaults.values() for a, h in v.holdings.items()]
    holdings += [(a, h) for p in market.portfolios.values() for a, h in p.holdings.items()]
    for _, holding in holdings:
        for amount in holding.values():
            if amount is not None and len(str(abs(amount)).replace(".", "").lstrip("0")) >= 5:
                found.add(format(amount, "f"))
    for price in market.prices.values():  # the last trades, as Ticker writes them (5 places)
        if price >= 100:
            found.add(format(price.quantize(Decimal("0.00001")), "f"))
    for asset, holding in holdings:
        quantity = holding.get("balance", holding.get("quantity"))
        price = market.kraken_price(asset) or market.price(asset)
        if quantity and price:
            found.add(f"{(quantity * price).quantize(Decimal('0.01')):,}")
    return found


def _leaks(app: BalanceApp, figures: set[str]) -> list[str]:
    screen = _screen(app)
    leaked = [figure for figure in figures if figure in screen]
    leaked += re.findall(r"\d+\.\d+ % of", screen)  # a vault share
    return leaked


def _to_a_dear_asset(pane: VenuePane) -> None:
    """The cursor on a row of an asset priced at $100 or more."""
    key = next(k for k, row in pane.rows.items() if row.asset in ("XBT", "BTC", "ETH", "LTC", "SOL"))
    pane.table.focus()
    pane.table.move_cursor(row=pane.table.get_row_index(key))


async def test_the_mask_hides_every_figure_on_every_screen(sim: Simulator) -> None:
    app = BalanceApp(demo_config(sim, 60), demo=True, history=":memory:")
    app.view.mask = True  # before the first answer: the alerts that fire then are told masked too
    figures = _figures(sim)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        kraken, coinbase = await loaded(pilot)
        await until(pilot, lambda: app.monitor.alerts.active and app._notifications)
        assert not _leaks(app, figures), "the panes, headers and notifications"
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        assert not _leaks(app, figures), "the alerts view"
        await pilot.press("escape")
        _to_a_dear_asset(kraken)  # its price is long enough to be recognised
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, KrakenDetailScreen) and "…" not in app.screen.share)
        assert not _leaks(app, figures), "the Kraken drill-down"
        await pilot.press("escape")
        _to_a_dear_asset(coinbase)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, IntxDetailScreen) and app.screen.fetched_at is not None)
        await pilot.pause()
        assert not _leaks(app, figures), "the INTX drill-down"
        await pilot.press("escape", "m")
        await until(pilot, lambda: not app.view.mask)
        assert _leaks(app, figures), "unmasked, the figures show: the test looks for the right things"


async def test_left_and_right_reach_every_column_a_column_at_a_time(sim: Simulator) -> None:
    app = BalanceApp(parse(sim.config_text(60)), demo=True)
    async with app.run_test(size=SIZE) as pilot:
        _, coinbase = await loaded(pilot)
        table = coinbase.table
        table.focus()
        assert table.max_scroll_x > 0, "at 120 columns the INTX pane is wider than the screen"
        offsets = [table.scroll_x]
        while table.scroll_x < table.max_scroll_x and len(offsets) < 20:
            await pilot.press("right")
            offsets.append(table.scroll_x)
        assert offsets[-1] == table.max_scroll_x and len(offsets) <= len(coinbase.columns)  # a column a press
        assert "change since start" in _screen(app) and "portfolio" in _screen(app)  # names stay put
        await pilot.press(*["left"] * len(offsets))
        assert table.scroll_x == 0


async def test_columns_chosen_in_the_config_and_live_and_an_alerts_column_always_shows(sim: Simulator) -> None:
    main = next(p for p, v in sim.market.portfolios.items() if v.name == "Main")
    sim.market.set_intx(main, "USDC", max_withdraw_amount="5")
    config = sim.config_text(60).replace(
        'name = "Coinbase INTX (simulated)"',
        'name = "Coinbase INTX (simulated)"\ncolumns = ["loan", "quantity", "pledged_collateral_quantity"]',
    )
    rule = '[[alert]]\nvenue = "Coinbase INTX (simulated)"\nasset = "USDC"\nfield = "max_withdraw_amount"\nbelow = 10\n'
    app = BalanceApp(parse(config + rule), demo=True)
    async with app.run_test(size=SIZE) as pilot:
        _, coinbase = await loaded(pilot)
        await until(pilot, lambda: coinbase.flagged)
        keys = [c.key for c in coinbase.columns]
        assert keys == ["account", "asset", "loan", "quantity", "pledged_collateral_quantity", "max_withdraw_amount"]
        coinbase.table.focus()
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ColumnsScreen))
        await pilot.press("space", "enter")  # the first one, loan, unticked
        await until(pilot, lambda: not isinstance(app.screen, ColumnsScreen))
        assert [c.key for c in coinbase.columns][2:] == [
            "quantity",
            "pledged_collateral_quantity",
            "max_withdraw_amount",
        ]
        cell = rich_cast(coinbase.table.get_cell(f"{main}:USDC", "max_withdraw_amount"))  # as drawn
        assert "dark_red" in str(cell.spans[0].style)  # marked, in the column the alert brought


def _order(pane: VenuePane) -> list[str]:
    return [str(pane.table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(pane.table.row_count)]


async def test_the_sort_turns_round_and_accounts_sort_their_assets(sim: Simulator) -> None:
    app = BalanceApp(parse(sim.config_text(60)), demo=True)
    async with app.run_test(size=SIZE) as pilot:
        kraken, _ = await loaded(pilot)
        biggest_first = _order(kraken)
        await pilot.press("S")
        await until(pilot, lambda: _order(kraken) != biggest_first)
        assert _order(kraken) == biggest_first[::-1] and "value ↑" in str(app.query_one("#status").render())
        await pilot.press("s")  # the next sort: account, asset, in its own direction
        await until(pilot, lambda: "account, asset ↓" in str(app.query_one("#status").render()))
        rows = [kraken.rows[key] for key in _order(kraken)]
        vaults = list(dict.fromkeys(r.account_id for r in rows))
        assert vaults == list(sim.market.vaults)  # the venue's order of vaults
        for vault in vaults:
            assets = [r.asset for r in rows if r.account_id == vault]
            assert assets == sorted(assets)


async def test_r_while_paused_refreshes_once_and_says_so(sim: Simulator) -> None:
    app = BalanceApp(parse(sim.config_text(60)), demo=True)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await loaded(pilot)
        await pilot.press("p")
        paused_at = sim.count("intx", "balances")
        await pilot.press("r")
        portfolios = len(sim.market.portfolios)
        await until(pilot, lambda: sim.count("intx", "balances") == paused_at + portfolios, timeout=PATIENCE)
        assert any("paused" in str(n.message) and "once" in str(n.message) for n in app._notifications)
        refresher = app.source.refreshers[1]
        await until(pilot, lambda: not refresher.refreshing)
        assert refresher.paused and sim.count("intx", "balances") == paused_at + portfolios  # once, and paused


async def test_the_palette_names_each_action_once(sim: Simulator) -> None:
    app = BalanceApp(parse(sim.config_text(60)), demo=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = Counter(c.title for c in app.get_system_commands(app.screen))
    assert [t for t, n in titles.items() if n > 1] == [] and "Help" in titles and "Reverse sort" in titles
    assert not {"Keys", "Maximize", "Minimize"} & set(titles)  # Textual's own, which ours replace


async def test_the_demos_rules_fire_for_a_newcomer(sim: Simulator) -> None:
    app = BalanceApp(demo_config(sim), demo=True, history=":memory:")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await until(pilot, lambda: len({a.rule.name for a in app.monitor.alerts.active.values()}) == 2)
    assert DEMO_RULES.count("[[alert]]") == 2
