"""Which processes keep a key's nonces (and its ledger) on disk, each run in a fresh state folder against a
strict simulator: every command that signs with a configured key — `--once`, `config check`, `--watch`,
`serve` — leaves the key's nonce file holding the last nonce the simulator received from it (its own log, not
our code's word), private, beside the key's ledger, and an INTX key's ledger too; the commands that sign
nothing or only throwaway keys — `sim`, `book` — leave the state folder empty. (The demo: tests/test_terminal.py.)
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import stat
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import run_cli, start_cli
from tests.test_serve import until
from tui.sim import Simulator

PATIENCE = 60.0


def _tag(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]  # README: "named by a hash of the key"


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _stopped(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, err = proc.communicate(timeout=PATIENCE)
    return err


def _once(config: Path, env: dict[str, str]) -> str:
    done = run_cli("--once", "--config", str(config), env=env)
    assert done.returncode == 0, done.stderr
    return done.stderr


def _check(config: Path, env: dict[str, str]) -> str:
    done = run_cli("config", "check", "--config", str(config), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stderr


def _watch(config: Path, env: dict[str, str]) -> str:
    proc = start_cli("--watch", "--format", "jsonl", "--config", str(config), env=env)
    assert proc.stdout is not None
    assert '"event": "new"' in proc.stdout.readline()  # the whole state came: both venues answered
    return _stopped(proc)


def _recorded_both(history: Path) -> bool:
    """Both venues' balances are in the history (a venue answering is not yet its answer written down)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{history}?mode=ro", uri=True)) as db:
            return db.execute("SELECT COUNT(DISTINCT venue) FROM changes").fetchone()[0] >= 2
    except sqlite3.Error:
        return False


def _serve(config: Path, env: dict[str, str], sim: Simulator, ready: Callable[[], bool] = lambda: True) -> str:
    proc = start_cli("serve", "--config", str(config), "--listen", "127.0.0.1:0", env=env)
    try:
        until(lambda: len(sim.nonce_log()) >= 3 and sim.count(venue="intx", verdict="ok") > 0, "serve's first calls")
        until(ready, "serve's own state")
    finally:
        err = _stopped(proc)
    return err


KEEPERS: dict[str, Callable[[Path, dict[str, str], Simulator], str]] = {
    "--once": lambda config, env, sim: _once(config, env),
    "config check": lambda config, env, sim: _check(config, env),
    "--watch": lambda config, env, sim: _watch(config, env),
    "serve": _serve,
}


@pytest.mark.parametrize("command", list(KEEPERS))
def test_a_command_signing_with_a_configured_key_keeps_its_nonces(
    command: str, sim: Simulator, sim_config: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    err = KEEPERS[command](sim_config, {"XDG_STATE_HOME": str(state)}, sim)
    assert "Traceback" not in err, err
    sent = sim.nonce_log()
    assert sent, "no signed Kraken call reached the simulator"
    folder = state / "balance-tui" / "kraken-nonces"
    nonce_file = folder / _tag(sim.kraken_keys.api_key)
    assert nonce_file.read_text().strip() == str(max(sent)), (nonce_file.read_text(), sent[-3:])
    assert Path(f"{nonce_file}.json").is_file()  # the key's ledger, beside its nonce
    intx = state / "balance-tui" / "intx-keys" / _tag(sim.intx_keys.api_key)
    assert intx.is_file() and Path(f"{intx}.json").is_file()
    for path in [folder, folder.parent, *_files(state)]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    assert not any(sim.kraken_keys.api_key in p.name for p in _files(state))


def test_the_simulator_and_book_keep_nothing(sim: Simulator, sim_config: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {"XDG_STATE_HOME": str(state)}
    proc = start_cli("sim", "--seed", "3", "--config-out", str(tmp_path / "own.toml"), env=env)
    assert proc.stdout is not None
    assert "simulator (seed 3) on http://127.0.0.1:" in proc.stdout.readline()
    assert "Traceback" not in _stopped(proc)
    recorded = tmp_path / "book.toml"
    sim.write_config(recorded)
    with recorded.open("a") as out:  # the history a `serve` just recorded, as `book` reads it
        out.write(f'\n[history]\nenabled = true\npath = "{tmp_path / "history.sqlite3"}"\n')
    history = tmp_path / "history.sqlite3"
    err = _serve(recorded, {"XDG_STATE_HOME": str(tmp_path / "other")}, sim, lambda: _recorded_both(history))
    assert "Traceback" not in err
    signed = len(sim.nonce_log())
    at = datetime.now(UTC).isoformat()
    done = run_cli("book", "--at", at, "--format", "json", "--config", str(recorded), env=env)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert not state.exists() or _files(state) == [], _files(state)
    assert len(sim.nonce_log()) == signed  # book signed nothing
