"""Idle cost of the live TUI in a real terminal (tmux), 5 s refresh.

Scenarios:
  floor      bench/floor_app.py: a bare Textual app updating one label each second (what ours is held to).
  demo       `balance-tui --demo`: the simulator runs inside the TUI's process, as a new user sees it.
  alone      the same world served by another process (bench/world.py): the TUI's own cost, as in
             production where the venues are not in our process.
  rows-2000  10 vaults and 10 portfolios of 100 assets each (2,000 rows), from another process.
  *-recording  the same with history recorded (to a temporary file) and alert rules on every venue.
History is off in the others, and never written to the user's own data directory; key ledgers and nonces go
to a state folder of the run's own.

CPU is % of one core over a window after warm-up (CPU time / wall time, both from /proc, so the figure
is a ratio and does not depend on this machine's speed); RSS is read after warm-up and at the end.

    .venv/bin/python bench/idle.py --scenario rows-2000 --cpu-seconds 60 --total-seconds 600
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
ROWS_2000 = ["--vaults", "10", "--portfolios", "10", "--assets", "100", "--per-account", "100"]
WORLDS = {
    "alone": [],
    "alone-recording": ["--alerts"],
    "rows-2000": ROWS_2000,
    "rows-2000-recording": [*ROWS_2000, "--alerts"],
}


def cpu_seconds(pid: int) -> float:
    """CPU time of the process's threads, from the scheduler's own count in nanoseconds: /proc's utime and stime
    come in clock ticks (10 ms), and an idle TUI spends ~0.25 s in a 30 s window, so one tick was 4 % of the
    figure. A thread that ended is no longer counted here (Textual's and asyncio's threads live as long as the
    process), and one that ends while it is read is skipped. Without schedstat (a kernel built without it),
    utime + stime, for every sample alike."""
    if not Path(f"/proc/{pid}/schedstat").exists():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        if time.monotonic() > deadline:
            sys.exit(f"bench/idle.py: {path} did not appear")
        time.sleep(0.05)


def _gone_after_hangup(pid: int, patience: float = 15.0) -> None:
    """A program left running once its terminal is gone would spoil every later round (one was seen spinning
    at 30-60 % of a core): wait for it to end, else kill it and fail the run."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.1)
    os.kill(pid, 9)
    sys.exit(f"bench/idle.py: pid {pid} was still running {patience:g} s after its terminal closed (killed)")


def measure(scenario: str, cpu_window: float, total: float, warmup: float = 15.0) -> dict[str, object]:
    if shutil.which("tmux") is None:
        sys.exit("bench/idle.py needs tmux")
    script = Path(sys.executable).with_name("balance-tui")
    tmp = Path(tempfile.mkdtemp())
    socket = f"bench-idle-{os.getpid()}-{scenario}"  # two scenarios may run side by side
    pidfile, config = tmp / "pid", tmp / "world.toml"
    world = None
    if scenario == "floor":
        command = f"{sys.executable} {ROOT / 'bench' / 'floor_app.py'}"
    elif scenario == "demo":
        command = f"{script} --demo"
    else:
        recording = ["--history", str(tmp / "history.sqlite3")] if scenario.endswith("-recording") else []
        world = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "world.py"),
                "--config-out",
                str(config),
                *WORLDS[scenario],
                *recording,
            ]
        )
        _wait_for(config)
        command = f"{script} --config {config}"
    # a state folder of its own: the key ledgers and nonces in the user's (left by tests and other runs, a
    # ledger of every simulator's port) must not make the figure depend on what ran before
    launch = f"sh -c 'unset COLUMNS LINES; export XDG_STATE_HOME={tmp / 'state'}; echo $$ > {pidfile}; exec {command}'"
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "b", "-x", "120", "-y", "40", launch], check=True)
    try:
        _wait_for(pidfile)
        pid = int(pidfile.read_text())
        time.sleep(warmup)
        rss_start = rss_mb(pid)
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        world0 = cpu_seconds(world.pid) if world else 0.0
        time.sleep(cpu_window)
        cpu1, wall1 = cpu_seconds(pid), time.monotonic()
        world1 = cpu_seconds(world.pid) if world else 0.0
        remaining = total - warmup - cpu_window
        if remaining > 0:
            time.sleep(remaining)
        return {
            "scenario": scenario,
            "idle_cpu_percent_of_core": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 3),
            "world_cpu_percent_of_core": round(100 * (world1 - world0) / (wall1 - wall0), 3) if world else None,
            "cpu_window_seconds": round(wall1 - wall0, 1),
            "rss_mb_after_warmup": round(rss_start, 1),
            "rss_mb_at_end": round(rss_mb(pid), 1),
            "run_seconds": total,
        }
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], check=False)
        if pidfile.exists() and pidfile.read_text().strip().isdigit():
            _gone_after_hangup(int(pidfile.read_text()))
        if world is not None:
            world.terminate()
            world.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("floor", "demo", *WORLDS), default="demo")
    parser.add_argument("--cpu-seconds", type=float, default=30.0)
    parser.add_argument("--total-seconds", type=float, default=600.0)
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    figures = measure(args.scenario, args.cpu_seconds, max(args.total_seconds, args.cpu_seconds + 15))
    print(json.dumps(figures, indent=1))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
