"""Kraken's throttles, as the simulator serves them and as our clients take them: "EGeneral:Too many requests"
(a rate limit for a while), "EService:Throttled: <unix ts>" (a rate limit until that time) and
"EGeneral:Temporary lockout" (the key refused for about 15 minutes). Each reaches our custody client in the
custody error form (an object under the method's error key) and our price source in the public one (a string
under `error`, as ccxt quotes it), and each is waited out: never a call to Kraken before its time.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import kraken_for, run_cli
from tests.test_simulator import intx_get, kraken_post
from tui.assets import AssetNames
from tui.engine.prices import PriceRefresher
from tui.engine.refresher import VenueRefresher
from tui.sim import Simulator, parse_fault_flag
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.kraken_prices import KrakenPrices

RECORDINGS = Path(__file__).parent / "recordings"
LOCKOUT = 900.0  # "about 15 minutes"


def vault(sim: Simulator) -> str:
    return next(iter(sim.market.vaults))


# --- what the simulator sends ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "cls", "kind", "message"),
    [
        ("too-many-requests", "EGeneral", "TooManyRequests", "Too many requests"),
        ("throttled:42", "EService", "Throttled", "Throttled: {ts}"),
        ("lockout", "EGeneral", "TemporaryLockout", "Temporary lockout"),
    ],
)
@pytest.mark.parametrize("method", ["GetCustodyBalance", "ListCustodyVaults"])
def test_a_custody_throttle_is_an_error_object_under_the_methods_key(
    sim: Simulator, fault: str, cls: str, kind: str, message: str, method: str
) -> None:
    """As every custody error: HTTP 200, `error` on GetCustodyBalance and `errors` on the vault calls."""
    sim.faults.add(parse_fault_flag(f"{fault}@kraken"))
    with httpx.Client(base_url=sim.url) as wire:
        before = int(time.time())
        answer = kraken_post(sim, wire, method)
        after = int(time.time())
    assert answer.status_code == 200
    body = answer.json()
    key = "error" if method == "GetCustodyBalance" else "errors"
    assert set(body) == {key, "result"} and body["result"] is None
    [item] = body[key]
    assert (item["severity"], item["errorClass"], item["type"]) == ("E", cls, kind)
    if "{ts}" in message:
        stamp = int(item["errorMessage"].rpartition(" ")[2])
        assert before + 42 <= stamp <= after + 42
        assert item["errorMessage"] == message.format(ts=stamp)
    else:
        assert item["errorMessage"] == message
    assert sim.count("kraken", method, f"fault:{fault.partition(':')[0]}") == 1


def test_a_public_throttle_is_a_string_as_recorded(sim: Simulator) -> None:
    recorded = json.loads((RECORDINGS / "ccxt/kraken_too_many_requests.json").read_text())
    sim.faults.add(parse_fault_flag("too-many-requests@prices"))
    with httpx.Client(base_url=sim.url) as wire:
        assert wire.get("/0/public/Ticker", params={"pair": "XBTUSD"}).json() == recorded
        sim.faults.clear()
        sim.faults.add(parse_fault_flag("throttled:5@prices"))
        [text] = wire.get("/0/public/AssetPairs").json()["error"]
    assert text.startswith("EService:Throttled: ") and abs(int(text.rpartition(" ")[2]) - time.time() - 5) < 2


def test_a_lockout_outlives_the_fault_for_its_time_and_that_key_only(sim: Simulator) -> None:
    sim.kraken_rate_limit = False
    sim.add_kraken_key("other-key", sim.kraken_keys.api_secret)
    fault = sim.faults.add(parse_fault_flag("lockout:600@kraken"))
    with httpx.Client(base_url=sim.url) as wire:
        kraken_post(sim, wire)
        sim.faults.remove(fault)
        refused = kraken_post(sim, wire).json()["error"][0]
        assert (refused["errorClass"], refused["errorMessage"]) == ("EGeneral", "Temporary lockout")
        assert sim.count("kraken", verdict="locked-out") == 1
        other = wire.post(
            "/0/private/GetCustodyBalance",
            content=b"{}",
            headers={"API-Key": "other-key", "API-Sign": "", "Content-Type": "application/json"},
        )
        assert other.json()["error"][0]["errorMessage"] == "Invalid nonce"  # checked as usual: not locked out
        now = time.time()
        sim.state.clock = lambda: now + 601
        assert kraken_post(sim, wire).json()["result"]
    assert sim.count("kraken", verdict="locked-out") == 1


def test_the_throttle_faults_are_krakens_only() -> None:
    for text in ("too-many-requests@intx", "throttled:5@intx", "lockout@intx"):
        with pytest.raises(ValueError, match="Kraken's"):
            parse_fault_flag(text)
    assert parse_fault_flag("throttled:30@prices").value == 30.0


def test_a_throttle_for_both_venues_leaves_intx_alone(sim: Simulator) -> None:
    sim.faults.set("too-many-requests")
    with httpx.Client(base_url=sim.url) as wire:
        answer = intx_get(sim, wire)
        assert answer.status_code == 200 and [p["portfolio_id"] for p in answer.json()] == list(sim.market.portfolios)
        assert kraken_post(sim, wire).json()["error"][0]["type"] == "TooManyRequests"
    assert sim.count("intx", "portfolios", "ok") == 1


# --- what our clients make of them ---------------------------------------------------------------------------


EXPECTED = {  # fault -> (kind, lowest retry_after, highest, the venue's words kept in the message)
    "too-many-requests": (ErrorKind.RATE_LIMIT, 10.0, 10.0, "EGeneral:Too many requests"),
    "throttled:42": (ErrorKind.RATE_LIMIT, 40.0, 43.0, "EService:Throttled: "),  # until the time it names
    "lockout": (ErrorKind.LOCKOUT, LOCKOUT, LOCKOUT, "EGeneral:Temporary lockout"),
}


@pytest.mark.parametrize("fault", list(EXPECTED))
async def test_the_custody_client_reads_each_throttle_and_waits_it_out(sim: Simulator, fault: str) -> None:
    """The error's kind and retry_after; a rate limit fills our model of Kraken's counter; the refresher's next
    call comes no sooner than retry_after, and nothing reaches Kraken before then."""
    kind, low, high, words = EXPECTED[fault]
    sim.faults.add(parse_fault_flag(f"{fault}@kraken/GetCustodyBalance"))  # the refresher's vault list goes through
    async with httpx.AsyncClient(base_url=sim.url) as web:
        client = kraken_for(sim, web)
        with pytest.raises(VenueError) as caught:
            await client.balances(vault(sim))
        assert caught.value.kind is kind and low <= (caught.value.retry_after or 0) <= high
        assert words in caught.value.message
        if kind is ErrorKind.RATE_LIMIT:
            assert client.delay_for(1) >= 10.0  # the counter is full: the next call waits a whole window
        fresh = kraken_for(sim, web)  # (the one above would first wait that window out)
        refresher = VenueRefresher(
            "Kraken", "kraken-custody", fresh, refresh_seconds=5, accounts=(vault(sim),), rng=random.Random(1)
        )
        snap = await refresher.refresh()
    failed = snap.error or next(a.error for a in snap.accounts if a.error)
    assert failed is not None and failed.kind is kind
    assert refresher.next_delay() >= low
    assert sim.count("kraken", "GetCustodyBalance") == 2  # ours above and the refresher's, none more


async def test_a_throttle_with_a_null_message_is_still_known_by_its_type(sim: Simulator) -> None:
    """The custody schema lets `errorMessage` be null: class and type still say it (a throttle's time is then
    unknown, and a rate limit's usual wait is taken)."""
    sim.kraken_null_messages = True
    async with httpx.AsyncClient(base_url=sim.url) as web:
        for fault, (kind, *_) in EXPECTED.items():
            sim.faults.clear()
            sim.faults.add(parse_fault_flag(f"{fault}@kraken"))
            with pytest.raises(VenueError) as caught:
                await kraken_for(sim, web).balances(vault(sim))  # a client each: a full counter would wait
            assert caught.value.kind is kind, fault
            assert caught.value.retry_after == (LOCKOUT if kind is ErrorKind.LOCKOUT else 10.0), fault


@pytest.mark.parametrize("fault", list(EXPECTED))
async def test_the_price_source_reads_each_public_throttle_and_waits_it_out(sim: Simulator, fault: str) -> None:
    kind, low, high, words = EXPECTED[fault]
    sim.faults.add(parse_fault_flag(f"{fault}@prices"))
    async with httpx.AsyncClient(base_url=sim.url) as web:
        refresher = PriceRefresher(KrakenPrices(web, AssetNames()), 60, rng=random.Random(3))
        book = await refresher.refresh({"BTC", "ETH"})
    assert book.error is not None and book.error.kind is kind and low <= (book.error.retry_after or 0) <= high
    assert words in book.error.message
    assert refresher.next_delay() >= low
    assert sim.count("prices") == 1


# --- the real program: one key's pause, kept for every process ------------------------------------------------


def once(config: Path) -> tuple[int, dict[str, Any]]:
    done = run_cli("--once", "--format", "json", "--config", str(config))
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout)


