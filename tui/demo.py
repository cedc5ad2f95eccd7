"""`--demo`: the simulator in-process on a free port, and the TUI pointed at it."""

from __future__ import annotations

from .config import parse
from .sim import Simulator


def run_demo(seed: int = 7, refresh_seconds: float = 5) -> int:
    from .app import run_app

    with Simulator(seed=seed, tick_seconds=1.0) as sim:
        config = parse(sim.config_text(refresh_seconds))
        return run_app(config, demo=True)
