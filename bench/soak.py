"""Soak: the TUI headless against the simulator, random faults on ~10% of requests, for a while.

    .venv/bin/python bench/soak.py --seconds 600

Reports what would be a bug: refresh workers that stopped, exceptions that reached the event loop or
ended the app, and venue errors that are our own (a client exception the engine caught and reported as
"internal error"); RSS at start and end; and the rate-limit and nonce rejections the simulator counted
outside the injected faults. Exits 1 if there is any of these, 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.worker import WorkerState  # noqa: E402

from tui.config import parse  # noqa: E402
from tui.sim import Simulator  # noqa: E402
from tui.snapshot.model import VenueSnapshot  # noqa: E402
from tui.ui.app import BalanceApp  # noqa: E402

FAULTS = ("http-5xx", "429", "html", "truncated", "reset")  # 2% each: ~10% of requests


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def watch_for_our_errors(app: BalanceApp, seen: list[str]) -> None:
    """Every snapshot the app takes passes here first: a venue error that is a bug of ours is kept."""
    take = app.monitor.take

    def checked(snapshot: VenueSnapshot, now: float) -> Any:
        errors = [snapshot.error, *(a.error for a in snapshot.accounts)]
        seen.extend(f"{snapshot.name}: {e.message}" for e in errors if e is not None and "internal error" in e.message)
        return take(snapshot, now)

    app.monitor.take = checked  # type: ignore[method-assign]


async def soak(seconds: float) -> dict[str, object]:
    loop_errors: list[str] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: loop_errors.append(context["message"]))
    internal: list[str] = []
    crashed: str | None = None
    with Simulator(seed=9, tick_seconds=5.0, activity=0.15) as sim:
        for kind in FAULTS:
            sim.faults.set(kind, probability=0.02)
        app = BalanceApp(parse(sim.config_text(5)), demo=True)
        watch_for_our_errors(app, internal)
        try:
            dead, start_rss, end_rss, samples = await _run(app, seconds)
        except Exception as exc:  # the app ended on an exception: the worst finding, reported as one
            crashed = f"{type(exc).__name__}: {exc}"
            dead, start_rss, end_rss, samples = [], 0.0, rss_mb(), []
        stats = sim.stats()
    injected = sum(n for (_, _, verdict), n in stats.items() if verdict.startswith("fault:"))
    served = sum(stats.values())
    return {
        "seconds": seconds,
        "requests": served,
        "injected_faults": injected,
        "injected_share": round(injected / served, 3) if served else 0,
        "rate_limit_rejections": sum(n for (_, _, v), n in stats.items() if v == "rate-limited"),
        "nonce_rejections": sum(n for (_, _, v), n in stats.items() if v == "bad-nonce"),
        "dead_workers": dead,
        "app_crashed": crashed,
        "loop_exceptions": loop_errors,
        "internal_errors": internal[:20],
        "rss_mb_start": round(start_rss, 1),
        "rss_mb_end": round(end_rss, 1),
        "rss_mb_samples": samples,
    }


async def _run(app: BalanceApp, seconds: float) -> tuple[list[str], float, float, list[float]]:
    async with app.run_test(size=(120, 40)) as pilot:
        while not all(p.rows for p in app.panes):
            await pilot.pause(0.1)
        start_rss = rss_mb()
        deadline = time.monotonic() + seconds
        samples = []
        while time.monotonic() < deadline:
            await pilot.pause(min(30.0, max(0.1, deadline - time.monotonic())))
            samples.append(round(rss_mb(), 1))
        workers = [w for w in app.workers if w.group == "source"]
        dead = [f"{w.name}: {w.state.name} {w.error!r}" for w in workers if w.state is not WorkerState.RUNNING]
        end_rss = rss_mb()
    return dead, start_rss, end_rss, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    result = asyncio.run(soak(args.seconds))
    print(json.dumps(result, indent=1))
    findings = ("dead_workers", "app_crashed", "loop_exceptions", "internal_errors")
    clean = not any(result[k] for k in findings) and not result["rate_limit_rejections"]
    clean = clean and not result["nonce_rejections"]
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
