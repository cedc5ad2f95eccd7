"""What a venue sends is read within bounds: an answer too large (announced or not, compressed or not) and
an answer dripped a byte at a time end as one VenueError each, never as memory or time without end. The
bounds are made small here; the broken venue is a raw socket server (tests/hostile_server.py)."""

from __future__ import annotations

import gzip
import socket
import threading
import time

import pytest

from tests.hostile_server import HostileServer, drip, head, huge
from tui.venues import http
from tui.venues.errors import ErrorKind, VenueError

LIMIT = 1_000_000


@pytest.fixture(autouse=True)
def small_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "MAX_BODY", LIMIT)
    monkeypatch.setattr(http, "DEADLINE", 2.0)


async def _get(url: str) -> VenueError:
    async with http.new_client(url) as client:
        with pytest.raises(VenueError) as refused:
            await http.send(client, client.build_request("GET", "/0/public/Ticker"))
    return refused.value


def _bomb(sock: socket.socket, stop: threading.Event) -> None:
    """50 MB of zeros, gzipped to about 50 KB: small on the wire, large in memory."""
    body = gzip.compress(b"0" * 50_000_000)
    sock.sendall(head(length=len(body)).replace(b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n") + body)


@pytest.mark.parametrize("declared", [True, False])
async def test_an_answer_too_large_is_refused(declared: bool) -> None:
    with HostileServer({"/0/public/Ticker": huge(50 * LIMIT, declared=declared)}) as server:
        error = await _get(server.url)
    assert error.kind is ErrorKind.BAD_RESPONSE and "more than 1 MB" in error.message


async def test_an_answer_announced_too_large_is_refused_before_it_is_read() -> None:
    """Announced as larger than the bound, the rest never sent: refused at once, not at the deadline."""

    def announce(sock: socket.socket, stop: threading.Event) -> None:
        sock.sendall(head(length=50 * LIMIT) + b"[")
        stop.wait()

    with HostileServer({"/0/public/Ticker": announce}) as server:
        error = await _get(server.url)
    assert error.kind is ErrorKind.BAD_RESPONSE and "more than 1 MB" in error.message


async def test_a_compressed_answer_is_counted_as_it_unpacks() -> None:
    with HostileServer({"/0/public/Ticker": _bomb}) as server:
        error = await _get(server.url)
    assert error.kind is ErrorKind.BAD_RESPONSE and "more than 1 MB" in error.message


async def test_an_answer_dripped_a_byte_at_a_time_ends_at_the_deadline() -> None:
    started = time.monotonic()
    with HostileServer({"/0/public/Ticker": drip(every=0.2)}) as server:
        error = await _get(server.url)
    assert error.kind is ErrorKind.TIMEOUT and "no whole answer within 2 s" in error.message
    assert time.monotonic() - started < 30  # a safety net: without the deadline the drip lasts minutes


async def test_an_answer_within_the_bounds_is_read_whole() -> None:
    body = b'{"error": [], "result": {}}'

    def answer(sock: socket.socket, stop: threading.Event) -> None:
        sock.sendall(head(length=len(body)) + body)

    with HostileServer({"/0/public/Ticker": answer}) as server:
        async with http.new_client(server.url) as client:
            response = await http.send(client, client.build_request("GET", "/0/public/Ticker"))
    assert response.status_code == 200 and response.content == body
