"""INTX counts 40 requests per second per key; the client holds each request's slot from sending it until a full
second after its answer (tui/venues/intx.py RequestRate). Judged on the wire, whatever the machine's speed: 60
requests at once against the simulator, each send and each answer timed by the HTTP client's own hooks; the
41st request and after go only a second after an earlier answer freed their slot, and nothing is refused."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

from tui.credentials import Secret
from tui.sim import Simulator
from tui.venues import http, intx
from tui.venues.intx import IntxClient

LIMIT, PER = 40, 1.0


@pytest.mark.parametrize("shared", [False, True], ids=["this process alone", "shared through the key's ledger"])
async def test_a_slot_frees_a_full_second_after_its_answer(sim: Simulator, shared: bool) -> None:
    """Both as the demo builds the client (its own count) and as every real command does (`shared`: counted with
    every balance-tui process on the key, through its ledger)."""
    sent: list[float] = []
    answered: list[float] = []

    async def on_request(request: httpx.Request) -> None:
        sent.append(time.monotonic())

    async def on_response(response: httpx.Response) -> None:
        answered.append(time.monotonic())

    async with http.new_client(sim.url) as web:
        web.event_hooks = {"request": [on_request], "response": [on_response]}
        keys = sim.intx_keys
        client = IntxClient(
            web, Secret(keys.api_key), Secret(keys.api_secret), Secret(keys.passphrase or ""), shared=shared
        )
        await asyncio.gather(*(client.portfolios() for _ in range(60)))
    assert len(sent) == len(answered) == 60
    assert sim.count("intx", verdict="rate-limited") == 0
    sent.sort()
    answered.sort()
    for k in range(LIMIT, len(sent)):  # the k-th send (0-based) needs the (k - LIMIT)-th answer a second old
        assert sent[k] >= answered[k - LIMIT] + PER, (k, sent[k] - answered[k - LIMIT])


async def test_by_the_rates_own_clock_a_slot_is_held_until_a_full_second_after_its_answer() -> None:
    """The same promise with the rate's clock in hand: 40 requests answered at t=0; a 41st asks at 0.3, 0.6 and
    0.99 s (held back each time) and at 1.0 s (it goes). Each ask is one look: no time passes but the clock's."""
    now = [0.0]
    rate = intx.RequestRate(limit=LIMIT, per=PER, clock=lambda: now[0])
    for _ in range(LIMIT):
        async with rate.slot():
            pass

    async def asks(at: float) -> bool:
        now[0] = at
        went = asyncio.Event()

        async def one_more() -> None:
            async with rate.slot():
                went.set()

        task = asyncio.create_task(one_more())
        await asyncio.sleep(0)  # one step: it goes at once, or it waits
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return went.is_set()

    assert [await asks(at) for at in (0.3, 0.6, 0.99)] == [False, False, False]
    assert await asks(1.0)
