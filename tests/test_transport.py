"""The venues' connections (tui/venues/http.py `Connections`): every connection handed back after each
request however it ended, never more than CONNECTIONS at once, and a request that finds them all busy
waits the pool timeout, then says so."""

from __future__ import annotations

import asyncio
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tui.sim import Simulator
from tui.venues import http
from tui.venues.errors import ErrorKind, VenueError


def pool_of(client: httpx.AsyncClient) -> http.Connections:
    transport = client._transport
    assert isinstance(transport, http.Connections)
    return transport


async def test_every_connection_comes_back_after_answers_errors_and_cancellations(sim: Simulator) -> None:
    sim.faults.set("latency", venue="intx", value=0.05)
    async with http.new_client(sim.url) as client:
        pool = pool_of(client)

        async def one(path: str) -> int:
            return (await http.send(client, client.build_request("GET", path))).status_code

        answered = await asyncio.gather(*(one("/api/v1/portfolios") for _ in range(3 * http.CONNECTIONS)))
        assert set(answered) == {401}  # unsigned: the venue answers, and that is all this needs
        assert len(pool._all) == http.CONNECTIONS  # reused, never more than the bound
        cancelled = [asyncio.ensure_future(one("/api/v1/portfolios")) for _ in range(2 * http.CONNECTIONS)]
        while not pool._free.locked():  # every connection in the middle of a request
            await asyncio.sleep(0.001)
        busy = pool._all - set(pool._idle)
        assert busy
        for task in cancelled:
            task.cancel()
        await asyncio.gather(*cancelled, return_exceptions=True)
        assert not busy & pool._all and not busy & set(pool._idle)  # cut off: closed, not kept
        assert set(pool._idle) == pool._all and pool._free._value == http.CONNECTIONS
        assert await one("/api/v1/portfolios") == 401  # and the pool still serves


async def test_a_request_cancelled_twice_does_not_break_the_next_ones(sim: Simulator) -> None:
    """A second cancellation can cut httpcore's own tidying short, leaving its connection marked busy: a
    connection whose request did not end cleanly is closed and replaced, never handed out again."""
    sim.faults.set("latency", venue="intx", value=0.2)
    async with http.new_client(sim.url) as client:
        pool = pool_of(client)
        for _ in range(3):
            arrived = sim.faults.arrived
            task = asyncio.ensure_future(http.send(client, client.build_request("GET", "/api/v1/portfolios")))
            while sim.faults.arrived == arrived and not task.done():  # sent, waiting for the answer (0.2 s)
                await asyncio.sleep(0.001)
            task.cancel()
            await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        sim.faults.clear()
        for _ in range(3):  # one after another: each would take the connection on top of the stack
            answer = await http.send(client, client.build_request("GET", "/api/v1/portfolios"))
            assert answer.status_code == 401
        assert pool._free._value == http.CONNECTIONS


def test_with_a_proxy_in_the_environment_httpx_applies_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    client = http.new_client("https://api.example.com")
    assert not isinstance(client._transport, http.Connections) and client._mounts
    monkeypatch.delenv("HTTPS_PROXY")
    assert isinstance(http.new_client("https://api.example.com")._transport, http.Connections)
    monkeypatch.setenv("NO_PROXY", "localhost")  # common alone in containers and CI: it names no proxy
    assert isinstance(http.new_client("https://api.example.com")._transport, http.Connections)


async def test_all_connections_busy_waits_the_pool_timeout_then_says_so(sim: Simulator) -> None:
    sim.faults.set("hang", venue="intx")
    patience = httpx.Timeout(connect=5.0, read=60.0, write=5.0, pool=0.2)
    async with http.new_client(sim.url, timeout=patience) as client:
        pool = pool_of(client)
        hung = [
            asyncio.ensure_future(http.send(client, client.build_request("GET", "/api/v1/portfolios")))
            for _ in range(http.CONNECTIONS)
        ]
        while not pool._free.locked():
            await asyncio.sleep(0.01)
        with pytest.raises(VenueError) as caught:
            await http.send(client, client.build_request("GET", "/api/v1/portfolios"))
        assert caught.value.kind is ErrorKind.TIMEOUT and "waiting for a free connection" in caught.value.message
        for task in hung:
            task.cancel()
        await asyncio.gather(*hung, return_exceptions=True)
        assert set(pool._idle) == pool._all and pool._free._value == http.CONNECTIONS


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:9", "http://127.0.0.1:9/", "http://127.0.0.1:9/relay", "http://127.0.0.1:9/relay/"]
)
async def test_paths_resolve_against_the_base_url_as_httpx_does(base: str) -> None:
    paths = [
        "/0/private/GetCustodyBalance",
        "/0/private/GetCustodyVault?id=VABCDEFGHIJKLM",
        "/0/private/GetCustodyVault?id=VZZZZZZZZZZZZZ",  # the same path, another query
        "/api/v1/portfolios/5189861793641175/balances",
        "api/v1/portfolios",
        "/0/public/Ticker?pair=XBTUSD%2CETHUSD",
        "http://127.0.0.2:9/elsewhere",
    ]
    async with http.new_client(base) as ours, httpx.AsyncClient(base_url=base) as plain:
        for path in paths * 2:  # the second time from what the client resolved the first
            assert ours.build_request("GET", path).url == plain.build_request("GET", path).url, path
        assert (
            ours.build_request("GET", "/x", params={"a": "1"}).url
            == plain.build_request("GET", "/x", params={"a": "1"}).url
        )
        ours.base_url = plain.base_url = "http://127.0.0.1:9/moved/"
        for path in paths:  # nothing resolved against the old base is reused
            assert ours.build_request("GET", path).url == plain.build_request("GET", path).url, path


async def test_a_cookie_the_venue_sets_is_neither_kept_nor_sent_back() -> None:
    """A CDN in front of a venue sets cookies; the signed API needs none, and a client that kept them
    would parse every answer for them."""
    received: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.headers.get("Cookie"))
            self.send_response(200)
            self.send_header("Set-Cookie", "__cf_bm=tracking; Path=/; HttpOnly")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        async with http.new_client(f"http://127.0.0.1:{server.server_port}") as client:
            for _ in range(2):
                response = await http.send(client, client.build_request("GET", "/api/v1/portfolios"))
                assert response.headers["set-cookie"].startswith("__cf_bm=")
            assert not client.cookies
    finally:
        server.shutdown()
        server.server_close()
    assert received == [None, None]
