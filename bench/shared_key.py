"""One key, many processes, for minutes: `serve`, the TUI (in tmux) and loops of `--once` on one Kraken key and
one INTX key of a strict simulator (tests/crowd.py). What the simulator refused, every `--once`'s exit code,
the longest `--once` beside a lone one measured first (the bound: one rate window, 10 s, more), and what
`serve`'s metrics counted.

    .venv/bin/python bench/shared_key.py --seconds 300 --loops 3

Prints JSON; exit 1 when anything was refused or a `--once` failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.crowd import run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--loops", type=int, default=3)
    parser.add_argument("--pause", type=float, nargs=2, default=(5.0, 20.0), help="between a loop's runs (min max)")
    parser.add_argument("--no-tui", action="store_true", help="the second poller is --watch, not the TUI in tmux")
    parser.add_argument("--fault", action="append", default=[], help="a simulator fault, as `balance-tui sim` takes")
    args = parser.parse_args()
    result = run(args.seconds, args.loops, tuple(args.pause), tui=not args.no_tui, faults=tuple(args.fault))
    print(json.dumps(result, indent=1))
    return 1 if result["refused_by_the_simulator"] or result["once_failed_count"] else 0


if __name__ == "__main__":
    sys.exit(main())
