"""The venues' connections (tui/venues/http.py `Connections`): every connection handed back after each
request however it ended, never more than CONNECTIONS at once, and a request that finds them all busy
waits the pool timeout, then says so."""

from __future__ import annotations

import asyncio
import os

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
