"""A simulated world in its own process, so that a benchmark can measure the TUI without the venues.

    .venv/bin/python bench/world.py --config-out /tmp/world.toml --vaults 10 --portfolios 10 --assets 100

Writes a ready config (0600) and serves until killed. Defaults are the world of `--demo`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui.config import write_private  # noqa: E402
from tui.sim import Simulator, parse_fault_flag  # noqa: E402

ALERTS = """
# Rules evaluated on every row at every refresh but quiet in this world, as in a normal day: what they
# cost to keep on is measured, not the drawing of notifications.
[[alert]]
venue = "Coinbase INTX (simulated)"
field = "max_withdraw_amount"
below = "0"

[[alert]]
venue = "Kraken custody (simulated)"
field = "balance"
change = "50%"
window = "10m"

[[alert]]
venue = "totals"
field = "total"
asset = "BTC"
below = "0.00000001"
"""


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
    parser.add_argument("--history", type=Path, help="record history here (default: none, never the user's own)")
    parser.add_argument("--alerts", action="store_true", help="add alert rules on every venue and on totals")
    parser.add_argument("--fault", action="append", default=[], help="as `balance-tui sim --fault`, repeatable")
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
    for spec in args.fault:
        fault = parse_fault_flag(spec)
        world.faults.set(
            fault.kind, venue=fault.venue, endpoint=fault.endpoint, value=fault.value, probability=fault.probability
        )
    with world:
        text = world.config_text(args.refresh)
        text += f"\n[history]\nenabled = {'true' if args.history else 'false'}\n"
        if args.history:
            text += f"path = {json.dumps(str(args.history))}\n"
        if args.alerts:
            text += ALERTS
        write_private(args.config_out, text)
        stop.wait()


if __name__ == "__main__":
    main()
