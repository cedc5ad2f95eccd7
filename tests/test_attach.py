"""Viewers attached to one `balance-tui serve`: the same output and exit codes as polling the venues
directly, thirty at once, refusing a server of another contract or a wrong token, and coming back by
themselves after the server restarts. Over real HTTP: simulator ← serve ← viewers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
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
        (["web", "--demo", "--attach", "http://127.0.0.1:1"], "`web --demo` runs the demo in each session"),
        (["--demo", "web", "--token-file", "/nowhere"], "`web --demo` reads no server"),
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


def _line(event: str, asset: str, quantity: str | None, account: str = "a-1-0", venue: str = "V") -> str:
    """A balance's line as a server writes it."""
    balance = None if quantity is None else {"asset": asset, "quantity": quantity, "usd_value": "9"}
    fields = ["quantity"]
    record = {"at": "T", "event": event, "venue": venue, "kind": "k", "account": {"id": account, "name": "A"}}
    return json.dumps({**record, "asset": asset, "fields": fields, "balance": balance, "previous": None})


HEARTBEAT = json.dumps({"event": "heartbeat", "at": "T"})


def _shown(shown: Any, lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(text) for line in lines for text in shown.lines(line)]


def test_a_reconnected_watch_prints_a_resync_and_only_what_differs(capsys: pytest.CaptureFixture[str]) -> None:
    from tui.remote.attach import Shown

    shown = Shown()
    shown.connecting()
    prices = {"event": "prices", "prices": {"fetched_at": "1", "usd_prices": {"BTC": "1"}}, "usd_total": "5"}
    first = [_line("new", "BTC", "1"), _line("new", "ETH", "2"), _line("new", "ADA", "7", account="c-3-0")]
    first += [_line("new", "SOL", "3", account="b-2-0", venue="W"), json.dumps({**prices, "at": "1"})]
    first += [HEARTBEAT, _line("changed", "ETH", "2.5")]
    printed = _shown(shown, first)
    assert [(p["event"], p.get("asset")) for p in printed] == [
        ("new", "BTC"), ("new", "ETH"), ("new", "ADA"), ("new", "SOL"), ("prices", None), ("changed", "ETH"),
    ]  # fmt: skip
    assert not shown.replaying  # the first connection is no replay, and heartbeats are never printed
    # the connection is made again: the whole state once more, as it is now. Meanwhile ETH moved, a-1-0's
    # BTC and all of c-3-0 went, a-1-1 came; W has not answered the restarted server yet
    shown.connecting()
    same_prices = json.dumps({**prices, "at": "2", "prices": {"fetched_at": "2", "usd_prices": {"BTC": "1"}}})
    replay = [_line("new", "BTC", "1", account="a-1-1"), _line("new", "ETH", "4"), same_prices]
    printed = _shown(shown, replay)
    assert [(p["event"], p["account"]["id"]) for p in printed[1:]] == [
        ("new", "a-1-1"), ("changed", "a-1-0"), ("removed", "a-1-0"),  # once a-1-0's lines are over
    ]  # fmt: skip
    assert printed[0] == {"event": "resync", "at": printed[0]["at"]} and shown.replaying
    changed, removed = printed[2:]
    assert changed["previous"] == {"asset": "ETH", "quantity": "2.5"} and changed["fields"] == ["quantity"]
    assert changed["balance"]["quantity"] == "4" and changed["asset"] == "ETH"
    assert removed["asset"] == "BTC" and removed["previous"] == {"asset": "BTC", "quantity": "1"}
    assert removed["balance"] is None and removed["fields"] == ["quantity"] and removed["kind"] == "k"
    printed = _shown(shown, [HEARTBEAT])  # the state is complete: V answered without c-3-0's ADA
    assert [(p["event"], p["account"]["id"], p["asset"]) for p in printed] == [("removed", "c-3-0", "ADA")]
    assert not shown.replaying
    # W's first answer on the restarted server: as printed before, so nothing; then something new
    assert _shown(shown, [_line("new", "SOL", "3", account="b-2-0", venue="W"), HEARTBEAT]) == []
    assert _shown(shown, [_line("new", "DOT", "5", account="b-2-0", venue="W")])[0]["event"] == "new"
    dropped = json.dumps({"event": "dropped", "reason": "fell 31 lines behind (at most 30): read faster"})
    assert shown.lines(dropped) == []
    assert "the server dropped this viewer: it fell 31 lines behind" in capsys.readouterr().err


