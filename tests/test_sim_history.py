"""Simulated money never reaches the operator's history: a session on `balance-tui sim --config-out`, run as an
operator runs it, records beside the written config and leaves the platform data folder's history alone."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, _cli_env, run_cli, start_cli
from tests.test_attach import PATIENCE, free_port
from tui.config import SIM_MARKER, parse
from tui.sim import Simulator


def rows(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM changes").fetchone()[0])
    except sqlite3.OperationalError:  # created, its table not yet
        return 0
    finally:
        conn.close()


def test_a_simulator_session_leaves_the_real_history_alone(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    real = tmp_path / "data" / "balance-tui" / "history.sqlite3"  # where a real config's history goes
    out = tmp_path / "sim.toml"
    sim = subprocess.Popen(
        [sys.executable, "-m", "tui", "sim", "--config-out", str(out), "--tick", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_cli_env(env),
        cwd=ROOT,
    )
    try:
        assert sim.stdout is not None
        banner = [sim.stdout.readline() for _ in range(4)]
        beside = tmp_path / "sim.history.sqlite3"
        assert banner[3] == f"its history goes to {beside}, never into your real history\n", banner
        written = out.read_text()
        assert written.startswith(SIM_MARKER) and f"# Its history is kept in {beside}, never in your real" in written

        done = run_cli("--once", "--config", str(out), env=env)
        assert done.returncode == 0, done.stderr

        port = free_port()
        serve = start_cli("serve", "--config", str(out), "--listen", f"127.0.0.1:{port}", env=env)
        try:
            deadline = time.monotonic() + PATIENCE
            while rows(beside) + rows(real) == 0 and time.monotonic() < deadline:  # the poller records changes
                assert serve.poll() is None, serve.communicate()[1]
                time.sleep(0.1)
        finally:
            serve.terminate()
            serve.communicate(timeout=PATIENCE)
        assert rows(real) == 0, "simulated money reached the operator's history"
        assert rows(beside) > 0, "serve never recorded the simulated changes"
        shown = run_cli("history", "--config", str(out), "--format", "csv", env=env)
        assert shown.returncode == 0 and "Kraken custody (simulated)" in shown.stdout, shown.stderr
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(timeout=PATIENCE)
    assert rows(real) == 0, "simulated money reached the operator's history"


def test_a_simulator_config_that_names_no_history_records_none(sim: Simulator) -> None:
    """`--demo`'s config, the tests' `sim.write_config`, and one written by an older release: the marker
    turns history off, unless the config itself says where it goes."""
    assert parse(sim.config_text()).history.enabled is False
    older = f"{SIM_MARKER} (seed 7): demo keys, simulated money.\n\nrefresh_seconds = 5\n"
    assert parse(older).history.enabled is False
    chosen = parse(older + '\n[history]\npath = "/tmp/sim.history.sqlite3"\n').history
    assert chosen.enabled and chosen.path == Path("/tmp/sim.history.sqlite3")
    assert parse("refresh_seconds = 5\n").history.enabled  # a real config records by default