def kraken_error(out: dict[str, Any]) -> str:
    [venue] = [v for v in out["venues"] if v["kind"] == "kraken-custody"]
    return str(venue["error"] or next(a["error"] for a in venue["accounts"] if a["error"]))


@pytest.mark.parametrize(
    ("fault", "words", "held"), [("lockout", "locked out", 890), ("throttled:300", "throttled", 290)]
)
def test_once_after_a_lockout_or_a_long_throttle_leaves_the_key_alone(
    tmp_path: Path, fault: str, words: str, held: float
) -> None:
    """A --once meets the lockout (or a throttle 5 minutes long); the next --once, the fault gone, asks Kraken
    nothing on that key and says for how long it is held back. (A seed of its own: its key's pause is kept in
    the tests' state folder, and no other test polls that key.)"""
    seed = 2200 + len(fault)
    with Simulator(seed=seed) as sim:
        config = tmp_path / "sim.toml"
        sim.write_config(config)
        sim.faults.add(parse_fault_flag(f"{fault}@kraken"))
        code, first = once(config)
        assert code == 1 and words in kraken_error(first)
        calls = sim.count("kraken")
        sim.faults.clear()
        code, second = once(config)
        assert code == 1 and sim.count("kraken") == calls
        message = kraken_error(second)
        assert words in message and "held back for" in message
        assert held <= float(message.rpartition("held back for ")[2].split()[0]) <= held + 15


@pytest.mark.parametrize("venue", ["kraken", "intx"])
@pytest.mark.parametrize(("fault", "told"), [("429-retry-after:42", 42.0), ("429-retry-after:3", 3.0), ("429", None)])
async def test_an_http_429_is_waited_out_for_as_long_as_the_venue_says(
    sim: Simulator, web: httpx.AsyncClient, venue: str, fault: str, told: float | None
) -> None:
    """Whichever venue answers HTTP 429, its Retry-After is the wait (never our own guess over it); without one,
    Kraken's is a window of its counter (10 s), INTX's none of our making."""
    from tests.conftest import intx_for

    sim.faults.add(parse_fault_flag(f"{fault}@{venue}"))
    with pytest.raises(VenueError) as caught:
        if venue == "kraken":
            await kraken_for(sim, web).balances(vault(sim))
        else:
            await intx_for(sim, web).portfolios()
    assert caught.value.kind is ErrorKind.RATE_LIMIT and caught.value.status == 429
    expected = told if told is not None else 10.0 if venue == "kraken" else None
    assert caught.value.retry_after == expected, caught.value
