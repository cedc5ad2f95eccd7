"""Promises of the attached viewer's parts that no other test held it to (issue 22): a drill-down made through a
server is what the server served, field by field and digit for digit, and a venue's failure on the server's
call keeps its kind; what a server says in an error reaches the operator without the token and without
anything that steers a terminal."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.test_serve import Served, get, settled, until
from tui.credentials import Secret
from tui.money import fmt
from tui.remote.client import AttachError, ServerClient
from tui.remote.source import RemoteSource
from tui.sim import Simulator
from tui.venues.errors import ErrorKind, VenueError


@pytest.fixture
def config(sim: Simulator, tmp_path: Path) -> Path:
    path = tmp_path / "serve.toml"
    sim.write_config(path, refresh_seconds=1)
    with path.open("a") as out:
        out.write("\n[history]\nenabled = false\n")
    return path


VAULT_FIELDS = ("usd_price", "quantity", "usd_value", "available_quantity", "available_usd_value")


def test_an_attached_drill_down_is_what_the_server_served_field_by_field(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    """Through RemoteSource.details, as the attached TUI asks: every field of every vault asset, the vault's
    totals and status, and an INTX balance with its portfolio's summary, each with the digits /detail served
    (which test_serve holds to the venues' own SDKs). Each value of the simulated world is distinct, so a field
    read into another's place shows."""
    served = serve(config)
    doc = until(lambda: settled(served), "every venue answered")
    kraken, intx = doc["venues"]
    portfolio = intx["accounts"][0]
    assets = [b["asset"] for b in portfolio["balances"]]

    async def drill() -> tuple[dict[str, Any], list[tuple[Any, Any]]]:
        async with RemoteSource(ServerClient(served.url)) as source:
            vaults = {a["id"]: await source.details(kraken["name"]).vault(a["id"]) for a in kraken["accounts"]}
            remote = source.details(intx["name"])
            held = []
            for asset in assets:
                balance = await remote.balance(portfolio["id"], asset)
                held.append((balance, await remote.summary(portfolio["id"])))
            return vaults, held

    vaults, held = asyncio.run(drill())
    for vault, details in vaults.items():
        sent = get(served.url + "/detail/kraken", params={"venue": kraken["name"], "account": vault}).json()
        assert (fmt(details.balance_fiat), fmt(details.available_balance_fiat), details.status) == (
            sent["balance_fiat"],
            sent["available_balance_fiat"],
            sent["status"],
        )
        assert set(details.assets) == set(sent["assets"]) and details.assets
        for name, item in details.assets.items():
            assert {f: fmt(getattr(item, f)) or None for f in VAULT_FIELDS} == sent["assets"][name], name
        values = [getattr(i, f) for i in details.assets.values() for f in VAULT_FIELDS if getattr(i, f) is not None]
        assert len(set(values)) > len(details.assets)  # distinct values: a swap cannot pass unseen
    for asset, (balance, summary) in zip(assets, held, strict=True):
        query = {"venue": intx["name"], "account": portfolio["id"], "asset": asset}
        sent = get(served.url + "/detail/intx", params=query).json()
        assert balance.as_record() == sent["balance"] and balance.asset == asset
        assert summary.as_record() == sent["summary"] and len(sent["summary"]) >= 10


def test_a_venue_failing_the_servers_drill_down_keeps_its_kind_and_cause(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    served = serve(config)
    doc = until(lambda: settled(served), "every venue answered")
    kraken = doc["venues"][0]
    sim.faults.set("http-5xx", venue="kraken", endpoint="GetCustodyVault")

    async def drill() -> VenueError:
        async with RemoteSource(ServerClient(served.url)) as source:
            with pytest.raises(VenueError) as failed:
                await source.details(kraken["name"]).vault(kraken["accounts"][0]["id"])
            return failed.value

    error = asyncio.run(drill())
    assert error.kind is ErrorKind.SERVER and "503" in error.message


# --- what a server says reaches the operator clean ------------------------------------------------------------

TOKEN = "attach-t0ken-5b1c9e7a3d-2f4e6a8c0b1d3e5f"
HOSTILE = f"token {TOKEN} refused \x1b[2J\x1b]0;owned\x07 \u202egnp.exe"


@pytest.fixture
def quoting() -> Iterator[str]:
    """A server that answers every path with an error quoting the viewer's token and terminal controls: a
    /detail path as a failure of the venue (502, as serve words one), anything else as a 500."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            detail = self.path.startswith("/detail/")
            body = {"error": HOSTILE, "error_kind": "auth"} if detail else {"error": HOSTILE}
            data = json.dumps(body).encode()
            self.send_response(502 if detail else 500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _clean(message: str) -> None:
    assert TOKEN not in message and TOKEN[:16] not in message, message
    assert not any(c in message for c in "\x1b\x07\u202e"), message
    assert "refused" in message  # the server's words, not dropped


def test_a_servers_error_quoting_the_token_reaches_the_operator_without_it(quoting: str) -> None:
    async def ask() -> list[str]:
        said = []
        async with ServerClient(quoting, Secret(TOKEN)) as client:
            for call in (client.check, client.snapshot):
                with pytest.raises(AttachError) as refused:
                    await call()
                said.append(refused.value.message)
            with pytest.raises(VenueError) as failed:
                await client.vault("K", "v")
            assert failed.value.kind is ErrorKind.AUTH
            said.append(failed.value.message)
        return said

    said = asyncio.run(ask())
    assert len(said) == 3
    for message in said:
        _clean(message)


def test_a_line_an_attached_watch_passes_on_has_the_servers_text_exactly_and_nothing_raw_that_steers() -> None:
    """A server's line is printed as sent (its exact text), but with what could steer a terminal inside its
    strings (a bidi override, a C1 control, a line separator: all valid raw in JSON) as JSON escapes."""
    from tui.remote.attach import Shown

    shown = Shown()
    shown.connecting()
    balance = {"asset": "BTC", "quantity": "1"}
    sent = [
        {"event": "new", "venue": "V\u202e", "kind": "k", "account": {"id": "a\x9b31m", "name": "n\u2028"},
         "asset": "BTC", "fields": ["quantity"], "balance": balance, "previous": None},
        {"at": "T", "event": "venue-failing", "venue": "W", "error": "HTTP 503 \u202egnp.exe\x85"},
    ]  # fmt: skip
    for line in sent:
        raw = json.dumps(line, ensure_ascii=False)
        assert "\u202e" in raw  # raw in the server's line
        (printed,) = shown.lines(raw)
        assert not any(c in printed for c in "\u202e\x9b\x85\u2028"), printed
        assert json.loads(printed) == line


def test_while_the_server_is_away_the_last_snapshot_is_handed_on_failing_with_the_cause(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    """The attached TUI's source: each venue as the server last had it, then, once the server is gone, the same
    venues and balances marked failing (unreachable, saying so), and the prices handed on while it was there."""
    from tui.snapshot.model import VenueSnapshot

    served = serve(config)
    doc = until(lambda: settled(served), "every venue answered and prices in")
    seen: list[VenueSnapshot] = []
    priced: list[object] = []

    async def follow() -> None:
        async with RemoteSource(ServerClient(served.url), period=0.05) as source:
            task = asyncio.create_task(source.run(seen.append, priced.append))
            while not seen:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(served.stop)
            while not any(v.error is not None for v in seen):
                await asyncio.sleep(0.01)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(asyncio.wait_for(follow(), 60))  # a safety net only
    good = [v for v in seen if v.error is None]
    away = [v for v in seen if v.error is not None]
    assert good and away and priced
    names = [v["name"] for v in doc["venues"]]
    assert [v.name for v in away[: len(names)]] == names
    for venue in away[: len(names)]:
        assert venue.error is not None and venue.error.kind is ErrorKind.UNREACHABLE
        assert "cannot reach the balance-tui server" in venue.error.message and not venue.ok
        before = next(v for v in good if v.name == venue.name)
        assert [(a.id, a.balances) for a in venue.accounts] == [(a.id, a.balances) for a in before.accounts]
        assert venue.accounts and venue.fetched_at == before.fetched_at  # its age goes on showing how old


def test_an_attached_viewer_knows_the_desk_only_as_the_snapshot_tells_it(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    """Venue names and kinds in the server's order, the price source and the asset names the server uses,
    its shortest refresh period; no key, no history, no alert command of its own."""
    from tui.remote.viewer import viewer_config

    served = serve(config)
    doc = until(lambda: settled(served), "every venue answered and prices in")

    async def first() -> Any:
        async with ServerClient(served.url) as client:
            return await client.snapshot()

    snapshot = asyncio.run(first())
    seen = viewer_config(snapshot, "desk.example:8765")
    assert [(v.name, v.kind.kind) for v in seen.venues] == [(v["name"], v["kind"]) for v in doc["venues"]]
    assert all(v.base_url == "http://desk.example:8765" and not v.secrets for v in seen.venues)
    assert seen.prices.source == doc["prices"]["source"] == "kraken"
    assert seen.refresh_seconds == min(v["state"]["period"] for v in doc["venues"] if v["state"]["period"])
    assert not seen.history.enabled and seen.alerts == () and seen.path is None
