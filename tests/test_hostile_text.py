"""Text from outside never steers a terminal: a hostile venue's names, assets, labels and errors, a hostile
config's rule names, a hostile history file and a hostile server's lines reach every output made visible
(the TUI's every screen, `--once` table, csv and json, `--watch`, `history`, stderr), and JSON keeps the
exact text. What counts as forbidden is decided in tests/hostile.py, not by the code under test."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console
from textual.pilot import Pilot

from tests.conftest import run_cli, start_cli, write_config
from tests.hostile import ASSET, BIDI, ERROR, HOSTILE, RAW, SHOWN, TITLE, forbidden_in, make_hostile
from tests.scenes import until
from tests.test_app import loaded
from tui.config import parse
from tui.sim import Simulator
from tui.ui.app import BalanceApp
from tui.ui.screens import AlertsScreen, IntxDetailScreen, KrakenDetailScreen

KRAKEN = f"Kraken{TITLE}{BIDI}"  # a venue named in the config: text from outside too


def _config(sim: Simulator) -> str:
    """The simulator's config with a hostile venue name, and a rule (with a hostile name) that fires on the
    hostile asset. TOML reads JSON's escapes (\u001b) the same way."""
    text = sim.config_text(60).replace('"Kraken custody (simulated)"', json.dumps(KRAKEN))
    return (
        text
        + f"""
[[alert]]
name = {json.dumps(f"rule{TITLE}{BIDI}")}
venue = {json.dumps(KRAKEN)}
asset = {json.dumps(ASSET)}
field = "balance"
below = "0"
"""
    )


def _terminal_output(app: BalanceApp) -> str:
    """What the app would write to the terminal for its whole current screen: Textual's own sequences
    around the text of every widget (notifications included), as the driver would send it."""
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), force_terminal=True)
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    return update.render_segments(console)


def _assert_tame(output: str, where: str) -> None:
    raw = [piece for piece in RAW if piece in output]
    assert not raw, f"{where}: raw sequences from outside reached the terminal: {raw}"


async def _shows(pilot: Pilot[int], app: BalanceApp, text: str, where: str) -> str:
    """Wait until the screen shows `text` (made visible), then check nothing raw is on it."""
    await until(pilot, lambda: text in _terminal_output(app), why=lambda: f"{where}: {text!r} not on screen")
    output = _terminal_output(app)
    _assert_tame(output, where)
    return output


async def test_every_screen_of_the_tui_shows_hostile_text_visibly(sim: Simulator) -> None:
    make_hostile(sim)
    app = BalanceApp(parse(_config(sim)), demo=True, history=":memory:")
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        kraken, coinbase = await loaded(pilot)
        await _shows(pilot, app, SHOWN, "the panes")  # vault and portfolio names, the hostile asset
        await _shows(pilot, app, "Kraken\\x1b]0;PWNED", "a pane's header")
        assert app.monitor.alerts.active, "the hostile rule should fire on the hostile asset"
        await _shows(pilot, app, "rule\\x1b]0;PWNED", "the alert's notification")

        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        await _shows(pilot, app, "rule\\x1b]0;PWNED", "the alerts view")
        await pilot.press("escape")

        for pane, asset, screen_type, shown in (
            (kraken, ASSET, KrakenDetailScreen, "=HYPERLINK(1)\\x1b]0;PWNED"),
            (coinbase, "BTC", IntxDetailScreen, "id\\x1b]0;PWNED"),  # its labels come with its own call
        ):
            row = next(r for r in pane.rows.values() if r.asset == asset)
            pane.table.focus()
            pane.table.move_cursor(row=pane.table.get_row_index(row.key))
            await pilot.press("enter")
            await until(pilot, lambda t=screen_type: isinstance(app.screen, t))  # type: ignore[misc]
            await _shows(pilot, app, shown, f"the {screen_type.__name__}")
            await pilot.press("escape")

        sim.faults.set("kraken-error", "kraken", value=ERROR)  # the venue fails with a hostile message
        sim.faults.set("kraken-error", "prices", value=ERROR)  # and so does the price source
        app.source.refresh_now()
        assert app.source.prices is not None
        app.source.prices.wake.set()
        await until(pilot, lambda: kraken.snapshot is not None and kraken.snapshot.first_error() is not None)
        await _shows(pilot, app, "error\\x1b[2J\\x1b]0;PWNED", "a failing venue's header")
        await until(pilot, lambda: app.monitor.book is not None and app.monitor.book.error is not None)
        await _shows(pilot, app, "prices failing", "the status line")
        for widget in ("#status", ".pane-header"):  # markup from outside is shown as it is, never obeyed
            assert "[@click=app.quit]click[/]" in str(app.query_one(widget).render()), widget


