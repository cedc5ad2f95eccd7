"""Every command piped into a reader that leaves early (`balance-tui ... | head -1`) ends quietly: nothing on
stderr (no traceback, no "Exception ignored" line) and exit 0, whatever it would have returned (one rule for
every command: the reader had what it wanted). Real processes, real pipes.

A reader that closes before the first byte makes the very first write (or Python's flush at exit) fail, every
time; one that reads a line, then closes, is `| head -1` as typed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, _cli_env, write_config
from tests.test_attach import Server, free_port
from tui.sim import Simulator


def into_early_closing_reader(
    *args: str, lines: int = 0, buffered: bool = True, timeout: float = 60
) -> tuple[int, str]:
    """Run the program with stdout into a pipe whose reader takes `lines` lines (0: none at all), then closes
    it; its exit status and all it wrote on stderr. `buffered`: stdout block-buffered, as an operator runs it
    (what is left in the buffer is written by a flush at the end); else written at once (PYTHONUNBUFFERED,
    which this suite's own environment may set), so the failure comes from inside the command."""
    env = _cli_env(None)
    env.pop("PYTHONUNBUFFERED", None)
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    reader, writer = os.pipe()
    if lines == 0:
        os.close(reader)  # gone before the program starts: its first write finds no reader
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", *args],
        stdout=writer,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=ROOT,
    )
    os.close(writer)
    if lines:
        with os.fdopen(reader) as out:
            for _ in range(lines):
                assert out.readline(), "the program ended before writing the lines the reader waits for"
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


@pytest.fixture
def history_config(tmp_path: Path) -> Path:
    db = tmp_path / "history.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE changes (at REAL, venue TEXT, account TEXT, asset TEXT, field TEXT, value TEXT)")
        rows = [(1795276800.0 + i, "Kraken", "V1", "XBT", "balance", f"{i}.5") for i in range(2000)]
        conn.executemany("INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.chmod(0o600)
    return write_config(tmp_path / "c.toml", f'[history]\npath = "{db}"\n')


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("config", "path"),
        ("config", "check"),
        ("--once",),
        ("--once", "--format", "json"),
        ("--once", "--format", "csv"),
        ("--watch",),
        ("sim",),
    ],
    ids=lambda args: " ".join(args),
)
def test_a_command_whose_reader_is_gone_before_it_writes(args: tuple[str, ...], sim_config: Path) -> None:
    command = args if args[0] in ("--help", "sim") else (*args, "--config", str(sim_config))
    assert into_early_closing_reader(*command) == (0, "")


@pytest.mark.parametrize("args", [("--help",), ("config", "check"), ("--once",), ("sim",)], ids=" ".join)
def test_unbuffered(args: tuple[str, ...], sim_config: Path) -> None:
    command = args if args[0] in ("--help", "sim") else (*args, "--config", str(sim_config))
    assert into_early_closing_reader(*command, buffered=False) == (0, "")


def test_history_into_a_reader_that_leaves(history_config: Path) -> None:
    assert into_early_closing_reader("history", "--config", str(history_config)) == (0, "")
    assert into_early_closing_reader("history", "--config", str(history_config), lines=1) == (0, "")


@pytest.mark.parametrize("args", [("--once",), ("config", "check")], ids=" ".join)
def test_head_dash_1(args: tuple[str, ...], sim_config: Path) -> None:
    assert into_early_closing_reader(*args, "--config", str(sim_config), lines=1) == (0, "")


@pytest.fixture
def moving(tmp_path: Path) -> Iterator[Path]:
    """A simulator whose balances move several times a second, and a config that refreshes every second."""
    with Simulator(seed=5, tick_seconds=0.1, activity=0.9) as live:
        config = tmp_path / "moving.toml"
        live.write_config(config, refresh_seconds=1)
        yield config


def test_watch_ends_by_itself_when_its_reader_leaves(moving: Path) -> None:
    """The reader takes the first line and goes; a later change finds no reader, and `--watch` ends."""
    assert into_early_closing_reader("--watch", "--config", str(moving), lines=1) == (0, "")


def test_attached_once_and_watch(sim_config: Path) -> None:
    server = Server(sim_config, free_port())
    try:
        server.ready()
        for fmt in ("table", "json", "csv"):
            assert into_early_closing_reader("--attach", server.url, "--once", "--format", fmt) == (0, ""), fmt
        assert into_early_closing_reader("--attach", server.url, "--watch") == (0, "")
    finally:
        server.stop()
