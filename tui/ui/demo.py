"""`--demo`: the simulator in-process on a free port, and the TUI pointed at it."""

from __future__ import annotations

from tui.config import parse
from tui.sim import Simulator


def run_demo(seed: int = 7, refresh_seconds: float = 5, tick_seconds: float = 5.0, activity: float = 0.15) -> int:
    """A calm market: every 5 s about one holding in seven moves, now and then a deposit or a loan."""
    from tui.ui.app import run_app

    with Simulator(seed=seed, tick_seconds=tick_seconds, activity=activity) as sim:
        config = parse(sim.config_text(refresh_seconds))
        return run_app(config, demo=True, history=":memory:")  # simulated money never reaches the real history
