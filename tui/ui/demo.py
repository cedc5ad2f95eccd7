"""`--demo`: the simulator in-process on a free port, and the TUI pointed at it."""

from __future__ import annotations

from tui.config import Config, parse
from tui.sim import Simulator

# Two rules a newcomer sees fire in the demo's first refresh (`a` lists them): a threshold on one venue's field,
# and one on the firm's total of an asset across venues.
DEMO_RULES = """
[[alert]]
name = "USDC withdrawable at INTX"
venue = "Coinbase INTX (simulated)"
asset = "USDC"
field = "max_withdraw_amount"
below = "2000000"

[[alert]]
name = "BTC held, all venues"
venue = "totals"
asset = "BTC"
field = "total"
below = 100
"""


def demo_config(sim: Simulator, refresh_seconds: float = 5) -> Config:
    """The simulator's venues and the demo's alert rules."""
    return parse(sim.config_text(refresh_seconds) + DEMO_RULES)


def run_demo(seed: int = 7, refresh_seconds: float = 5, tick_seconds: float = 5.0, activity: float = 0.15) -> int:
    """A calm market: every 5 s about one holding in seven moves, now and then a deposit or a loan."""
    from tui.ui.app import run_app

    with Simulator(seed=seed, tick_seconds=tick_seconds, activity=activity) as sim:
        config = demo_config(sim, refresh_seconds)
        return run_app(config, demo=True, history=":memory:")  # simulated money never reaches the real history
