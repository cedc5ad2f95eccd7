"""What a venue's headers say of time, as the clients read them from real answers (a raw socket server on
127.0.0.1): a Retry-After given as an HTTP date is a wait of so many seconds from now, and the `Date` header,
truncated to whole seconds, gives the venue's clock within half a second (tui/venues/http.py: centred)."""

from __future__ import annotations

import email.utils
import math
import socket
import threading
import time

import pytest

from tests.hostile_server import HostileServer
from tui.credentials import Secret
from tui.venues import http, kraken
from tui.venues.errors import VenueError
from tui.venues.intx import IntxClient

SECRET = "c2VjcmV0LWZvci10aGUtY2xvY2stdGVzdHM="


def _answer(status: str, body: bytes, **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode() + body


@pytest.mark.parametrize(("status", "ahead"), [("429 Too Many Requests", 30), ("503 Service Unavailable", 120)])
async def test_a_retry_after_given_as_a_date_is_a_wait_from_now(status: str, ahead: int) -> None:
    def send(sock: socket.socket, stop: threading.Event) -> None:
        when = email.utils.formatdate(time.time() + ahead, usegmt=True)
        sock.sendall(_answer(status, b'{"error": ["EService:Unavailable"]}', Retry_After=when))

    with HostileServer({"/0/private/GetCustodyBalance": send}) as server:
        async with http.new_client(server.url) as client:
            response = await http.send(client, client.build_request("POST", "/0/private/GetCustodyBalance"))
    with pytest.raises(VenueError) as caught:
        kraken.read_payload(response, "GetCustodyBalance")
    assert caught.value.retry_after is not None and ahead - 5 <= caught.value.retry_after <= ahead, caught.value


@pytest.mark.parametrize("fraction", [0.2, 0.8])
async def test_the_venues_clock_is_read_within_half_a_second(fraction: float) -> None:
    """The venue's clock is made to run `ahead` seconds ahead of ours, with `fraction` of a second past its whole
    second when it answers: its Date header says that second, truncated; the client's estimate is within 0.5 s."""
    ahead: list[float] = []

    def send(sock: socket.socket, stop: threading.Event) -> None:
        now = time.time()
        shift = 7.0 + (fraction - math.modf(now)[0]) % 1.0  # the venue's clock: now + shift, at `fraction` past
        ahead.append(shift)
        date = email.utils.formatdate(math.floor(now + shift), usegmt=True)
        sock.sendall(_answer("200 OK", b"[]", Date=date))

    with HostileServer({"/api/v1/portfolios": send}) as server:
        async with http.new_client(server.url) as client:
            intx = IntxClient(client, Secret("key"), Secret(SECRET), Secret("passphrase"))
            assert await intx.portfolios() == []
    assert intx.clock_offset is not None
    assert abs(intx.clock_offset - ahead[0]) <= 0.5, (intx.clock_offset, ahead[0])
