"""A hostile venue in a real terminal (tmux): the TUI, local and attached to a `serve`, shows the escape
sequences in names and errors as text; the terminal's title stays what it was, and none of the raw
sequences is among the bytes the program wrote to the terminal (recorded by tmux itself)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.hostile import RAW, SHOWN, make_hostile
from tests.test_attach import Server, free_port
from tests.test_hostile_text import _config
from tests.test_terminal import PATIENCE, SCRIPT, Terminal, terminal  # noqa: F401 (the fixture)
from tui.sim import Simulator

TITLE = "desk-before"


@pytest.fixture
def hostile_config(sim: Simulator, tmp_path: Path) -> Path:
    make_hostile(sim)
    return write_config(tmp_path / "hostile.toml", _config(sim))


def _recorded(term: Terminal, command: str) -> Path:
    """Start `command` in the pane once tmux records every byte the pane is sent; the pane's title is set
    to TITLE first. Returns the recording."""
    go, out, script = term.tmp / "go", term.tmp / "pane.bytes", term.tmp / "hostile.sh"
    script.write_text(f'printf "\\033]2;{TITLE}\\007"\nwhile [ ! -e {go} ]; do sleep 0.05; done\nexec {command}\n')
    term.start(f"sh {script}")
    term.tmux("pipe-pane", "-o", "-t", "t", f"cat >> {out}")
    go.touch()
    return out


def _title(term: Terminal) -> str:
    return term.tmux("display", "-p", "-t", "t", "#{pane_title}").strip()


def _check(term: Terminal, recording: Path) -> None:
    term.wait_for(lambda s: SHOWN in s and "Kraken\\x1b]0;PWNED" in s and "● live" in s)
    deadline = time.monotonic() + PATIENCE
    while not recording.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    written = recording.read_bytes().decode("utf-8", "replace")
    assert _title(term) == TITLE, "the terminal's title was changed"
    raw = [piece for piece in RAW if piece in written]
    assert not raw, f"raw sequences from outside reached the terminal: {raw}"
    term.keys("q")
    assert term.exit_status() == 0


@pytest.fixture
def server(hostile_config: Path) -> Iterator[Server]:
    running = Server(hostile_config, free_port())
    running.ready()
    yield running
    running.stop()


def test_the_tui_keeps_the_terminal_its_own(terminal: Terminal, hostile_config: Path) -> None:  # noqa: F811
    recording = _recorded(terminal, f"{SCRIPT} --config {hostile_config}")
    _check(terminal, recording)


def test_an_attached_tui_keeps_the_terminal_its_own(terminal: Terminal, server: Server) -> None:  # noqa: F811
    recording = _recorded(terminal, f"{SCRIPT} --attach {server.url}")
    _check(terminal, recording)