def test_a_resync_says_a_venue_failing_or_recovered_only_if_it_differs() -> None:
    from tui.remote.attach import Shown

    def failing(venue: str, error: str | None) -> str:
        event = "venue-failing" if error else "venue-recovered"
        return json.dumps({"at": "T", "event": event, "venue": venue, "error": error})

    shown = Shown()
    shown.connecting()
    state = [_line("new", "BTC", "1"), _line("new", "XBT", "2", venue="K", account="v1"), failing("K", "HTTP 503")]
    assert len(_shown(shown, [*state, HEARTBEAT])) == 3
    shown.connecting()  # K answers now, V fails: V's balances are kept (not removed), its failing said
    replay = [_line("new", "XBT", "2", venue="K", account="v1"), failing("V", "HTTP 502"), HEARTBEAT]
    printed = _shown(shown, replay)
    assert [(p["event"], p.get("venue")) for p in printed] == [
        ("resync", None), ("venue-failing", "V"), ("venue-recovered", "K"),
    ]  # fmt: skip
    shown.connecting()  # again, the same: only the resync
    assert [p["event"] for p in _shown(shown, replay)] == ["resync"]


# --- a stream that falls silent, and one that comes back ------------------------------------------------


class Proxy:
    """A TCP relay to a port on 127.0.0.1 that can fall silent: `freeze()` stops relaying on the connections
    open now, both ways, and keeps them open: a half-open connection, as a network change leaves one (the
    server's heartbeats go on; the viewer hears nothing). Connections made after it are relayed."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.heartbeats = 0  # heartbeat lines relayed (to the viewer: the only side that is sent any)
        self._frozen = 0  # connections up to this one relay nothing
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self._frozen = self.connections

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                viewer, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            self.connections += 1
            self._open += [viewer, server]
            for source, sink in ((viewer, server), (server, viewer)):
                threading.Thread(target=self._relay, args=(source, sink, self.connections), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket, number: int) -> None:
        try:
            while data := source.recv(65536):
                if number <= self._frozen:
                    continue  # read and dropped: nothing passes, nothing is closed
                self.heartbeats += data.count(b'"event": "heartbeat"')
                sink.sendall(data)
            if number > self._frozen:
                sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for sock in self._open:
            sock.close()


class Following:
    """An attached --watch's stream (`follow_stream`, what `--attach URL --watch` runs) in a thread of its own,
    with a silence of our choosing; its printed lines kept."""

    def __init__(self, url: str, silence: float) -> None:
        from tui.remote.attach import Shown

        self.url, self.silence = url, silence
        self.shown = Shown()
        self.lines: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task[None] | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)
        self.thread.start()

    def write(self, text: str) -> None:
        self.lines += [json.loads(line) for line in text.splitlines()]

    def flush(self) -> None:
        pass

    async def _main(self) -> None:
        from tui.remote.attach import follow_stream
        from tui.remote.client import Limits, ServerClient

        self.task = asyncio.current_task()
        async with ServerClient(self.url, limits=Limits(silence=self.silence)) as client:
            with contextlib.suppress(asyncio.CancelledError):
                await follow_stream(client, self, self.shown)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(30)
        assert not self.thread.is_alive()
        self.loop.close()


def until(condition: Callable[[], Any], what: str, timeout: float = PATIENCE) -> Any:
    """Poll for a state; the timeout is a safety net, never what a test measures."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not within {timeout:g} s: {what}"
        time.sleep(0.02)
    return value


