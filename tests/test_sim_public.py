"""Kraken's public Ticker as the simulator answers it: a pair list with one pair it does not list fails the whole
request with Kraken's own error ("EQuery:Unknown asset pair", a string under `error`, no `result`), never a
shorter answer that leaves a client thinking the missing pair has no price; the known pairs alone answer."""

from __future__ import annotations

import httpx

from tui.sim import Simulator


def test_one_unknown_pair_fails_the_whole_ticker_request(sim: Simulator) -> None:
    with httpx.Client(base_url=sim.url, timeout=30) as wire:
        for asked in ("XBTUSD,NOPEUSD", "NOPEUSD,XBTUSD", "XXBTZUSD,ETHUSD,NOPEUSD"):
            answer = wire.get("/0/public/Ticker", params={"pair": asked}).json()
            assert answer == {"error": ["EQuery:Unknown asset pair"]}, (asked, answer)
        known = wire.get("/0/public/Ticker", params={"pair": "XBTUSD,ETHUSD"}).json()
    assert known["error"] == [] and sorted(known["result"]) == ["XETHZUSD", "XXBTZUSD"]
