"""A simulated world in its own process, so that a benchmark can measure the TUI without the venues.

    .venv/bin/python bench/world.py --config-out /tmp/world.toml --vaults 10 --portfolios 10 --assets 100

Writes a ready config (0600) and serves until killed. Defaults are the world of `--demo`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui.sim import Simulator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--vaults", type=int, default=3)
    parser.add_argument("--portfolios", type=int, default=3)
    parser.add_argument("--assets", type=int, default=12)
    parser.add_argument("--per-account", type=int, default=8)
    parser.add_argument("--tick", type=float, default=5.0)
    parser.add_argument("--activity", type=float, default=0.15)
    parser.add_argument("--refresh", type=float, default=5.0)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    world = Simulator(
        args.seed,
        tick_seconds=args.tick,
        vaults=args.vaults,
        portfolios=args.portfolios,
        assets=args.assets,
        assets_per_account=args.per_account,
        activity=args.activity,
    )
    with world:
        world.write_config(args.config_out, args.refresh)
        stop.wait()


if __name__ == "__main__":
    main()
