"""Viewers attached to one `balance-tui serve`: the same output and exit codes as polling the venues
directly, thirty at once, refusing a server of another contract or a wrong token, and coming back by
themselves after the server restarts. Over real HTTP: simulator ← serve ← viewers."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Attached, run_cli, start_cli, write_config
from tui.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent
PATIENCE = 60.0
MOVING = ("generated_at", "fetched_at", "state")  # when each side read it, not what it read


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`balance-tui serve` in its own process, as a desk runs it."""

    def __init__(self, config: Path, port: int, *extra: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.proc = start_cli("serve", "--config", str(config), "--listen", f"127.0.0.1:{port}", *extra)

    def ready(self, headers: dict[str, str] | None = None) -> None:
        """Until the server answers with every venue polled once."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.communicate()[1]
            try:
                snapshot = httpx.get(self.url + "/snapshot", headers=headers, timeout=5).json()
                if all(v["fetched_at"] for v in snapshot["venues"]) and snapshot["prices"]["fetched_at"]:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise AssertionError("the server never answered with every venue")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.communicate(timeout=PATIENCE)
        return self.proc.returncode


@pytest.fixture
def frozen(sim_config: Path, sim: Simulator) -> Path:
    return sim_config  # the fixture's simulator does not tick: every reader sees the same balances


@pytest.fixture
def server(frozen: Path) -> Iterator[Server]:
    started = Server(frozen, free_port())
    started.ready()
    yield started
    started.stop()


def steady(document: dict[str, Any]) -> dict[str, Any]:
    """A snapshot without the times of its reading."""
    if isinstance(document, dict):
        return {k: steady(v) for k, v in document.items() if k not in MOVING}
    if isinstance(document, list):
        return [steady(v) for v in document]  # type: ignore[return-value]
    return document


def test_thirty_attached_once_runs_print_what_the_server_holds(frozen: Path, sim: Simulator) -> None:
    # first directly, then through the server: one key is one poller, never two at once; the two share
    # Kraken's per-key counter though, which neither knows the other used: not what this test is about
    sim.kraken_rate_limit = False
    direct = run_cli("--once", "--format", "json", "--config", str(frozen))
    assert direct.returncode == 0, direct.stderr
    server = Server(frozen, free_port())
    try:
        server.ready()

        def attached(_: int) -> subprocess.CompletedProcess[str]:
            return run_cli("--attach", server.url, "--once", "--format", "json")

        with ThreadPoolExecutor(max_workers=30) as pool:
            runs = list(pool.map(attached, range(30)))
    finally:
        server.stop()
    assert [r.returncode for r in runs] == [0] * 30, runs[0].stderr
    outputs = [steady(json.loads(r.stdout)) for r in runs]
    assert all(out == outputs[0] for out in outputs)
    expected = steady(json.loads(direct.stdout))
    expected["prices"].pop("fetched_at", None)
    for out in outputs:
        out["prices"].pop("fetched_at", None)
    assert outputs[0] == expected  # the same balances and values as polling the venues directly


def test_attached_table_and_exit_code_of_a_failing_venue(server: Server, sim: Simulator) -> None:
    table = run_cli("--attach", server.url, "--once")
    assert table.returncode == 0 and "== Coinbase INTX (simulated)" in table.stdout and "worth: $" in table.stdout
    sim.faults.set("http-5xx", venue="kraken")
    deadline = time.monotonic() + PATIENCE
    while True:  # until the server has seen Kraken fail
        failing = run_cli("--attach", server.url, "--once")
        if failing.returncode == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert failing.returncode == 1 and failing.stderr.startswith("balance-tui: Kraken custody (simulated): ")
    assert "== Coinbase INTX (simulated) (coinbase-intx): ok" in failing.stdout


def test_a_server_that_is_not_there_is_said_in_one_line() -> None:
    done = run_cli("--attach", f"http://127.0.0.1:{free_port()}", "--once")
    assert done.returncode == 1 and "cannot reach the balance-tui server" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    bad = run_cli("--attach", "ftp://example.com", "--once")
    assert bad.returncode == 2 and "not an http(s) URL" in bad.stderr


class _OtherRelease(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "release": "9.0.0", "contract": 99}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Balance-TUI-Contract", "99")  # as every answer of a real server of that release
        self.send_header("X-Balance-TUI-Release", "9.0.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_of_another_contract_is_refused_naming_both() -> None:
    other = ThreadingHTTPServer(("127.0.0.1", 0), _OtherRelease)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{other.server_address[1]}"
        for args in (("--once",), ("--watch",), ()):
            done = run_cli("--attach", url, *args, timeout=PATIENCE)
            assert done.returncode == 2, (args, done.stderr)
            assert (
                "speaks contract 99 (release 9.0.0)" in done.stderr and "this viewer speaks contract 2" in done.stderr
            )
    finally:
        other.shutdown()
        other.server_close()


def test_a_server_upgraded_under_a_running_watch_is_refused_naming_both(frozen: Path) -> None:
    port = free_port()
    server = Server(frozen, port)
    server.ready()
    watch = start_cli("--attach", server.url, "--watch")
    other = None
    try:
        assert watch.stdout is not None
        assert json.loads(watch.stdout.readline())["event"] == "new"  # following the old release
        assert server.stop() == 0
        other = ThreadingHTTPServer(("127.0.0.1", port), _OtherRelease)  # the new release, on the same address
        threading.Thread(target=other.serve_forever, daemon=True).start()
        out, err = watch.communicate(timeout=PATIENCE)
        assert watch.returncode == 2, err
        assert "speaks contract 99 (release 9.0.0)" in err and "this viewer speaks contract 2" in err
        assert '"contract": 99' not in out  # nothing of the other contract passed through as a line
    finally:
        if watch.poll() is None:
            watch.kill()
        if other is not None:
            other.shutdown()
            other.server_close()


def test_the_token_is_asked_for_and_never_shown(frozen: Path, tmp_path: Path) -> None:
    token = "desk-token-4f9a2c-never-shown-7b1d3e5f"
    token_file = write_config(tmp_path / "token", token + "\n")
    server = Server(frozen, free_port(), "--token-file", str(token_file))
    try:
        server.ready({"Authorization": f"Bearer {token}"})
        refused = run_cli("--attach", server.url, "--once")
        assert refused.returncode == 2 and "refused this viewer's token" in refused.stderr
        wrong = run_cli("--attach", server.url, "--once", env={"BALANCE_TUI_TOKEN": "not-it"})
        assert wrong.returncode == 2
        by_file = run_cli("--attach", server.url, "--token-file", str(token_file), "--once", "--format", "json")
        by_env = run_cli("--attach", server.url, "--once", env={"BALANCE_TUI_TOKEN": token})
        assert by_file.returncode == 0 and by_env.returncode == 0
        for done in (refused, wrong, by_file, by_env):
            assert token not in done.stdout + done.stderr
    finally:
        server.stop()


def test_attached_watch_starts_with_the_whole_state(server: Server, sim: Simulator) -> None:
    expected = sum(len(v.holdings) for v in sim.market.vaults.values()) + sum(
        len(p.holdings) for p in sim.market.portfolios.values()
    )
    attached = Attached(server.url)
    try:
        deadline = time.monotonic() + PATIENCE  # a safety net only
        while len(attached.new()) < expected and attached.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        news = [line for line in attached.lines if line["event"] == "new"]
        assert len(news) == expected, attached.lines[:3]
        assert {line["kind"] for line in news} == {"kraken-custody", "coinbase-intx"}
        assert all(line["balance"]["asset"] == line["asset"] for line in news)
    finally:
        code, err = attached.stop()
    assert code == 0 and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--once", "serve"], "--once does not go with `serve`"),
        (["--attach", "http://127.0.0.1:1", "serve"], "--attach does not go with `serve`"),
        (["--watch", "--format", "jsonl", "sim"], "--watch and --format do not go with `sim`"),
        (["web"], "`web` needs --attach URL"),
    ],
)
def test_a_mode_beside_a_subcommand_is_refused_not_ignored(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tui.cli import run

    assert run(args) == 2
    assert said in capsys.readouterr().err


def test_the_token_file_reaches_serve_whichever_side_of_it(frozen: Path, tmp_path: Path) -> None:
    """`--token-file T serve` and `serve --token-file T` both read T (the first once lost it to serve's default)."""
    missing = str(tmp_path / "no-such-token")
    for args in (["--token-file", missing, "serve"], ["serve", "--token-file", missing]):
        done = run_cli(*args, "--config", str(frozen), "--listen", "0.0.0.0:0")
        assert done.returncode == 2 and "--token-file" in done.stderr and "does not exist" in done.stderr, done.stderr


def test_a_reconnected_watch_prints_only_what_changed_meanwhile(capsys: pytest.CaptureFixture[str]) -> None:
    from tui.remote.attach import Shown

    def line(event: str, asset: str, quantity: str | None) -> str:
        balance = None if quantity is None else {"asset": asset, "quantity": quantity}
        record = {"event": event, "venue": "V", "account": {"id": "a-1-0"}, "asset": asset, "balance": balance}
        return json.dumps(record)

    shown = Shown()
    first = [line("new", "BTC", "1"), line("new", "ETH", "2"), line("changed", "ETH", "3")]
    assert [shown.line(x) for x in first] == first
    replay = [line("new", "BTC", "1"), line("new", "ETH", "3"), line("new", "SOL", "4"), line("new", "BTC", "1")]
    assert [shown.line(x) for x in replay] == [None, None, replay[2], None]
    moved = line("new", "BTC", "1.5")  # changed while the viewer was away: printed
    assert shown.line(moved) == moved
    assert shown.line(line("removed", "SOL", None)) is not None and shown.line(line("new", "SOL", "4")) is not None
    dropped = json.dumps({"event": "dropped", "reason": "fell 31 lines behind (at most 30): read faster"})
    assert shown.line(dropped) is None
    assert "the server dropped this viewer: it fell 31 lines behind" in capsys.readouterr().err
