"""The venue answer bound itself, not a small stand-in (tests/test_venue_bounds.py makes it 1 MB to test how it
is applied): an answer past 32 MB, announced or not, is refused as "more than 32 MB", and one the size of the
largest a venue really sends (Kraken's every-pair Ticker and AssetPairs, about 1 MB each) and well beyond it is
read whole. A raw socket server on 127.0.0.1 (tests/hostile_server.py)."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from tests.hostile_server import HostileServer, head, huge
from tui.venues import http
from tui.venues.errors import ErrorKind, VenueError

MB = 1_000_000


async def _get(url: str) -> bytes:
    async with http.new_client(url) as client:
        response = await http.send(client, client.build_request("GET", "/0/public/Ticker"))
    return response.content


@pytest.mark.parametrize("declared", [True, False])
async def test_an_answer_past_32_mb_is_refused(declared: bool) -> None:
    with (
        HostileServer({"/0/public/Ticker": huge(33 * MB, declared=declared)}) as server,
        pytest.raises(VenueError) as refused,
    ):
        await _get(server.url)
    assert refused.value.kind is ErrorKind.BAD_RESPONSE and "more than 32 MB" in refused.value.message


async def test_an_answer_of_a_real_size_and_beyond_is_read_whole() -> None:
    """Every pair's ticker for 60,000 pairs (Kraken lists about 1,400): some 6.5 MB, well within the bound."""
    entry = {"a": ["97250.10000", "1", "1.000"], "c": ["97250.10000", "0.01000000"], "o": "97250.10000"}
    body = json.dumps({"error": [], "result": {f"PAIR{i}USD": entry for i in range(60_000)}}).encode()
    assert 5 * MB < len(body) < 32 * MB

    def answer(sock: socket.socket, stop: threading.Event) -> None:
        sock.sendall(head(length=len(body)) + body)

    with HostileServer({"/0/public/Ticker": answer}) as server:
        assert await _get(server.url) == body
