"""Alerts and totals in the live app, against the simulator: the cell and pane marked, the bell rung once,
the paging command fed the alert as JSON, the alerts view, and totals across two venues."""

from __future__ import annotations

import json
import shlex
import sys
from decimal import Decimal
from pathlib import Path

from rich.protocol import rich_cast

from tests.scenes import until
from tests.test_app import loaded, refreshed
from tui.config import parse
from tui.sim import Simulator
from tui.ui.app import BalanceApp
from tui.ui.screens import AlertsScreen, HelpScreen

PAGER = "import sys, pathlib; pathlib.Path(sys.argv[1]).open('a').write(sys.stdin.read())"


def _rules(out: Path) -> str:
    command = shlex.join([sys.executable, "-c", PAGER, str(out)])
    return f"""
[[alert]]
name = "USDC withdrawable low"
venue = "Coinbase INTX (simulated)"
account = "Main"
asset = "USDC"
field = "max_withdraw_amount"
below = "10000"
command = {json.dumps(command)}
"""


async def test_a_breach_marks_rings_once_pages_and_clears(sim: Simulator, tmp_path: Path) -> None:
    pages = tmp_path / "pages.jsonl"
    main = next(p for p, v in sim.market.portfolios.items() if v.name == "Main")
    sim.market.set_intx(main, "USDC", max_withdraw_amount="50000")
    app = BalanceApp(parse(sim.config_text(60) + _rules(pages)), demo=True)
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        _, coinbase = await loaded(pilot)
        assert not app.monitor.alerts.active and not bells
        sim.market.set_intx(main, "USDC", max_withdraw_amount="9999.999999")
        await refreshed(pilot, coinbase)
        key = f"{main}:USDC"
        assert coinbase.flagged == {(key, "max_withdraw_amount")}
        cell = rich_cast(coinbase.table.get_cell(key, "max_withdraw_amount"))  # as the table draws it
        assert "dark_red" in str(cell.spans[0].style)
        assert "⚑ 1 alert" in str(coinbase.query_one(".pane-header").render())
        await refreshed(pilot, coinbase)  # still breaching: no second bell, no second page
        await until(pilot, lambda: pages.exists() and pages.read_text().count("\n") >= 1)
        assert bells == [1]
        fired = json.loads(pages.read_text().splitlines()[0])
        assert fired["state"] == "firing" and fired["value"] == "9999.999999" and fired["asset"] == "USDC"
        assert fired["rule"] == "USDC withdrawable low" and fired["stale"] is False

        await pilot.press("a")
        view = app.screen
        assert isinstance(view, AlertsScreen)
        assert "1 firing" in str(view.query_one("#alerts-title").render())

        await pilot.press("question_mark")  # help over it: the view underneath still follows
        assert isinstance(app.screen, HelpScreen)

        sim.market.set_intx(main, "USDC", max_withdraw_amount="10000")
        await refreshed(pilot, coinbase)  # the alerts view open across a refresh (and its prices) follows it
        await until(pilot, lambda: "0 firing · 1 cleared" in str(view.query_one("#alerts-title").render()))
        await pilot.press("escape")
        assert app.screen is view
        await pilot.press("escape")
        assert coinbase.flagged == set() and not app.monitor.alerts.active
        await until(pilot, lambda: pages.read_text().count("\n") >= 2)
        cleared = json.loads(pages.read_text().splitlines()[1])
        assert cleared["state"] == "cleared" and cleared["cleared_at"] is not None
        assert bells == [1]


async def test_a_failing_command_is_reported_not_fatal(sim: Simulator) -> None:
    rule = """
[[alert]]
venue = "Coinbase INTX (simulated)"
field = "quantity"
above = 0
command = "/nonexistent/pager --now"
"""
    app = BalanceApp(parse(sim.config_text(60) + rule), demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await until(pilot, lambda: any("cannot start" in str(n.message) for n in app._notifications))
        assert app.is_running


async def test_totals_add_up_both_venues_under_one_name(sim: Simulator) -> None:
    vault = next(iter(sim.market.vaults))
    sim.market.set_kraken(vault, "XXBT", "1.000000000000000001", "0")
    app = BalanceApp(parse(sim.config_text(60)), demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        assert app.totals_pane is not None
        await until(pilot, lambda: "total:BTC" in app.totals_pane.rows)  # type: ignore[union-attr]
        expected = Decimal(0)
        for v in sim.market.vaults.values():
            for asset in ("XBT", "XXBT", "BTC"):  # the spot API's spellings and the custody docs'
                if asset in v.holdings:
                    expected += v.holdings[asset]["balance"]
        for p in sim.market.portfolios.values():
            if "BTC" in p.holdings:
                expected += p.holdings["BTC"]["quantity"]
        row = app.totals_pane.rows["total:BTC"]
        assert row.values["total"] == expected and format(row.values["total"], "f").endswith("000000001")
        spelled = row.text("spelled")
        assert "XXBT" in spelled and "BTC" in spelled
        await pilot.press("t")
        assert not app.totals_pane.display


async def test_drill_down_shows_the_session_and_day_trend(sim: Simulator, tmp_path: Path) -> None:
    vault = next(iter(sim.market.vaults))
    sim.market.set_kraken(vault, "XBT", "1.5", "0")
    app = BalanceApp(parse(sim.config_text(60)), demo=True, history=tmp_path / "h.sqlite3")
    async with app.run_test(size=(120, 40)) as pilot:
        kraken, _ = await loaded(pilot)
        sim.market.set_kraken(vault, "XBT", "2.000000000000000001", "0")
        await refreshed(pilot, kraken)
        kraken.table.move_cursor(row=kraken.table.get_row_index(f"{vault}:XBT"))
        await pilot.press("enter")
        assert app.monitor.history is not None
        app.monitor.history.flush()

        def trend() -> str:
            app.screen.show_trend()  # type: ignore[attr-defined]
            return str(app.screen.query_one("#trend").render())

        await until(pilot, lambda: "1.5 … 2.000000000000000001" in trend().split("\n")[0])
        await until(pilot, lambda: "1.5 … 2.000000000000000001" in trend().split("\n")[1])


async def test_in_liquidation_on_the_portfolio_summary(sim: Simulator) -> None:
    rule = """
[[alert]]
name = "portfolio in liquidation"
venue = "Coinbase INTX (simulated)"
field = "summary.in_liquidation"
is = true
"""
    main = next(p for p, v in sim.market.portfolios.items() if v.name == "Main")
    app = BalanceApp(parse(sim.config_text(60) + rule), demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        _, coinbase = await loaded(pilot)
        summaries = sim.count("intx", endpoint="summary")
        assert summaries >= len(sim.market.portfolios)  # asked for only because a rule needs it
        assert not app.monitor.alerts.active
        sim.market.portfolios[main].in_liquidation = True
        await refreshed(pilot, coinbase)
        (alert,) = app.monitor.alerts.active.values()
        assert alert.target.account_id == main and alert.to_json()["value"] is True
        assert "whole account" in alert.target.label() and "⚑ 1 alert" in str(
            coinbase.query_one(".pane-header").render()
        )
        sim.market.portfolios[main].in_liquidation = False
        await refreshed(pilot, coinbase)
        assert not app.monitor.alerts.active


async def test_no_summary_requests_without_a_rule_that_needs_them(sim: Simulator) -> None:
    app = BalanceApp(parse(sim.config_text(60)), demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        _, coinbase = await loaded(pilot)
        await refreshed(pilot, coinbase)
        assert sim.count("intx", endpoint="summary") == 0
