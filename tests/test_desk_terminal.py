"""The desk's keys in a real terminal (tmux), at 120×40 and at 80×24: every column within reach, the mask
on a drill-down, and every screen usable on a small terminal (the drill-down and help scroll, the footer
fits)."""

from __future__ import annotations

import re

from tests.test_terminal import SCRIPT, Terminal, terminal  # noqa: F401 (the fixture)


def test_right_reaches_the_columns_off_screen_and_the_mask_hides_a_share(terminal: Terminal) -> None:  # noqa: F811
    terminal.start(f"{SCRIPT} --demo")
    screen = terminal.wait_for(lambda s: "Treasury" in s and "Main" in s and "worth $" in s)
    assert "change since start" in screen.split("portfolio")[0]  # Kraken's pane fits; INTX's does not:
    intx = screen.split("portfolio", 1)[1].split("Totals")[0]
    assert " loan " not in intx and "change since start" not in intx
    terminal.keys("Tab", "Right", "Right", "Right")
    screen = terminal.wait_for(lambda s: "change since start" in s.split("portfolio", 1)[1].split("Totals")[0])
    assert re.search(r"portfolio +asset +.*loan", screen)  # the names stay, the amounts moved left
    terminal.keys("BTab", "m", "Enter")
    screen = terminal.wait_for(lambda s: "share of vault" in s and "•" in s.split("share of vault")[1][:60])
    assert not re.search(r"\d+\.\d\d % of \$", screen)
    terminal.keys("Escape")
    terminal.wait_for(lambda s: "share of vault" not in s)
    terminal.keys("q")
    assert terminal.exit_status() == 0


def test_every_screen_is_usable_at_80x24(terminal: Terminal) -> None:  # noqa: F811
    terminal.start(f"{SCRIPT} --demo", size=(80, 24))
    screen = terminal.wait_for(lambda s: "Main" in s and "worth $" in s)
    assert re.search(r"q Quit .* a Alerts\s*$", screen.rstrip().splitlines()[-1])  # the footer fits
    terminal.keys("Tab", "Enter")
    screen = terminal.wait_for(lambda s: "asset_id" in s)
    assert "portfolio summary" not in screen
    terminal.keys("PageDown", "PageDown")
    terminal.wait_for(lambda s: "portfolio summary" in s and "in liquidation" in s)  # the body scrolled
    terminal.keys("Escape")
    terminal.wait_for(lambda s: "asset_id" not in s and "Main" in s)
    terminal.keys("?")
    screen = terminal.wait_for(lambda s: "balance-tui — keys" in s)
    assert "⚑ marks a pane" not in screen
    terminal.keys("PageDown", "PageDown")
    terminal.wait_for(lambda s: "⚑ marks a pane" in s)  # help scrolled to its end
    terminal.keys("Escape")
    terminal.wait_for(lambda s: "balance-tui — keys" not in s)
    terminal.keys("q")
    assert terminal.exit_status() == 0