def test_once_table_csv_and_json(sim: Simulator, tmp_path: Path) -> None:
    make_hostile(sim)
    sim.kraken_rate_limit = False  # three snapshots in a row on one key: not what this test is about
    sim_config = write_config(tmp_path / "hostile.toml", _config(sim))
    table = run_cli("--once", "--config", str(sim_config))
    assert table.returncode == 0, table.stderr
    assert not forbidden_in(table.stdout) and SHOWN in table.stdout

    rows = list(csv.DictReader(io.StringIO(run_cli("--once", "--config", str(sim_config), "--format", "csv").stdout)))
    assert rows and all(not forbidden_in(value or "") for row in rows for value in row.values())
    hostile = [r for r in rows if "HYPERLINK" in r["asset"]]
    assert hostile and all(r["asset"].startswith("'=HYPERLINK(1)") for r in hostile)  # inert in a spreadsheet
    assert {r["balance"] for r in hostile if r["kind"] == "kraken-custody"} == {"-1.50"}  # amounts untouched
    assert all(r["account_name"].startswith("Vault\\x1b]0;PWNED") for r in rows)

    out = run_cli("--once", "--config", str(sim_config), "--format", "json").stdout
    assert not forbidden_in(out)
    document = json.loads(out)
    names = {a["name"] for v in document["venues"] for a in v["accounts"]}
    assets = {b["asset"] for v in document["venues"] for a in v["accounts"] for b in a["balances"]}
    assert names == {HOSTILE} and ASSET in assets  # JSON keeps the exact text
    assert KRAKEN in {v["name"] for v in document["venues"]}


def test_stderr_shows_a_venues_error_visibly(sim: Simulator, sim_config: Path) -> None:
    sim.faults.set("kraken-error", "kraken", value=ERROR)
    done = run_cli("--once", "--config", str(sim_config))
    assert done.returncode == 1
    assert "EGeneral:Internal error\\x1b[2J" in done.stderr
    assert not forbidden_in(done.stderr)


def test_watch_lines_escape_what_json_allows_raw(sim: Simulator, sim_config: Path) -> None:
    """JSON may carry DEL, C1 and bidi characters raw inside strings: --watch writes them as escapes."""
    make_hostile(sim)
    watch = start_cli("--watch", "--config", str(sim_config))
    try:
        assert watch.stdout is not None
        lines = [watch.stdout.readline() for _ in range(6)]
    finally:
        watch.terminate()
        watch.communicate(timeout=60)
    assert all(lines) and not any(forbidden_in(line) for line in lines)
    names = {json.loads(line)["account"]["name"] for line in lines if json.loads(line).get("event") == "new"}
    assert names == {HOSTILE}