def test_a_silent_stream_is_given_up_and_followed_again_with_one_resync_line(sim: Simulator, tmp_path: Path) -> None:
    """The server's heartbeats keep a quiet stream alive; a connection that falls silent (half-open) is given
    up after the viewer's silence, and the viewer, back, prints one resync line and nothing else (nothing
    changed meanwhile)."""
    from tests.test_serve import Served

    config = tmp_path / "quiet.toml"
    sim.write_config(config, refresh_seconds=3600)  # nothing moves: after the state, only heartbeats
    served = Served(config, heartbeat=0.1)
    proxy = Proxy(served.server.port)
    following = Following(proxy.url, silence=1.0)
    try:
        expected = sum(len(v.holdings) for v in sim.market.vaults.values()) + sum(
            len(p.holdings) for p in sim.market.portfolios.values()
        )
        until(lambda: [ln["event"] for ln in following.lines].count("new") == expected, "the whole state")
        until(lambda: any(ln["event"] == "prices" for ln in following.lines), "the prices")
        state = list(following.lines)
        heard = proxy.heartbeats
        until(lambda: proxy.heartbeats >= heard + 20, "two seconds of heartbeats, twice the viewer's silence")
        assert proxy.connections == 1 and following.lines == state  # kept alive; no heartbeat printed
        proxy.freeze()
        until(lambda: proxy.connections == 2, "a new connection, once the old one said nothing for 1 s")
        until(lambda: following.lines[len(state) :] and not following.shown.replaying, "the state again, settled")
        assert following.lines[len(state) :] == [{"event": "resync", "at": following.lines[-1]["at"]}]
    finally:
        following.stop()
        proxy.close()
        assert served.stop() == 0, served.err.getvalue()


def test_a_watch_back_from_a_server_restart_prints_only_what_moved_meanwhile(frozen: Path, sim: Simulator) -> None:
    port = free_port()
    server = Server(frozen, port)
    server.ready()
    attached = Attached(server.url)
    try:
        expected = sum(len(v.holdings) for v in sim.market.vaults.values()) + sum(
            len(p.holdings) for p in sim.market.portfolios.values()
        )
        until(lambda: len(attached.new()) == expected, "the whole state")
        until(lambda: any(ln["event"] == "prices" for ln in attached.lines), "the prices")
        before = len(attached.lines)
        assert server.stop() == 0
        vault, held = next((v, held) for v, held in sim.market.vaults.items() if len(held.holdings) > 1)
        gone = next(iter(held.holdings))
        sim.market.remove_kraken(vault, gone)
        portfolio = next(p for p, held in sim.market.portfolios.items() if "BTC" in held.holdings)
        sim.market.set_intx(portfolio, "BTC", quantity="31415.9265358979", hold="0")
        server = Server(frozen, port)
        server.ready()

        def after() -> list[dict[str, Any]]:
            return attached.lines[before:]

        until(lambda: {ln["event"] for ln in after()} >= {"resync", "removed", "changed", "prices"}, "the moves")
        lines = after()
        assert lines[0]["event"] == "resync" and [ln["event"] for ln in lines].count("resync") == 1
        moves = sorted((ln["event"], ln["account"]["id"], ln["asset"]) for ln in lines[1:] if ln["event"] != "prices")
        assert moves == [("changed", portfolio, "BTC"), ("removed", vault, gone)], lines
        changed = next(ln for ln in lines if ln["event"] == "changed")
        assert changed["balance"]["quantity"] == "31415.9265358979" and "quantity" in changed["fields"]
        assert changed["previous"]["quantity"] != "31415.9265358979" and "usd_value" not in changed["previous"]
        assert [ln["event"] for ln in lines].count("prices") == 1  # the total moved with them
    finally:
        code, err = attached.stop()
        server.stop()
    assert code == 0 and "Traceback" not in err
