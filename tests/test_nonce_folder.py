"""A Kraken nonce folder that cannot be used is one line on stderr from `--once`, `--watch`, `config check` and
`serve`, once per process, saying what to do; the venues are still read (nonces go on from memory). Real
processes on the simulator, with a file where the state folder should be (read-only folders do not stop root)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_cli, start_cli
from tests.test_attach import PATIENCE, free_port
from tui.credentials import Secret
from tui.venues import nonces
from tui.venues.nonces import NonceSource, store_for

SAID = "cannot keep Kraken nonces in"


@pytest.fixture
def blocked(tmp_path: Path) -> dict[str, str]:
    """An environment whose state folder has a file where balance-tui's folder should be."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "balance-tui").write_text("not a folder\n")
    return {"XDG_STATE_HOME": str(state)}


def said(stderr: str, blocked: dict[str, str]) -> str:
    """The one line about the nonce folder, checked for what it must say; nothing else on stderr."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    (line,) = lines
    folder = Path(blocked["XDG_STATE_HOME"]) / "balance-tui"
    assert line.startswith(f"balance-tui: {SAID} {folder / 'kraken-nonces'}: {folder} is a file"), line
    assert "make it writable (or set XDG_STATE_HOME)" in line and "from memory" in line
    return line


@pytest.mark.parametrize("command", [("--once",), ("config", "check")], ids=" ".join)
def test_once_and_check_say_it_once(command: tuple[str, ...], sim_config: Path, blocked: dict[str, str]) -> None:
    done = run_cli(*command, "--config", str(sim_config), env=blocked)
    assert done.returncode == 0, done.stderr  # the venues answered: nonces from memory
    said(done.stderr, blocked)


def test_watch_says_it_once(sim_config: Path, blocked: dict[str, str]) -> None:
    proc = start_cli("--watch", "--config", str(sim_config), env=blocked)
    assert proc.stdout is not None
    kraken = 0
    while kraken < 2:  # two refreshes' worth of Kraken lines: several signed calls, each with a nonce
        line = proc.stdout.readline()
        assert line, proc.communicate()[1]
        kraken += json.loads(line)["venue"].startswith("Kraken")
    proc.terminate()
    _, err = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 0
    said(err, blocked)


def test_serve_says_it_once(sim_config: Path, blocked: dict[str, str]) -> None:
    port = free_port()
    proc = start_cli("serve", "--config", str(sim_config), "--listen", f"127.0.0.1:{port}", env=blocked)
    try:
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:  # until every venue has answered (several signed Kraken calls)
            assert proc.poll() is None
            try:
                venues = httpx.get(f"http://127.0.0.1:{port}/snapshot", timeout=5).json()["venues"]
                if all(v["fetched_at"] for v in venues):
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("serve never answered with every venue")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 0
    said(err, blocked)


def test_two_keys_in_one_unusable_folder_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once per process, not per key or per call: every key's store is in the same folder."""
    (tmp_path / "nonces").write_text("")
    heard: list[str] = []
    monkeypatch.setattr(nonces, "_said", set())
    monkeypatch.setattr(nonces, "_pending", [])
    monkeypatch.setattr(nonces, "_tell", None)
    first = NonceSource(store_for(Secret("first-kraken-key"), tmp_path / "nonces"))
    first.next()  # before anyone listens: kept until someone does
    nonces.tell_problems(heard.append)
    second = NonceSource(store_for(Secret("second-kraken-key"), tmp_path / "nonces"))
    for _ in range(3):
        first.next(), second.next()
    assert len(heard) == 1 and heard[0].startswith(f"{SAID} {tmp_path / 'nonces'}: ")
    assert first.problem == second.problem == heard[0]  # what each venue's pane shows in the TUI