def _history(path: Path, rows: list[tuple[float, str, str, str, str, str | None]]) -> None:
    """A history file as another release (or a hand) might have left it: written without our code."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE changes (at REAL, venue TEXT, account TEXT, asset TEXT, field TEXT, value TEXT)")
    db.executemany("INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def test_history_table_csv_and_json(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    _history(
        db,
        [
            (1795276800.0, HOSTILE, "V7FK4ZRI3R2WYO", ASSET, "balance", "-1.50"),
            (1795276801.0, "Kraken", HOSTILE, "XBT", "balance", f"=1+1{HOSTILE}"),
        ],
    )
    config = write_config(tmp_path / "c.toml", f'[history]\npath = "{db}"\n')
    table = run_cli("history", "--config", str(config))
    assert table.returncode == 0, table.stderr
    assert not forbidden_in(table.stdout) and SHOWN in table.stdout

    rows = list(csv.DictReader(io.StringIO(run_cli("history", "--config", str(config), "--format", "csv").stdout)))
    assert rows[0]["value"] == "-1.50"  # an amount stays a number
    assert rows[1]["value"].startswith("'=1+1") and rows[0]["asset"].startswith("'=HYPERLINK")
    assert not any(forbidden_in(v) for r in rows for v in r.values())

    out = run_cli("history", "--config", str(config), "--format", "json").stdout
    assert not forbidden_in(out)
    assert json.loads(out)[0]["venue"] == HOSTILE


class _HostileServer(BaseHTTPRequestHandler):
    """A `serve` that answers its health as one, then streams a line that is not JSON (with escapes) and
    a JSON line whose strings hold DEL, C1 and a bidi override raw (valid JSON)."""

    LINES = (
        f"not json {HOSTILE}\n",
        json.dumps({"event": "venue-failing", "venue": "x", "error": "\u202e\x9b\x7f"}, ensure_ascii=False) + "\n",
        json.dumps({"event": "dropped", "reason": f"fell behind{HOSTILE}"}) + "\n",
    )

    def do_GET(self) -> None:
        from tui.snapshot.contract import CONTRACT

        if self.path == "/healthz":
            body = json.dumps({"status": "ok", "release": "x", "contract": CONTRACT, "venues": {}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        for line in self.LINES:
            self.wfile.write(line.encode())
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_attached_watch_refuses_what_is_not_json_and_escapes_the_rest(hostile_server: str) -> None:
    watch = start_cli("--attach", hostile_server, "--watch")
    try:
        assert watch.stdout is not None
        line = watch.stdout.readline()
    finally:
        watch.terminate()
        _, err = watch.communicate(timeout=60)
    assert json.loads(line)["error"] == "\u202e\x9b\x7f"  # the same text for a JSON reader
    assert not forbidden_in(line)  # and nothing raw for a person
    assert "not a JSON object, not shown" in err and "not json Vault\\x1b]0;PWNED" in err
    assert "fell behindVault\\x1b]0;PWNED" in err
    assert not forbidden_in(err)


async def test_half_a_surrogate_pair_from_a_venue_is_read_as_a_replacement(sim: Simulator, tmp_path: Path) -> None:
    """`"\\ud800"` is valid JSON but no text: it cannot be printed, stored or sent. Read as U+FFFD, it is
    recorded in the history like any asset (a writer that raised on it would record nothing more)."""
    vault = next(iter(sim.market.vaults))
    sim.market.set_kraken(vault, "X\ud800", "1.5")
    history = tmp_path / "history.sqlite3"
    app = BalanceApp(parse(sim.config_text(60)), demo=True, history=history)
    async with app.run_test(size=(120, 40)) as pilot:
        kraken, _ = await loaded(pilot)
        assert "X\ufffd" in {row.asset for row in kraken.rows.values()}
        assert app.monitor.history is not None
        app.monitor.history.flush()
        recorded = {asset for (asset,) in sqlite3.connect(history).execute("SELECT asset FROM changes")}
    assert "X\ufffd" in recorded and "XBT" in recorded


def test_what_serve_serves_escapes_it(sim: Simulator, tmp_path: Path) -> None:
    """/snapshot and /events keep the exact text as JSON escapes; /metrics' labels show it visibly."""
    import httpx

    from tests.test_attach import Server, free_port

    make_hostile(sim)
    server = Server(write_config(tmp_path / "hostile.toml", _config(sim)), free_port())
    try:
        server.ready()
        snapshot = httpx.get(server.url + "/snapshot", timeout=30)
        assert not forbidden_in(snapshot.text)
        assert KRAKEN in {v["name"] for v in snapshot.json()["venues"]}
        metrics = httpx.get(server.url + "/metrics", timeout=30).text
        assert not forbidden_in(metrics)
        assert 'venue="Kraken\\\\x1b]0;PWNED' in metrics  # Prometheus' own escaping doubles the backslash
        assert 'account_name="Vault\\\\x1b]0;PWNED' in metrics  # the names, as the venues' other texts
        with httpx.stream("GET", server.url + "/events", timeout=30) as events:
            first = next(events.iter_lines())
        assert not forbidden_in(first) and json.loads(first)["account"]["name"] == HOSTILE
    finally:
        server.stop()
