"""`balance-tui serve` over real HTTP against the simulator: the documents it serves, one poller however many
watch, slow viewers dropped without slowing anyone, the token, clean shutdown, and no growth per request."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Attached, run_cli, start_cli, write_config
from tui.config import load
from tui.credentials import Secret
from tui.sim import Simulator
from tui.sinks.access import read_token
from tui.sinks.server import Server, run_serve

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
TOKEN = "s3rve-t0ken-9f6b2c1e7d-4a8e0b3c5f7d9e1a"  # at least 32 characters, as serve demands


def until(condition: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    """Poll for a state; the timeout is only a safety net, never what a test measures."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.02)
    return value


class Served:
    """`Server` in a thread with its own event loop, as `serve` runs it; `stop()` returns its exit code."""

    def __init__(self, config: Path, token: Secret | None = None, **options: Any) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()
        self.server = Server(load(config), "127.0.0.1", 0, token, out=self.out, err=self.err, **options)
        self.loop = asyncio.new_event_loop()
        self.code: int | None = None
        ready = threading.Event()
        self.server.on_ready = lambda port: ready.set()
        self.thread = threading.Thread(target=self._run, name="serve-under-test", daemon=True)
        self.thread.start()
        assert ready.wait(30), self.err.getvalue()
        self.url = f"http://127.0.0.1:{self.server.port}"

    def _run(self) -> None:
        async def main() -> int:
            self.stopping = asyncio.Event()
            return await self.server.run(self.stopping)

        try:
            self.code = self.loop.run_until_complete(main())
        finally:
            self.loop.close()

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()` on the server's own loop (to look at or pause what runs there)."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def stop(self) -> int | None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stopping.set)
            self.thread.join(60)
        assert not self.thread.is_alive(), "serve did not stop"
        return self.code

    @property
    def poller(self) -> Any:
        assert self.server.poller is not None
        return self.server.poller


@pytest.fixture
def config(sim: Simulator, tmp_path: Path) -> Path:
    path = tmp_path / "serve.toml"
    sim.write_config(path, refresh_seconds=1)
    with path.open("a") as out:
        out.write(f'\n[history]\nenabled = true\npath = "{tmp_path / "history.sqlite3"}"\n')
    return path


def get(url: str, token: str | None = None, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    sent = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url, headers={**sent, **(headers or {})}, timeout=30, **kwargs)


def settled(served: Served) -> dict[str, Any] | None:
    """/snapshot once every venue and every account has answered and prices are in."""
    doc: dict[str, Any] = get(served.url + "/snapshot").json()
    accounts = [a for v in doc["venues"] for a in v["accounts"]]
    done = all(v["ok"] for v in doc["venues"]) and accounts and doc["prices"]["fetched_at"] is not None
    return doc if done else None


def balances_of(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(v["name"], a["id"], b["asset"]): b for v in doc["venues"] for a in v["accounts"] for b in a["balances"]}


# --- what is served ---------------------------------------------------------------------------------------


def _timeless(doc: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    doc.pop("generated_at")
    doc["prices"].pop("fetched_at")
    for venue in doc["venues"]:
        venue.pop("fetched_at"), venue.pop("state")
        for account in venue["accounts"]:
            account.pop("fetched_at")
    return doc


def test_snapshot_is_the_once_document_field_for_field(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    once = run_cli("--once", "--format", "json", "--config", str(config))
    assert once.returncode == 0, once.stderr
    served = serve(config)
    doc = until(lambda: settled(served), "every venue answered and prices in")
    response = get(served.url + "/snapshot")
    assert response.headers["Content-Type"].startswith("application/json")
    assert _timeless(doc) == _timeless(json.loads(once.stdout))
    assert len(balances_of(doc)) > 20  # a real comparison: the whole simulated world


def test_a_new_viewer_gets_the_whole_state_first_then_each_change(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    served = serve(config)
    doc = until(lambda: settled(served), "every venue answered and prices in")
    held = balances_of(doc)
    reader = Reader(served.url + "/events")
    until(lambda: len(reader.lines) >= len(held) + 1, "the whole state")
    assert reader.headers["content-type"] == "application/x-ndjson"
    state = reader.lines[: len(held) + 1]
    assert [ln["event"] for ln in state] == ["new"] * len(held) + ["prices"]
    assert {(ln["venue"], ln["account"]["id"], ln["asset"]): ln["balance"] for ln in state[:-1]} == held
    assert state[-1]["usd_total"] == doc["usd_total"] and state[-1]["usd_net"] == doc["usd_net"]
    portfolio = next(iter(sim.market.portfolios))
    sim.market.set_intx(portfolio, "BTC", quantity="12345678901234567890.123456789", hold="0.5")
    moved = until(lambda: next((ln for ln in reader.lines if ln["event"] == "changed"), None), "the change")
    assert moved["asset"] == "BTC" and moved["balance"]["quantity"] == "12345678901234567890.123456789"
    assert moved["account"]["id"] == portfolio and "quantity" in moved["fields"]


def test_metrics_carry_every_amount_each_venue_and_the_alerts(
    sim: Simulator, config: Path, serve: Callable[..., Served], tmp_path: Path
) -> None:
    pages = tmp_path / "pages.jsonl"
    script = tmp_path / "page.py"
    script.write_text("import sys\nwith open(sys.argv[1], 'a') as out:\n    out.write(sys.stdin.read())\n")
    with config.open("a") as out:
        out.write(
            f'\n[[alert]]\nname = "INTX holds BTC"\nvenue = "Coinbase INTX (simulated)"\nasset = "BTC"\n'
            f'field = "quantity"\nabove = "0"\ncommand = "{sys.executable} {script} {pages}"\n'
        )
    holders = [p for p, held in sim.market.portfolios.items() if held.holdings.get("BTC", {}).get("quantity")]
    assert holders
    served = serve(config)
    doc = until(lambda: settled(served), "every venue answered and prices in")
    families = {f.name: f for f in text_string_to_metric_families(get(served.url + "/metrics").text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}

    def metric(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    exported = {
        (s.labels["venue"], s.labels["account"], s.labels["asset"], s.labels["field"]): s.value
        for s in families["balance_tui_balance"].samples
    }
    expected = {
        (venue, account, asset, field): float(amount)
        for (venue, account, asset), record in balances_of(doc).items()
        for field, amount in record.items()
        if field not in ("asset", "asset_id", "asset_name", "asset_uuid", "usd_price", "usd_value", "loan_usd_value")
        and amount is not None
    }
    assert exported == expected
    values = {
        (s.labels["venue"], s.labels["account"], s.labels["asset"]): s.value
        for s in families["balance_tui_usd_value"].samples
    }
    assert values == {key: float(b["usd_value"]) for key, b in balances_of(doc).items() if b["usd_value"] is not None}
    assert values  # priced
    for venue in doc["venues"]:
        name = venue["name"]
        assert metric("balance_tui_venue_up", venue=name) == 1.0
        age = metric("balance_tui_venue_data_age_seconds", venue=name)
        assert age is not None and 0 <= age < 3600
        assert (metric("balance_tui_venue_requests_total", venue=name, outcome="ok") or 0) >= len(venue["accounts"])
        assert metric("balance_tui_venue_refresh_seconds", venue=name) is not None
        assert metric("balance_tui_venue_rate_limit_wait_seconds_total", venue=name) is not None
    until(lambda: pages.exists() and len(pages.read_text().splitlines()) >= len(holders), "a page per holder")
    paged = [json.loads(line) for line in pages.read_text().splitlines()]
    assert {p["account"]["id"] for p in paged} == set(holders) and {p["state"] for p in paged} == {"firing"}
    families = {f.name: f for f in text_string_to_metric_families(get(served.url + "/metrics").text)}
    firing = {s.labels["alert"]: s.value for s in families["balance_tui_alert_firing"].samples}
    assert firing == {"INTX holds BTC": float(len(holders))}


def test_healthz_headers_and_errors(sim: Simulator, config: Path, serve: Callable[..., Served]) -> None:
    served = serve(config)
    until(lambda: settled(served), "every venue answered")
    health = get(served.url + "/healthz")
    assert health.json() == {
        "status": "ok",
        "release": "0.2.0",
        "contract": 2,
        "venues": {"Kraken custody (simulated)": True, "Coinbase INTX (simulated)": True},
    }
    for response in (
        health,
        get(served.url + "/nowhere"),
        httpx.post(served.url + "/snapshot", timeout=30),
        httpx.delete(served.url + "/events", timeout=30),
        httpx.head(served.url + "/healthz", timeout=30),
        get(served.url + "/detail/intx"),
    ):
        assert response.headers["X-Balance-TUI-Release"] == "0.2.0"
        assert response.headers["X-Balance-TUI-Contract"] == "2"
        if response.status_code != 200:
            assert response.status_code in (400, 404, 405)
            assert response.request.method == "HEAD" or set(response.json()) == {"error"}
    assert httpx.post(served.url + "/snapshot", timeout=30).status_code == 405
    assert httpx.head(served.url + "/healthz", timeout=30).status_code == 405


def test_drill_downs_come_from_the_servers_own_clients_once_for_many_viewers(
    sim: Simulator, tmp_path: Path, serve: Callable[..., Served]
) -> None:
    slow = tmp_path / "slow.toml"  # one answer is shared for a period: a long one, so that 30 requests
    sim.write_config(slow, refresh_seconds=30)  # from a loaded machine all fall within it
    served = serve(slow)
    doc = until(lambda: settled(served), "every venue answered")
    kraken, intx = doc["venues"]
    vault = kraken["accounts"][0]["id"]
    portfolio = intx["accounts"][0]["id"]
    asset = intx["accounts"][0]["balances"][0]["asset"]
    query = {"venue": intx["name"], "account": portfolio, "asset": asset}
    before = sim.stats()

    def many(path: str, params: dict[str, str]) -> list[httpx.Response]:
        out: list[httpx.Response] = []
        threads = [
            threading.Thread(target=lambda: out.append(get(served.url + path, params=params))) for _ in range(30)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return out

    answers = many("/detail/intx", query)
    assert {a.status_code for a in answers} == {200} and len(answers) == 30, answers[0].text
    body = answers[0].json()
    held = sim.market.portfolios[portfolio].holdings[asset]
    assert body["balance"]["asset"] == asset and body["balance"]["quantity"] == format(held["quantity"], "f")
    assert "collateral" in body["summary"] and all(a.json() == body for a in answers)
    vaults = many("/detail/kraken", {"venue": kraken["name"], "account": vault})
    assert {v.status_code for v in vaults} == {200}, vaults[0].text
    details = vaults[0].json()
    assert set(details) == {"assets", "balance_fiat", "available_balance_fiat", "status"}
    assert set(details["assets"]) == set(sim.market.vaults[vault].holdings)
    for item in details["assets"].values():
        assert set(item) == {"usd_price", "quantity", "usd_value", "available_quantity", "available_usd_value"}
    spent = sim.stats() - before
    assert spent[("intx", "balance", "ok")] == 1 and spent[("intx", "summary", "ok")] == 1
    assert spent[("kraken", "GetCustodyVault", "ok")] == 1
    assert get(served.url + "/detail/intx", params={**query, "venue": "nope"}).status_code == 404
    assert get(served.url + "/detail/intx", params={**query, "account": "zzzz-9-99"}).status_code == 404
    before_unheld = sim.stats()
    unheld = get(served.url + "/detail/intx", params={**query, "asset": "NOTHELD"})
    assert unheld.status_code == 404 and "shows no 'NOTHELD'" in unheld.json()["error"]
    asked = sim.stats() - before_unheld  # a viewer cannot spend the key's budget on what the server does not show
    assert not [key for key in asked if key[:2] in (("intx", "balance"), ("intx", "summary"))]
    assert get(served.url + "/detail/kraken", params={"venue": intx["name"], "account": vault}).status_code == 404
    sim.faults.set("http-5xx", venue="kraken", endpoint="GetCustodyVault")
    other = kraken["accounts"][1]["id"]
    failed = get(served.url + "/detail/kraken", params={"venue": kraken["name"], "account": other})
    assert failed.status_code == 502 and failed.json()["error_kind"] == "server" and "503" in failed.json()["error"]


# --- one poller, however many watch -------------------------------------------------------------------------


class Reader:
    """A viewer of /events in a thread of its own, keeping every line."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.lines: list[dict[str, Any]] = []
        self.ended = threading.Event()
        self.headers: dict[str, str] = {}
        self._url, self._token = url, token
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            with httpx.stream("GET", self._url, headers=headers, timeout=httpx.Timeout(30, read=None)) as response:
                self.headers = dict(response.headers)
                for line in response.iter_lines():
                    if line:
                        self.lines.append(json.loads(line))
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def new(self) -> set[tuple[str, str, str]]:
        return {(ln["venue"], ln["account"]["id"], ln["asset"]) for ln in self.lines if ln["event"] == "new"}


REFRESHES = 3  # refreshes of each venue asked for by hand, after the first


def _run_counted(sim: Simulator, config: Path, viewers: int) -> Counter[Any]:
    """A server that refreshes only when asked (its period is an hour): the first refresh, then `viewers`
    attached `--watch` processes join and a /metrics scrape runs every second, then REFRESHES more refreshes
    of each venue, asked for one at a time. Nothing a viewer does may add a refresh or a call: what the
    simulator saw over the server's whole life."""
    before = sim.stats()
    served = Served(config)
    attached: list[Attached] = []
    engine = served.poller.engine
    names = [r.name for r in engine.refreshers]

    def refreshed(count: int) -> bool:
        done = served.call(lambda: dict(served.poller.refreshes))
        assert all(done[name] <= count for name in names), f"a refresh nobody asked for: {done}"
        return all(done[name] == count for name in names)

    try:
        until(lambda: refreshed(1) and settled(served), "the first refresh of every venue, and prices")
        stop_scraping = threading.Event()
        scrapes: list[int] = []

        def scrape() -> None:
            while True:
                scrapes.append(get(served.url + "/metrics").status_code)
                if stop_scraping.wait(1.0):
                    return

        if viewers:
            threading.Thread(target=scrape, daemon=True).start()
            attached = [Attached(served.url) for _ in range(viewers)]
            until(lambda: served.call(lambda: len(served.server.fanout.viewers)) == viewers, "every viewer attached")
        for count in range(2, REFRESHES + 2):
            served.call(engine.refresh_now)
            until(lambda c=count: refreshed(c), f"refresh {count} of every venue")  # type: ignore[misc]
        stop_scraping.set()
        if viewers:
            expected = set(balances_of(get(served.url + "/snapshot").json()))
            assert len(expected) == sum(len(p.holdings) for p in sim.market.portfolios.values()) + sum(
                len(v.holdings) for v in sim.market.vaults.values()
            )
            until(lambda: all(a.new() == expected for a in attached), "every viewer has every balance")
            assert scrapes and set(scrapes) == {200} and served.server.fanout.dropped == 0
        assert refreshed(REFRESHES + 1)
    finally:
        for viewer in attached:
            code, err = viewer.stop()
            assert code == 0 and "Traceback" not in err, err
        assert served.stop() == 0
    return sim.stats() - before


def test_fifty_attached_viewers_cost_the_venues_not_one_request_more(sim: Simulator, tmp_path: Path) -> None:
    sim.kraken_rate_limit = False  # the two runs follow each other closely: the counter is the client's alone
    config = tmp_path / "hourly.toml"
    sim.write_config(config, refresh_seconds=3600)
    text = config.read_text()
    assert "refresh_seconds = 60" in text  # the prices' own schedule: an hour too, so no fetch falls in one run only
    config.write_text(text.replace("refresh_seconds = 60", "refresh_seconds = 3600") + "\n[history]\nenabled = false\n")
    watched = _run_counted(sim, config, viewers=50)
    alone = _run_counted(sim, config, viewers=0)
    # the vault list is shared through the key's ledger for 10 minutes: the first run makes it, the second
    # uses it (one process, one nonce file, one ledger); neither lists the vaults more than once
    listing = ("kraken", "ListCustodyVaults", "ok")
    assert watched.pop(listing, 0) + alone.pop(listing, 0) == 1
    assert watched == alone, f"with 50 viewers: {watched - alone} more, {alone - watched} fewer"
    assert alone[("intx", "balances", "ok")] == (REFRESHES + 1) * len(sim.market.portfolios)
    assert alone[("kraken", "GetCustodyBalance", "ok")] == (REFRESHES + 1) * len(sim.market.vaults)


def test_a_viewer_that_stops_reading_is_dropped_and_slows_no_one(tmp_path: Path, serve: Callable[..., Served]) -> None:
    busy = {"portfolios": 10, "assets": 40, "assets_per_account": 30, "activity": 0.9, "tick_seconds": 0.05}
    with Simulator(seed=8, **busy) as live:  # hundreds of lines a second: its socket buffers fill fast
        config = tmp_path / "live.toml"
        live.write_config(config, refresh_seconds=1)
        with config.open("a") as out:
            out.write("\n[history]\nenabled = false\n")
        # a bound the readers keep well within even on a loaded machine; the stuck viewer passes it once
        # its socket buffers are full, as it never reads
        served = serve(config, queue_lines=1000, grace=60.0)
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", served.server.port))
        stuck.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        address = f"127.0.0.1:{stuck.getsockname()[1]}"
        readers = [Reader(served.url + "/events") for _ in range(2)]
        until(lambda: f"viewer {address} dropped" in served.err.getvalue(), "the stuck viewer dropped", timeout=90)
        assert served.server.fanout.dropped == 1 and len(served.server.fanout.viewers) == 2
        # it is told why (it can still be told: it reads now), and its connection ends
        stuck.settimeout(60)
        received = b""
        while chunk := stuck.recv(65536):
            received += chunk
        stuck.close()
        assert received.startswith(b"HTTP/1.1 200")
        assert b'"event": "dropped"' in received and b"lines behind" in received
        # the others went on, and go on, receiving every change as it comes
        portfolio = next(iter(live.market.portfolios))
        live.market.set_intx(portfolio, "PINNED", quantity="31415926.535897932384626")  # no ticks move it
        for reader in readers:
            until(
                lambda r=reader: any(  # type: ignore[misc]
                    ln["event"] in ("new", "changed")
                    and (ln["balance"] or {}).get("quantity") == "31415926.535897932384626"
                    for ln in r.lines
                ),
                "the change reached every reading viewer",
            )
        assert not any(r.ended.is_set() for r in readers) and served.server.fanout.dropped == 1


# --- the token ----------------------------------------------------------------------------------------------


def test_with_a_token_every_request_needs_it_and_nothing_shows_it(
    sim: Simulator, config: Path, serve: Callable[..., Served], tmp_path: Path
) -> None:
    token_file = write_config(tmp_path / "token", f"  {TOKEN}\n")
    served = serve(config, read_token(token_file))
    paths = ["/snapshot", "/events", "/metrics", "/healthz", "/detail/intx", "/detail/kraken", "/nowhere"]
    for path in paths:
        for header in (None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"):
            response = httpx.get(served.url + path, headers={"Authorization": header} if header else {}, timeout=30)
            assert response.status_code == 401, (path, header)
            assert set(response.json()) == {"error"} and response.headers["X-Balance-TUI-Contract"] == "2"
        assert httpx.post(served.url + path, timeout=30).status_code == 401
    until(lambda: settled_with(served), "every venue answered")
    reader = Reader(served.url + "/events", TOKEN)
    until(lambda: reader.lines, "the stream, with the token")
    seen = []
    for path in ["/snapshot", "/metrics", "/healthz", "/nowhere", "/detail/intx?venue=x&account=y&asset=z"]:
        response = get(served.url + path, TOKEN)
        assert response.status_code == (404 if "/nowhere" in path or "detail" in path else 200)
        seen.append(response.text + json.dumps(dict(response.headers)))
    seen.append(httpx.post(served.url + "/snapshot", headers={"Authorization": f"Bearer {TOKEN}"}).text)
    seen += [json.dumps(line) for line in reader.lines]
    for text in [*seen, served.err.getvalue(), served.out.getvalue()]:
        assert TOKEN not in text


def test_without_a_token_only_requests_addressed_to_this_machine_are_answered(
    sim: Simulator, config: Path, serve: Callable[..., Served], tmp_path: Path
) -> None:
    """A web page that rebinds its own domain to 127.0.0.1 sends its domain as the Host: refused."""
    served = serve(config)
    port = served.server.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        assert get(served.url + "/healthz", headers={"Host": host}).status_code == 200, host
    for host in (f"rebound.example:{port}", "rebound.example", f"10.1.2.3:{port}", "", f"127.0.0.1.example:{port}"):
        refused = get(served.url + "/snapshot", headers={"Host": host})
        assert refused.status_code == 403 and "--token-file" in refused.json()["error"], host
    with_token = serve(config, read_token(write_config(tmp_path / "token", TOKEN)))
    answered = get(with_token.url + "/healthz", TOKEN, headers={"Host": "desk.example:8765"})
    assert answered.status_code == 200  # with a token, the token decides


def settled_with(served: Served) -> bool:
    doc = get(served.url + "/snapshot", TOKEN).json()
    return all(v["ok"] for v in doc["venues"])


def test_off_loopback_without_a_token_it_refuses_to_start(
    config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run_serve(load(config), "0.0.0.0:0") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--token-file" in err and "0.0.0.0" in err and "Traceback" not in err
    loose = write_config(tmp_path / "loose", TOKEN, mode=0o644)
    empty = write_config(tmp_path / "empty", "  \n")
    for path, words in ((loose, "chmod 600"), (empty, "empty"), (tmp_path / "absent", "does not exist")):
        assert run_serve(load(config), "0.0.0.0:0", path) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and "--token-file" in err
    assert run_serve(load(config), "nonsense") == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_a_port_in_use_is_a_one_line_usage_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert run_serve(load(config), f"127.0.0.1:{taken.getsockname()[1]}") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot listen on 127.0.0.1:" in err and "in use" in err


# --- the process --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_serve_cleanly(sim: Simulator, config: Path, sig: signal.Signals) -> None:
    proc = start_cli("serve", "--config", str(config), "--listen", "127.0.0.1:0")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("balance-tui serve: listening on http://127.0.0.1:"), first
        url = first.rsplit(" ", 1)[-1].strip()
        reader = Reader(url + "/events")
        until(lambda: reader.new(), "the stream flowing")
        proc.send_signal(sig)
        assert proc.wait(60) == 0
        assert reader.ended.wait(30)  # its viewers were closed, not left hanging
        err = proc.stderr.read() if proc.stderr else ""
        assert "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_many_requests_leave_nothing_behind(sim: Simulator, config: Path, serve: Callable[..., Served]) -> None:
    served = serve(config)
    doc = until(lambda: settled(served), "every venue answered")
    intx = doc["venues"][1]
    detail = {"venue": intx["name"], "account": intx["accounts"][0]["id"], "asset": "BTC"}

    def footprint() -> tuple[int, int, int, int]:
        return served.call(
            lambda: (
                len(asyncio.all_tasks()),
                len(served.server.fanout.viewers),
                len(served.server.details.kept) if served.server.details else 0,
                len(served.poller._hooks),
            )
        )

    def burst(rounds: int) -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(rounds):
                for path in ("/snapshot", "/metrics", "/healthz", "/nowhere"):
                    client.get(served.url + path)
                client.get(served.url + "/detail/intx", params=detail)
                with client.stream("GET", served.url + "/events") as stream:
                    next(stream.iter_lines())

    burst(20)
    baseline = until(lambda: (f := footprint())[1] == 0 and f, "the warm-up's viewers gone")
    burst(200)
    until(lambda: footprint() == baseline, f"back to {baseline} tasks, viewers, kept answers, pages")


# --- what a desk's monitoring reads: names, prices, totals, viewers, the index ------------------------------


def _samples(served: Served) -> list[Any]:
    return [s for f in text_string_to_metric_families(get(served.url + "/metrics").text) for s in f.samples]


def test_metrics_name_accounts_and_carry_prices_totals_and_the_firm(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    """Every per-account series says the account's name beside its id; the prices and their age; what each
    venue and the firm (venue="totals") hold, owe and are worth net — each against /snapshot's exact figures."""
    served = serve(config)
    doc = until(lambda: settled(served), "every venue answered and prices in")
    samples = _samples(served)
    names = {(v["name"], a["id"]): a["name"] for v in doc["venues"] for a in v["accounts"]}
    per_account = [s for s in samples if "account" in s.labels]
    assert {s.name for s in per_account} >= {"balance_tui_balance", "balance_tui_usd_value"}
    for sample in per_account:
        assert sample.labels["account_name"] == names[(sample.labels["venue"], sample.labels["account"])], sample
    assert len({s.labels["account_name"] for s in per_account}) == len(set(names.values())) > 3

    prices = {s.labels["asset"]: s.value for s in samples if s.name == "balance_tui_price_usd"}
    quoted = doc["prices"]["usd_prices"]
    assert prices == {asset: float(Decimal(q["usd"])) for asset, q in quoted.items()} and len(prices) > 5
    (age,) = [s.value for s in samples if s.name == "balance_tui_price_age_seconds"]
    fetched = datetime.fromisoformat(doc["prices"]["fetched_at"].replace("Z", "+00:00")).timestamp()
    assert abs(age - (time.time() - fetched)) < 5  # the document's time is to the second
    (period,) = [s.value for s in samples if s.name == "balance_tui_price_period_seconds"]
    assert period == doc["prices"]["period"]

    def summed(name: str) -> dict[str, float]:
        return {s.labels["venue"]: s.value for s in samples if s.name == name}

    gross, loans, net = (summed(f"balance_tui_usd_{n}") for n in ("total", "loans", "net"))
    for venue in doc["venues"]:
        held = [b for a in venue["accounts"] for b in a["balances"]]
        total = sum((Decimal(b["usd_value"]) for b in held if b["usd_value"]), Decimal(0))
        owed = sum((Decimal(b.get("loan_usd_value") or 0) for b in held), Decimal(0))
        assert gross[venue["name"]] == pytest.approx(float(total), rel=1e-12)
        assert gross[venue["name"]] == pytest.approx(float(Decimal(venue["usd_value"])), rel=1e-12)
        assert loans[venue["name"]] == pytest.approx(float(owed), rel=1e-12, abs=1e-9)
        assert net[venue["name"]] == pytest.approx(float(total - owed), rel=1e-12)
    assert any(loans[v["name"]] > 0 for v in doc["venues"])  # INTX lends: net is not gross
    for mine, theirs in ((gross, "usd_total"), (loans, "usd_loans"), (net, "usd_net")):
        assert mine["totals"] == pytest.approx(float(Decimal(doc[theirs])), rel=1e-12)
        assert set(mine) == {v["name"] for v in doc["venues"]} | {"totals"}


def test_viewers_are_counted_by_kind(sim: Simulator, config: Path, serve: Callable[..., Served]) -> None:
    """Following /events (stream), polling /snapshot (an attached TUI or --once: snapshot; a session of `web`:
    browser), each process once however often it polls."""
    served = serve(config)
    until(lambda: settled(served), "every venue answered and prices in")
    served.server.audience.within = 3600.0  # this test's pollers stay recent, however slow the machine

    def viewers() -> dict[str, float]:
        return {s.labels["kind"]: s.value for s in _samples(served) if s.name == "balance_tui_viewers"}

    plain = viewers()["snapshot"]  # this test's own polls: a client that says nothing of itself
    assert plain == 1.0 and viewers()["stream"] == viewers()["browser"] == 0.0
    for _ in range(2):  # two terminals' processes (each its own id); the second polls twice
        assert run_cli("--attach", served.url, "--once", "--format", "json").returncode == 0
    browser = {**os.environ, "BALANCE_TUI_VIEWER": "browser"}
    assert run_cli("--attach", served.url, "--once", "--format", "json", env=browser).returncode == 0
    reader = Reader(served.url + "/events")
    until(lambda: viewers()["stream"] == 1.0, "the stream counted")
    assert viewers() == {"stream": 1.0, "snapshot": plain + 2, "browser": 1.0}
    assert reader.lines  # a real viewer


def test_an_audience_forgets_a_poller_after_ten_seconds_and_stays_bounded() -> None:
    from tui.sinks.audience import Audience

    now = [0.0]
    audience = Audience(limit=3, clock=lambda: now[0])
    audience.saw("terminal a1", "127.0.0.1", "balance-tui/0.2.0")
    audience.saw("terminal a1", "127.0.0.1", "balance-tui/0.2.0")  # the same process again
    audience.saw("browser b1", "127.0.0.1", "balance-tui/0.2.0")
    audience.saw(None, "127.0.0.1", "curl/8")
    assert audience.counts() == {"snapshot": 2, "browser": 1}
    now[0] = 9.9
    assert audience.counts() == {"snapshot": 2, "browser": 1}
    audience.saw("terminal a2", "127.0.0.1", "balance-tui/0.2.0")  # a fourth: the oldest is forgotten (limit 3)
    assert sum(audience.counts().values()) == 3
    now[0] = 10.5
    assert audience.counts() == {"snapshot": 1, "browser": 0}  # only a2 polled in the last 10 s
    audience.saw("terminal " + "x" * 10_000, "127.0.0.1", None)  # a huge id: kept short
    assert max(len(who) for _, who in audience._seen) < 100


def test_the_root_lists_every_endpoint(config: Path, serve: Callable[..., Served]) -> None:
    served = serve(config)
    index = get(served.url + "/")
    assert index.status_code == 200 and index.headers["Content-Type"].startswith("application/json")
    listed = index.json()["endpoints"]
    routes = {r.resource.canonical for r in served.server._app().router.routes() if r.resource is not None}
    assert set(listed) == routes - {"/"}  # every path served, and only those
    assert set(listed) >= {"/snapshot", "/events", "/metrics", "/healthz", "/detail/intx", "/detail/kraken"}
    for path, what in listed.items():
        with httpx.stream("GET", served.url + path, timeout=30) as answer:  # /events never ends: its status only
            assert what and answer.status_code in (200, 400), path  # a detail wants its query


def _hourly(config: Path, tmp_path: Path) -> Path:
    """`config` refreshed once an hour: a stream with nothing to say after its first state."""
    quiet = tmp_path / "quiet.toml"
    quiet.write_text(config.read_text().replace("refresh_seconds = 1", "refresh_seconds = 3600"))
    quiet.chmod(0o600)
    return quiet


def test_a_quiet_stream_sends_heartbeats(config: Path, serve: Callable[..., Served], tmp_path: Path) -> None:
    """Nothing moves (an hour between refreshes): after the state and its end mark, only heartbeats, each
    `{"event": "heartbeat", "at": ISO}`, one per quiet interval (0.2 s here, 15 s by default)."""
    served = serve(_hourly(config, tmp_path), heartbeat=0.2)
    doc = until(lambda: settled(served), "every venue answered and prices in")
    reader = Reader(served.url + "/events")
    state = len(balances_of(doc)) + 1
    until(lambda: len(reader.lines) >= state + 6, "the state, then heartbeats")
    after = reader.lines[state:]
    assert {ln["event"] for ln in after} == {"heartbeat"}
    for line in after:
        assert set(line) == {"event", "at"}
        assert datetime.fromisoformat(line["at"].replace("Z", "+00:00")).tzinfo is not None
    from tui.sinks.fanout import HEARTBEAT

    assert HEARTBEAT == 15.0  # the default, as design.md says


def test_metrics_beside_snapshot_when_only_some_accounts_fail_and_a_rule_is_quiet(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    """INTX lists its portfolios but every balance call fails (503): /snapshot says INTX is not ok with its last
    good balances kept; /metrics says the same — INTX down, Kraken up, INTX's last amounts still served as
    /snapshot has them — and a rule that never fired is there at 0, so a dashboard can tell quiet from absent."""
    with config.open("a") as out:
        out.write('\n[[alert]]\nname = "never"\nvenue = "totals"\nasset = "BTC"\nfield = "total"\nabove = "1e30"\n')
    served = serve(config)
    until(lambda: settled(served), "every venue answered and prices in")
    sim.faults.set("http-5xx", venue="intx", endpoint="balances")

    def intx_failing() -> dict[str, Any] | None:
        doc: dict[str, Any] = get(served.url + "/snapshot").json()
        intx = next(v for v in doc["venues"] if "INTX" in v["name"])
        failing = intx["accounts"] and all(a["error"] for a in intx["accounts"]) and not intx["ok"]
        return doc if failing else None

    doc = until(intx_failing, "INTX's balance calls failing in /snapshot")
    samples = _samples(served)
    up = {s.labels["venue"]: s.value for s in samples if s.name == "balance_tui_venue_up"}
    assert up == {v["name"]: (1.0 if v["ok"] else 0.0) for v in doc["venues"]}
    assert sorted(up.values()) == [0.0, 1.0]  # INTX down, Kraken up
    intx = next(v["name"] for v in doc["venues"] if not v["ok"])
    served_amounts = {
        (s.labels["account"], s.labels["asset"], s.labels["field"]): s.value
        for s in samples
        if s.name == "balance_tui_balance" and s.labels["venue"] == intx
    }
    kept = {
        (account, asset, field): float(amount)
        for (venue, account, asset), record in balances_of(doc).items()
        if venue == intx
        for field, amount in record.items()
        if field not in ("asset", "asset_id", "asset_name", "asset_uuid", "usd_price", "usd_value", "loan_usd_value")
        and amount is not None
    }
    assert served_amounts == kept and kept  # the last good amounts, not dropped and not invented
    firing = {s.labels["alert"]: s.value for s in samples if s.name == "balance_tui_alert_firing"}
    assert firing == {"never": 0.0}


def test_the_served_drill_downs_are_what_the_venue_sent_field_by_field(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    """/detail/kraken and /detail/intx against the same calls made by the venues' own SDKs (python-kraken-sdk's
    signed request, Coinbase's intx-sdk-py), field by field with the digits as sent — a field swapped for
    another, or one dropped, shows here (each value of the simulated world is distinct)."""
    import base64

    from intx_sdk.services.portfolios.get_balance_for_portfolio_asset import GetBalanceForPortfolioAssetRequest
    from intx_sdk.services.portfolios.get_portfolio_summary import GetPortfolioSummaryRequest

    from tests.sdk import IntegerNonceSpotClient
    from tests.test_third_party_clients import coinbase_sdk, same_digits

    secret = base64.b64encode(b"the drill-down's own sdk key" * 2).decode()
    sim.add_kraken_key("drill-sdk-key", secret)  # a key of its own: nonces are per key
    kraken_sdk = IntegerNonceSpotClient(key="drill-sdk-key", secret=secret, url=sim.url)
    served = serve(config)
    doc = until(lambda: settled(served), "every venue answered")
    kraken, intx = doc["venues"]
    for vault in (a["id"] for a in kraken["accounts"]):
        ours = get(served.url + "/detail/kraken", params={"venue": kraken["name"], "account": vault}).json()
        theirs = kraken_sdk.request("POST", f"/0/private/GetCustodyVault?id={vault}", params={}, do_json=True)
        sent = theirs["result"]
        assert (ours["balance_fiat"], ours["available_balance_fiat"], ours["status"]) == (
            sent["balance_fiat"],
            sent["available_balance_fiat"],
            sent["status"],
        )
        assert ours["assets"] == {
            item["asset"]: {
                "usd_price": item["current_usd_price"],
                "quantity": item["total_balance"]["quantity"],
                "usd_value": item["total_balance"]["current_usd_value"],
                "available_quantity": item["available_balance"]["quantity"],
                "available_usd_value": item["available_balance"]["current_usd_value"],
            }
            for item in sent["asset_details"]
        }
    coinbase = coinbase_sdk(sim)
    portfolio = intx["accounts"][0]
    compared: set[tuple[str, str]] = set()
    for asset in (b["asset"] for b in portfolio["balances"]):
        query = {"venue": intx["name"], "account": portfolio["id"], "asset": asset}
        ours = get(served.url + "/detail/intx", params=query).json()
        balance = coinbase.get_balance_for_portfolio_asset(
            GetBalanceForPortfolioAssetRequest(portfolio["id"], asset)
        ).balance
        summary = coinbase.get_portfolio_summary(GetPortfolioSummaryRequest(portfolio["id"])).portfolio_summary
        for section, sdk_model in (("balance", balance), ("summary", summary)):
            assert ours[section], section
            for field, value in ours[section].items():
                if value is None or not hasattr(sdk_model, field):
                    continue
                theirs = getattr(sdk_model, field)
                assert theirs == value if isinstance(value, bool) else same_digits(theirs, value), (section, field)
                compared.add((section, field))
    assert {f for s, f in compared if s == "balance"} >= {"quantity", "hold", "loan", "collateral_value"}
    assert len([f for s, f in compared if s == "summary"]) >= 10  # the summary's fields, not one or two


def test_a_drill_down_error_quoting_the_request_shows_no_secret(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    """A venue (or a proxy) quoting the request back in its error: the served error says what failed, with the
    signature and the key scrubbed (the signatures looked for are those the simulator received)."""
    served = serve(config)
    doc = until(lambda: settled(served), "every venue answered")
    kraken = doc["venues"][0]
    sim.faults.set("echo", venue="kraken", endpoint="GetCustodyVault")
    answer = get(
        served.url + "/detail/kraken", params={"venue": kraken["name"], "account": kraken["accounts"][0]["id"]}
    )
    assert answer.status_code == 502 and "***" in answer.text  # the echo arrived, scrubbed
    signed = sim.signatures()
    assert signed and not [s for s in signed if s in answer.text]
    assert sim.kraken_keys.api_key not in answer.text and sim.kraken_keys.api_secret not in answer.text


def test_the_state_a_new_viewer_gets_ends_with_a_heartbeat_at_once(
    config: Path, serve: Callable[..., Served], tmp_path: Path
) -> None:
    """The whole state, then at once a heartbeat marking its end (an attached --watch tells a replay from what
    follows by it) — not after the first quiet interval, set here to an hour so that only the mark can come."""
    served = serve(_hourly(config, tmp_path), heartbeat=3600.0)
    doc = until(lambda: settled(served), "every venue answered and prices in")
    reader = Reader(served.url + "/events")
    until(lambda: any(ln["event"] == "heartbeat" for ln in reader.lines), "the state's end mark")
    events = [ln["event"] for ln in reader.lines]
    end = events.index("heartbeat")
    assert set(events[:end]) <= {"new", "prices"}
    assert sum(e == "new" for e in events[:end]) == len(balances_of(doc))  # the whole state came before it
