"""An attached TUI in a real terminal (tmux) while its server goes away and comes back: the panes say
whose data it is ("via host:port"), go stale with their age and the cause, and recover by themselves."""

from __future__ import annotations

from pathlib import Path

from tests.test_attach import Server, free_port
from tests.test_terminal import SCRIPT, Terminal, terminal  # noqa: F401 (the fixture)
from tui.sim import Simulator


def test_the_server_restarts_and_the_viewer_recovers(terminal: Terminal, sim_config: Path, sim: Simulator) -> None:  # noqa: F811
    port = free_port()
    server = Server(sim_config, port)
    server.ready()
    try:
        terminal.start(f"{SCRIPT} --attach {server.url}")
        screen = terminal.wait_for(lambda s: f"via 127.0.0.1:{port}" in s and "Treasury" in s and "● live" in s)
        assert "worth $" in screen
        server.stop()
        screen = terminal.wait_for(lambda s: "cannot reach the balance-tui server" in s and "stale for" in s)
        assert "Treasury" in screen  # the last rows stay, marked
        server = Server(sim_config, port)
        server.ready()
        terminal.wait_for(lambda s: "cannot reach" not in s and s.count("● live") >= 2)
        terminal.keys("q")
        assert terminal.exit_status() == 0
    finally:
        server.stop()
