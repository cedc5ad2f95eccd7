"""The refresh engine: last good data, backoff, rate-limit schedule, suspicion of empty answers."""

from __future__ import annotations

import contextlib
import random
from decimal import Decimal

import httpx
import pytest

from tests.conftest import intx_for, kraken_for
from tui.engine.refresher import NOTE_MEMORY, VenueRefresher
from tui.engine.schedule import MAX_BACKOFF
from tui.money import Account, Balance
from tui.sim import Simulator
from tui.venues import http
from tui.venues.errors import ErrorKind


def refresher(
    client: object, *, kind: str = "coinbase-intx", accounts: tuple[str, ...] = (), seconds: float = 5.0
) -> VenueRefresher:
    return VenueRefresher(
        "v",
        kind,
        client,
        refresh_seconds=seconds,
        accounts=accounts,  # type: ignore[arg-type]
        rng=random.Random(1),
    )


async def test_failure_keeps_last_good_data_and_recovery_clears_it(sim: Simulator, web: httpx.AsyncClient) -> None:
    r = refresher(intx_for(sim, web))
    good = await r.refresh()
    assert good.ok and len(good.accounts) == 3
    sim.faults.set("http-5xx", venue="intx", endpoint="balances")
    bad = await r.refresh()
    assert not bad.ok and bad.failures == 1
    assert [a.balances for a in bad.accounts] == [a.balances for a in good.accounts]
    assert all(a.error is not None and a.error.kind is ErrorKind.SERVER for a in bad.accounts)
    assert bad.fetched_at == good.fetched_at
    sim.faults.clear()
    again = await r.refresh()
    assert again.ok and again.failures == 0


async def test_one_failing_account_does_not_spoil_the_others(sim: Simulator, web: httpx.AsyncClient) -> None:
    pids = list(sim.market.portfolios)
    r = refresher(intx_for(sim, web), accounts=(pids[0], "999999"))
    snap = await r.refresh()
    ok, missing = snap.accounts
    assert ok.ok and ok.name == "Main" and ok.balances
    assert missing.error is not None and missing.error.kind is ErrorKind.NOT_FOUND
    assert snap.failures == 0


async def test_backoff_grows_with_jitter_and_honours_retry_after(sim: Simulator, web: httpx.AsyncClient) -> None:
    r = refresher(intx_for(sim, web), seconds=5)
    await r.refresh()
    sim.faults.set("http-5xx", venue="intx")
    delays = []
    for _ in range(9):
        await r.refresh()
        delays.append(r.next_delay())
    assert 4 <= delays[0] <= 6 and 8 <= delays[1] <= 12 and 16 <= delays[2] <= 24
    assert max(delays) <= MAX_BACKOFF * 1.2 and delays[-1] >= MAX_BACKOFF * 0.8
    sim.faults.clear()
    sim.faults.set("429-retry-after", venue="intx", value=60)
    r2 = refresher(intx_for(sim, web), seconds=5)
    await r2.refresh()
    assert r2.next_delay() >= 60


async def test_a_long_period_does_not_delay_the_first_retry(sim: Simulator, web: httpx.AsyncClient) -> None:
    """A venue polled every minute whose first answer fails is tried again in about ten seconds, not a
    minute later with an empty pane."""
    sim.faults.set("http-5xx", venue="intx")
    r = refresher(intx_for(sim, web), seconds=60)
    delays = []
    for _ in range(3):
        await r.refresh()
        delays.append(r.next_delay())
    assert 8 <= delays[0] <= 12 and 16 <= delays[1] <= 24 and 32 <= delays[2] <= 48  # 10 s, doubling, ±20 %


async def test_backoff_is_jittered_so_many_monitors_do_not_retry_in_step(
    sim: Simulator, web: httpx.AsyncClient
) -> None:
    """Twenty monitors failing alike wait different times (the plain doubling would be 10 s for all),
    each within ±20 % of it."""
    sim.faults.set("http-5xx", venue="intx")
    delays = []
    for seed in range(20):
        r = VenueRefresher("v", "coinbase-intx", intx_for(sim, web), refresh_seconds=5, rng=random.Random(seed))
        await r.refresh()
        await r.refresh()
        delays.append(r.next_delay())
    assert all(8.0 <= d <= 12.0 for d in delays), delays
    assert len(set(delays)) == 20 and max(delays) - min(delays) > 2.0, delays


async def test_lockout_pauses_the_key_for_fifteen_minutes(sim: Simulator, web: httpx.AsyncClient) -> None:
    sim.faults.set("kraken-error", venue="kraken", value="EGeneral:Temporary lockout")
    r = refresher(kraken_for(sim, web), kind="kraken-custody")
    snap = await r.refresh()
    assert snap.error is not None and snap.error.kind is ErrorKind.LOCKOUT
    assert r.next_delay() >= 900
    assert sim.count("kraken") == 1


async def test_kraken_schedule_leaves_the_counter_room() -> None:
    with Simulator(seed=4, vaults=8) as sim:
        async with http.new_client(sim.url) as web:
            r = refresher(kraken_for(sim, web), kind="kraken-custody", seconds=5)
            snap = await r.refresh()
            assert snap.ok and len(snap.accounts) == 8
            assert 10 <= r.next_delay() <= 11  # 9 calls made: the next 8 must wait for a reset
            assert r.snapshot().note is not None and "rate limit" in r.snapshot().note
        assert sim.count("kraken", verdict="rate-limited") == 0


