"""Idle cost of the live TUI: `balance-tui --demo` (2 venues, 5 s refresh) in a real terminal (tmux).

Reports CPU as % of one core over a window after warm-up (CPU time / wall time, both read from /proc,
so the figure is a ratio and does not depend on how fast this machine is) and RSS at the end.

    .venv/bin/python bench/idle.py --cpu-seconds 30 --total-seconds 600
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(cpu_window: float, total: float, warmup: float = 10.0, size: str = "120x40") -> dict[str, float]:
    if shutil.which("tmux") is None:
        sys.exit("bench/idle.py needs tmux")
    script = Path(sys.executable).with_name("balance-tui")
    tmp = Path(tempfile.mkdtemp())
    socket = f"bench-idle-{os.getpid()}"
    width, height = size.split("x")
    pidfile = tmp / "pid"
    subprocess.run(
        [
            "tmux",
            "-L",
            socket,
            "new-session",
            "-d",
            "-s",
            "b",
            "-x",
            width,
            "-y",
            height,
            f"sh -c 'unset COLUMNS LINES; echo $$ > {pidfile}; exec {script} --demo'",
        ],
        check=True,
    )
    try:
        while not pidfile.exists() or not pidfile.read_text().strip().isdigit():
            time.sleep(0.05)
        pid = int(pidfile.read_text())
        time.sleep(warmup)
        rss_start = rss_mb(pid)
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        time.sleep(cpu_window)
        cpu1, wall1 = cpu_seconds(pid), time.monotonic()
        remaining = total - warmup - cpu_window
        if remaining > 0:
            time.sleep(remaining)
        return {
            "idle_cpu_percent_of_core": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 3),
            "cpu_window_seconds": round(wall1 - wall0, 1),
            "rss_mb_after_warmup": round(rss_start, 1),
            "rss_mb_at_end": round(rss_mb(pid), 1),
            "run_seconds": total,
        }
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-seconds", type=float, default=30.0)
    parser.add_argument("--total-seconds", type=float, default=600.0)
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    figures = measure(args.cpu_seconds, max(args.total_seconds, args.cpu_seconds + 10))
    print(json.dumps(figures, indent=1))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
