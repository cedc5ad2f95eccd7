"""One key, many processes: a `serve`, a second poller (the TUI in tmux, or `--watch`) and loops of `--once`,
all on the same Kraken key and the same INTX key of one strict simulator, for a while. What the simulator
refused (nonce, rate limit), every `--once`'s exit code and duration beside a lone `--once` measured first,
and what `serve`'s metrics counted. The suite's test (tests/test_shared_key.py) runs a short crowd;
bench/shared_key.py the long one, with the figures.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tui.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tui", *args]


def _once(config: Path, env: dict[str, str]) -> tuple[int, float, str]:
    started = time.monotonic()
    done = subprocess.run(
        _cli("--once", "--config", str(config)),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    return done.returncode, time.monotonic() - started, done.stderr.strip()


def _loop(config: Path, env: dict[str, str], until: float, pause: tuple[float, float], out: list[Any]) -> None:
    rng = random.Random()
    while time.monotonic() < until:
        out.append(_once(config, env))
        time.sleep(rng.uniform(*pause))


def _metric(text: str, name: str) -> dict[str, float]:
    """Every sample of `name` in a Prometheus text scrape, by its label text."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line.rpartition(" ")
            found[labels[len(name) :]] = float(value)
    return found


def run(
    seconds: float,
    loops: int,
    pause: tuple[float, float],
    tui: bool,
    faults: tuple[str, ...] = (),
    measure_lone: bool = True,
) -> dict[str, Any]:
    """The crowd for `seconds`; `faults`: the simulator's (`latency:0.2@kraken%50` reorders what two processes
    send a moment apart, as a real network may)."""
    from tui.sim import parse_fault_flag

    work = Path(tempfile.mkdtemp(prefix="bt-shared-key-"))
    env = {**os.environ, "XDG_STATE_HOME": str(work / "state"), "XDG_DATA_HOME": str(work / "data")}
    env.pop("BALANCE_TUI_CONFIG", None)
    with Simulator(seed=7, tick_seconds=1.0) as sim:
        for fault in faults:
            sim.faults.add(parse_fault_flag(fault))
        config = work / "sim.toml"
        sim.write_config(config, refresh_seconds=5)
        lone = [_once(config, env)] if measure_lone else []
        if lone:
            time.sleep(11)  # the lone run's calls leave Kraken's counter before the crowd starts
        before = sim.stats()
        port = _free_port()
        serve = subprocess.Popen(
            _cli("serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        second: subprocess.Popen[str] | None = None
        tmux = f"bt-shared-{os.getpid()}"
        if tui and shutil.which("tmux"):
            command = " ".join([sys.executable, "-m", "tui", "--config", str(config)])
            envs = " ".join(f"{k}={v}" for k, v in env.items() if k.startswith("XDG_"))
            subprocess.run(
                ["tmux", "-L", tmux, "new-session", "-d", "-x", "120", "-y", "40", f"cd {ROOT} && {envs} {command}"],
                check=True,
            )
            poller = "tui (tmux)"
        else:
            second = subprocess.Popen(
                _cli("--watch", "--config", str(config)),
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            poller = "--watch"
        runs: list[list[Any]] = [[] for _ in range(loops)]
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=_loop, args=(config, env, until, pause, out)) for out in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        import httpx

        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
        serve.terminate()
        serve_err = serve.communicate(timeout=60)[1]
        if second is not None:
            second.terminate()
            second.communicate(timeout=60)
        else:
            subprocess.run(["tmux", "-L", tmux, "kill-server"], check=False)
        during = sim.stats() - before
    refused = {"/".join(k): v for k, v in during.items() if k[2] not in ("ok",)}
    durations = [took for out in runs for _, took, _ in out]
    failed = [(code, err) for out in runs for code, _, err in out if code != 0]
    lone_time = lone[0][1] if lone else None
    requests = _metric(metrics, "balance_tui_venue_requests_total")
    return {
        "seconds": seconds,
        "loops": loops,
        "second_poller": poller,
        "refused_by_the_simulator": refused,
        "calls_by_the_simulator": {"/".join(k): v for k, v in during.items()},
        "once_runs": len(durations),
        "once_failed": failed[:5],
        "once_failed_count": len(failed),
        "once_lone_seconds": round(lone_time, 2) if lone_time is not None else None,
        "once_longest_seconds": round(max(durations), 2) if durations else None,
        "once_median_seconds": round(statistics.median(durations), 2) if durations else None,
        "serve_requests": requests,
        "serve_stderr": serve_err.strip().splitlines()[:10],
    }