async def test_an_empty_answer_is_not_taken_as_zero_at_once(sim: Simulator, web: httpx.AsyncClient) -> None:
    r = refresher(kraken_for(sim, web), kind="kraken-custody", seconds=1)
    sim.kraken_rate_limit = False
    first = await r.refresh()
    sim.faults.set("empty", venue="kraken", endpoint="GetCustodyBalance")
    second = await r.refresh()
    assert [a.balances for a in second.accounts] == [a.balances for a in first.accounts]
    assert all(a.error is not None and "not taken as zero" in a.error.message for a in second.accounts)
    await r.refresh()
    third = await r.refresh()
    assert all(a.balances == () and a.ok for a in third.accounts)


@pytest.mark.parametrize("kind", ["kraken-custody", "coinbase-intx"])
async def test_discovery_failure_without_configured_accounts_is_a_venue_error(
    sim: Simulator, web: httpx.AsyncClient, kind: str
) -> None:
    venue = "kraken" if kind == "kraken-custody" else "intx"
    sim.faults.set("http-5xx", venue=venue)
    client = kraken_for(sim, web) if venue == "kraken" else intx_for(sim, web)
    r = refresher(client, kind=kind)
    snap = await r.refresh()
    assert snap.error is not None and snap.accounts == () and not snap.ok
    snap = await r.refresh()  # still failing: still an error, never "ok with no accounts"
    assert snap.error is not None and not snap.ok
    sim.faults.clear()
    snap = await r.refresh()
    assert snap.ok and len(snap.accounts) == 3 and all(a.balances for a in snap.accounts)


class _Paced:
    """A venue whose rate limit holds back every other refresh (as Kraken's counter does a few vaults')."""

    def __init__(self, delays: list[float]) -> None:
        self.delays = delays

    async def discover(self, *, fresh: bool = False) -> list[object]:
        return []

    def delay_for(self, calls: int) -> float:
        return self.delays.pop(0)

    def note(self) -> str | None:
        return None

    def turn(self, *, urgent: bool) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()


async def test_a_rate_limit_note_stays_while_it_holds_back_every_other_refresh() -> None:
    """Held back, let through, held back...: the note stays (it came and went each refresh, and each time the
    pane's header gained or lost a line); after NOTE_MEMORY refreshes at the configured period it goes."""
    client = _Paced([0.0, 10.0, 0.0, 10.0, 0.0, 10.0, *([0.0] * NOTE_MEMORY)])
    r = VenueRefresher("v", "kraken-custody", client, refresh_seconds=5, clock=lambda: 0.0)  # type: ignore[arg-type]
    notes = []
    while client.delays:
        await r.refresh()
        r.next_delay()
        notes.append(r.snapshot().note)
    assert notes[0] is None  # never held back yet
    assert all(n is not None and "10.0 s" in n and "rate limit" in n for n in notes[1 : 6 + NOTE_MEMORY - 1]), notes
    assert notes[-1] is None, notes


class _Answers:
    """A venue with one account whose answers are given in turn (each a fresh list of fresh objects, as parsed)."""

    def __init__(self, answers: list[list[Balance]]) -> None:
        self.answers = answers

    async def discover(self, *, fresh: bool = False) -> list[Account]:
        return [Account("A", "Main")]

    async def fetch(self, account_id: str) -> list[Balance]:
        return self.answers.pop(0)

    def delay_for(self, calls: int) -> float:
        return 0.0

    def note(self) -> str | None:
        return None

    def turn(self, *, urgent: bool) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()


def _balance(asset: str, amount: str, label: str = "x") -> Balance:
    return Balance(asset, {"balance": Decimal(amount)}, {"asset_id": label})


async def test_a_balance_that_did_not_move_stays_the_same_object() -> None:
    """Issue 24 (RSS): an answer identical to the last keeps the last objects (the tuple too when nothing moved),
    so 2,000 balances are not copied afresh every refresh; what moved, or shows other digits, is the new one."""
    answers = [
        [_balance("BTC", "1.5"), _balance("ETH", "2")],
        [_balance("BTC", "1.5"), _balance("ETH", "2")],
        [_balance("BTC", "1.50"), _balance("ETH", "2"), _balance("SOL", "3")],
        [_balance("BTC", "1.50"), _balance("ETH", "2", label="y"), _balance("SOL", "3")],
    ]
    r = VenueRefresher("v", "coinbase-intx", _Answers(answers), refresh_seconds=5)  # type: ignore[arg-type]
    first = (await r.refresh()).accounts[0].balances
    second = (await r.refresh()).accounts[0].balances
    assert second is first
    third = (await r.refresh()).accounts[0].balances
    assert third[1] is first[1]  # ETH unchanged
    assert third[0] is not first[0] and str(third[0].amounts["balance"]) == "1.50"  # other digits: the new one
    assert [b.asset for b in third] == ["BTC", "ETH", "SOL"]
    fourth = (await r.refresh()).accounts[0].balances
    assert fourth[0] is third[0] and fourth[2] is third[2]
    assert fourth[1] is not third[1] and fourth[1].labels == {"asset_id": "y"}  # a label moved: the new one
