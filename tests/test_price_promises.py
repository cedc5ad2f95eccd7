"""Promises of the price source, the price book and the money helpers that no other test held them to
(issue 22): how often Kraken's pair list is read, what is never asked, what a failure keeps, when new assets
may wake the source, the plainest pair, an amount's length bound and the screen's rounding. Each test here
failed against a plausible bug planted in a scratch copy.

Requests are counted by the simulator (over HTTP on 127.0.0.1); expected figures are worked out here."""

from __future__ import annotations

import asyncio
import decimal
import json
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from tui.assets import AssetNames
from tui.config import parse
from tui.engine.prices import PriceBook, PriceRefresher
from tui.money import AmountError, Balance, dollars, parse_amount
from tui.monitor.monitor import Monitor
from tui.monitor.valuation import appraise
from tui.sim import Simulator
from tui.snapshot.model import AccountSnapshot, VenueSnapshot
from tui.ui.rows import VALUE, Baseline, build_rows
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.kraken_prices import KrakenPrices, Price, usd_pairs

MINUTE, HOUR = 60.0, 3600.0


class Clock:
    """The source's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- how often the pair list is read ------------------------------------------------------------------------


async def test_the_pair_list_is_read_once_then_only_when_due(sim: Simulator, web: httpx.AsyncClient) -> None:
    """AssetPairs is read at the first fetch; an asset with no USD market (NOPAIR) sends the source back to it
    at most every five minutes, not at every refresh; with every asset known, only after six hours."""
    clock = Clock()
    source = KrakenPrices(web, AssetNames(), clock=clock)

    async def fetch_at(offset: float, assets: set[str]) -> None:
        clock.now = 1000.0 + offset
        await source.fetch(assets)

    for step in range(30):  # a refresh every 10 s for five minutes, NOPAIR held throughout
        await fetch_at(step * 10.0, {"BTC", "NOPAIR"})
    assert sim.count("prices", "AssetPairs") == 1
    assert sim.count("prices", "Ticker") == 30
    await fetch_at(301, {"BTC", "NOPAIR"})  # five minutes on, NOPAIR may have been listed since
    assert sim.count("prices", "AssetPairs") == 2
    for later in (310.0, 301 + 6 * HOUR - 1):  # BTC alone: its pair is known, nothing sends it back
        await fetch_at(later, {"BTC"})
    assert sim.count("prices", "AssetPairs") == 2
    await fetch_at(301 + 6 * HOUR + 1, {"BTC"})  # six hours after the last read: read afresh
    assert sim.count("prices", "AssetPairs") == 3


async def test_dollars_are_never_asked_for(sim: Simulator, web: httpx.AsyncClient) -> None:
    """USD is exactly 1: a firm holding only dollars makes no request at all, and USD is never listed as an
    asset without a market (it is the market's quote)."""
    refresher = PriceRefresher(KrakenPrices(web, AssetNames()), MINUTE)
    only_usd = await refresher.refresh({"USD"})
    assert sim.count("prices") == 0
    assert only_usd.error is None and only_usd.unpriceable == frozenset()
    both = await refresher.refresh({"USD", "BTC"})
    assert "USD" not in both.unpriceable and set(both.prices) == {"BTC"}
    assert sim.count("prices", "Ticker") == 1 and both.price("USD", both.fetched_at or 0.0) == Price(Decimal(1), "")


# --- what a failure keeps -------------------------------------------------------------------------------------


async def test_a_failure_keeps_what_has_no_market_as_well_as_the_prices(sim: Simulator, web: httpx.AsyncClient) -> None:
    """After a failed fetch the book still knows NOPAIR has no USD market: a venue holding it does not count
    as a new asset (which would wake the failing source), and the contract's `unpriceable` keeps it."""
    refresher = PriceRefresher(KrakenPrices(web, AssetNames()), MINUTE)
    good = await refresher.refresh({"BTC", "NOPAIR"})
    assert good.unpriceable == frozenset({"NOPAIR"})  # the premise
    sim.faults.set("http-5xx", venue="prices")
    bad = await refresher.refresh({"BTC", "NOPAIR"})
    assert bad.error is not None
    assert bad.unpriceable == frozenset({"NOPAIR"}) and bad.prices == good.prices
    assert not refresher.wants({"BTC", "NOPAIR"})


async def test_new_assets_wake_the_source_only_while_it_succeeds(sim: Simulator, web: httpx.AsyncClient) -> None:
    """A new holding asks for prices soon, unless the source is failing: then its backoff decides (else every
    venue answer with a new asset would defeat the backoff)."""
    refresher = PriceRefresher(KrakenPrices(web, AssetNames()), MINUTE)
    await refresher.refresh({"BTC"})
    refresher.refresh_soon()
    assert refresher.wake.is_set()
    refresher.wake.clear()
    sim.faults.set("http-5xx", venue="prices")
    await refresher.refresh({"BTC"})
    assert refresher.failures == 1  # the premise
    refresher.refresh_soon()
    assert not refresher.wake.is_set()


async def test_woken_early_the_source_waits_its_minimum_gap(sim: Simulator, web: httpx.AsyncClient) -> None:
    """Assets appearing right after a fetch wake the source, but the next fetch starts no sooner than
    `min_gap` after the last one began (however many new assets appear)."""
    source = KrakenPrices(web, AssetNames())
    refresher = PriceRefresher(source, HOUR)
    refresher.min_gap = 0.3
    starts: list[float] = []
    real_fetch = source.fetch

    async def fetch(assets: Any) -> Any:
        starts.append(time.monotonic())
        return await real_fetch(assets)

    source.fetch = fetch  # type: ignore[method-assign]
    held = {"BTC"}
    books: list[PriceBook] = []
    running = asyncio.ensure_future(refresher.run(lambda: set(held), books.append))
    try:
        while not books:
            await asyncio.sleep(0.01)
        held.add("ETH")
        refresher.refresh_soon()
        while len(books) < 2:
            await asyncio.sleep(0.01)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert starts[1] - starts[0] >= 0.3
    assert "ETH" in books[1].prices


# --- which pair prices an asset ---------------------------------------------------------------------------------


def test_the_plainest_usd_pair_prices_an_asset() -> None:
    """Several USD markets for one asset: one without a suffix beats one with ("XBTUSD.M"), then the
    shortest name, then the first alphabetically."""
    pair = {"base": "XXBT", "quote": "ZUSD"}
    answer = {"XBTUSD.M": pair, "XXBTZUSD": pair, "XBTUSD": pair, "ETHUSD": {"base": "XETH", "quote": "ZUSD"}}
    answer |= {"ETHUSDX": {"base": "XETH", "quote": "USD"}, "ETHUSA": {"base": "XETH", "quote": "USD"}}
    assert usd_pairs(answer, AssetNames()) == {"BTC": "XBTUSD", "ETH": "ETHUSA"}


# --- the totals pane's value of an asset nobody can price --------------------------------------------------------


def test_an_unpriced_asset_held_at_zero_has_no_value_on_the_totals_pane() -> None:
    """A vault lists NOPAIR at 0 (no USD market): it is not "unpriced" (nothing is held), but its worth is
    unknown, not $0.00: the totals pane leaves its value blank, while BTC's is 2 × the price."""
    fields = {"hold_trade": Decimal(0)}
    balances = (
        Balance("NOPAIR", {"balance": Decimal(0), **fields, "available": Decimal(0)}),
        Balance("XBT", {"balance": Decimal(2), **fields, "available": Decimal(2)}),
    )
    vault = VenueSnapshot(
        "Kraken", "kraken-custody", (AccountSnapshot("V1", "Vault", balances, 0.0),), fetched_at=0.0, period=5.0
    )
    book = PriceBook("kraken", {"BTC": Price(Decimal("97000.5"), "XXBTZUSD")}, 0.0, None, frozenset({"NOPAIR"}))
    worth = appraise([vault], book, AssetNames(), 0.0)
    assert worth.unpriced == ()  # the premise: nothing held without a price
    monitor = Monitor(parse('[[venue]]\nkind = "kraken-custody"\nname = "Kraken"\napi_key = "k"\napi_secret = "s"\n'))
    monitor.take_prices(book, 0.0)
    outcome = monitor.take(vault, 0.0)
    assert outcome.totals is not None
    rows = {r.asset: r for r in build_rows(outcome.totals, Baseline(), worth=outcome.worth)}
    assert rows["BTC"].values.get(VALUE.key) == Decimal("194001.0")
    assert rows["NOPAIR"].values.get(VALUE.key) is None


# --- money: an amount's length, and the screen's rounding ---------------------------------------------------------


def test_an_amount_longer_than_128_characters_is_refused_whatever_its_value() -> None:
    """Every read is bounded: 200 leading zeros are a valid decimal (1), but not an amount a venue sends."""
    assert parse_amount("0" * 127 + "1") == Decimal(1)
    with pytest.raises(AmountError):
        parse_amount("0" * 128 + "1")
    with pytest.raises(AmountError):
        parse_amount("1" + " " * 200)


def _cents_by_hand(value: Decimal) -> str:
    """Half up to the cent, thousands separated: worked out on the digits, with no decimal context at all."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    scaled = int("".join(map(str, digits)) or "0") * 10 ** max(exponent + 2, 0)  # in cents, before rounding
    dropped = -(exponent + 2) if exponent + 2 < 0 else 0
    cents, rest = divmod(scaled, 10**dropped) if dropped else (scaled, 0)
    if dropped and rest * 2 >= 10**dropped:
        cents += 1
    whole, frac = divmod(cents, 100)
    text = f"{whole:,}.{frac:02d}"
    return ("-" if sign else "") + text


def _a_tie(whole: int, places: int) -> Decimal:
    """An amount ending in a half cent (…5 at the third place), where half up and half even differ."""
    return Decimal(whole * 10 ** (3 - places) + 5).scaleb(-3) if whole >= 0 else Decimal(whole * 1000 - 5).scaleb(-3)


@settings(max_examples=300, deadline=None)
@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=None, min_value=-(10**40), max_value=10**40)
    | st.builds(_a_tie, st.integers(-(10**38), 10**38), st.integers(0, 2))
)
def test_the_screens_dollars_round_half_up_to_the_cent_at_any_size(value: Decimal) -> None:
    """The screen's only rounding: half up (0.125 → 0.13, never banker's 0.12), at any number of digits
    (a 40-digit worth is not cut to the default context's 28)."""
    with decimal.localcontext(decimal.Context(prec=200)):
        value = +value
    assert dollars(value) == _cents_by_hand(value)


# --- when a failing price source is tried again ---------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    period=st.sampled_from([1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0]),
    failures=st.integers(0, 30),
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(list(ErrorKind)),
    retry_after=st.none() | st.floats(0, 3600),
)
def test_a_failing_source_is_tried_again_as_the_readme_says(
    period: float, failures: int, seed: int, kind: ErrorKind, retry_after: float | None
) -> None:
    """README: prices that fail are tried again after about 10 s (the period if shorter), then 20, 40… up to
    5 minutes, jittered ±20 %; a failure retrying cannot fix waits at least a minute, and never sooner than
    the source's own retry-after. Without failures the next fetch is a period away."""
    refresher = PriceRefresher(KrakenPrices(None, AssetNames()), period, rng=random.Random(seed))  # type: ignore[arg-type]
    error = VenueError(kind, "failing", retry_after=retry_after)
    refresher.failures = failures
    refresher.book = PriceBook("kraken", {}, None, error if failures else None, period=period)
    delay = refresher.next_delay()
    if failures == 0:
        assert delay == period
        return
    plain = min(min(period, 10.0) * 2 ** (failures - 1), 300.0)
    low, high = 0.8 * plain, 1.2 * plain
    if not error.retryable:
        low, high = max(low, 60.0), max(high, 60.0)
    if retry_after is not None:
        low, high = max(low, retry_after), max(high, retry_after)
    assert low - 1e-9 <= delay <= high + 1e-9, (plain, delay)


def test_prices_are_stale_after_three_periods_and_gone_after_fifteen() -> None:
    """README: prices keep their last values with their age, yellow after three periods, then none at all
    after fifteen — "after": at exactly three periods they are not yet stale, at fifteen still usable."""
    book = PriceBook("kraken", {"BTC": Price(Decimal(5), "XXBTZUSD")}, 1000.0, period=60.0)
    assert not book.stale(1000.0 + 180) and book.stale(1000.0 + 180.5)
    assert book.usable(1000.0 + 900) and not book.usable(1000.0 + 900.5)
    assert book.price("BTC", 1000.0 + 900) == Price(Decimal(5), "XXBTZUSD")
    assert book.price("BTC", 1000.0 + 900.5) is None and book.price("USD", 1000.0 + 900.5) is None


@pytest.mark.parametrize("last", ["-0.01", "-97000", "NaN", "abc"])
def test_a_ticker_price_below_zero_or_not_a_number_is_a_bad_answer(last: str) -> None:
    """A last trade below zero is no price: the whole answer is refused (the book keeps its last good prices)
    rather than a holding valued negative."""
    from tui.venues.kraken_prices import last_trades

    with pytest.raises(VenueError) as caught:
        last_trades({"XXBTZUSD": {"c": [last, "1"]}})
    assert caught.value.kind is ErrorKind.BAD_RESPONSE and "XXBTZUSD" in caught.value.message


# --- what valuation asks the price source for ---------------------------------------------------------------------


def test_an_asset_only_borrowed_is_asked_for_and_its_loan_valued(sim: Simulator, sim_config: Path) -> None:
    """ZZZ is held nowhere, only owed at INTX (quantity 0, loan 4) and has a USD market at 2.5: its price is
    asked for like any holding's, the loan is worth 10 (4 × 2.5) and in usd_loans, and ZZZ is not unpriced."""
    sim.market.set_price("ZZZ", "2.5")
    portfolio = next(iter(sim.market.portfolios))
    sim.market.set_intx(portfolio, "ZZZ", quantity="0", loan="4")
    done = run_cli("--once", "--format", "json", "--config", str(sim_config))
    out = json.loads(done.stdout)
    intx = next(v for v in out["venues"] if v["kind"] == "coinbase-intx")
    owed = next(b for a in intx["accounts"] if a["id"] == portfolio for b in a["balances"] if b["asset"] == "ZZZ")
    assert Decimal(owed["usd_price"]) == Decimal("2.5") and owed["loan_usd_value"] == "10"
    assert Decimal(owed["usd_value"]) == 0
    assert "ZZZ" not in out["unpriced"]
    loans = [Decimal(b["loan_usd_value"]) for a in intx["accounts"] for b in a["balances"] if b.get("loan_usd_value")]
    assert Decimal(out["usd_loans"]) == sum(loans, Decimal(0)) and Decimal(10) in loans


def test_each_asset_is_asked_for_once_by_its_canonical_name() -> None:
    """BTC held as XBT and XXBT at Kraken and as BTC at INTX, USD as ZUSD, NOPAIR only owed: the price source
    is asked for BTC, USD and NOPAIR, each once."""
    from tui.monitor.valuation import held_assets

    zero = {"hold_trade": Decimal(0)}
    kraken = VenueSnapshot(
        "Kraken",
        "kraken-custody",
        tuple(
            AccountSnapshot(f"V{i}", "v", (Balance(a, {"balance": Decimal(1), **zero, "available": Decimal(1)}),), 0.0)
            for i, a in enumerate(("XBT", "XXBT", "ZUSD"))
        ),
    )
    intx = VenueSnapshot(
        "INTX",
        "coinbase-intx",
        (
            AccountSnapshot(
                "P1",
                "Main",
                (
                    Balance("BTC", {"quantity": Decimal(1), "loan": Decimal(0)}),
                    Balance("NOPAIR", {"quantity": Decimal(0), "loan": Decimal("12.5")}),
                ),
                0.0,
            ),
        ),
    )
    assert held_assets([kraken, intx], AssetNames()) == {"BTC", "USD", "NOPAIR"}


# --- moves between two books: a deposit is a quantity move ----------------------------------------------------------


def _book_at(at: float, eth: str | None, eth_price: str) -> Any:
    from tui.monitor.book import Book
    from tui.snapshot.model import Snapshot

    zero = {"hold_trade": Decimal(0)}
    held = [Balance("XBT", {"balance": Decimal(1), **zero, "available": Decimal(1)})]
    if eth is not None:
        held.append(Balance("ETH", {"balance": Decimal(eth), **zero, "available": Decimal(eth)}))
    vault = VenueSnapshot(
        "Kraken", "kraken-custody", (AccountSnapshot("V1", "Vault", tuple(held), at),), fetched_at=at, period=5.0
    )
    prices = {"BTC": Price(Decimal(100), "XXBTZUSD"), "ETH": Price(Decimal(eth_price), "XETHZUSD")}
    book = PriceBook("kraken", prices, at, period=60.0)
    worth = appraise([vault], book, AssetNames(), at)
    return Book(at, Snapshot((vault,), at, worth), {"Kraken": at}, at, 0.0, 0.0)


def test_an_asset_deposited_between_two_books_is_a_quantity_move_at_the_old_price() -> None:
    """3 ETH arrive between t=0 (ETH at 10, none held) and t=60 (ETH at 12): the change in value, 36, is a
    quantity move of 3 × 10 = 30 at the price the first book had and a price move of 3 × (12 − 10) = 6 —
    not 36 of quantity (the new price) and none of price."""
    from tui.monitor.moves import moves

    found = moves(_book_at(0.0, None, "10"), _book_at(60.0, "3", "12"), AssetNames())
    (eth,) = [m for m in found.balances if m.asset == "ETH"]
    assert eth.value.before is None and eth.value.after == Decimal(36)
    assert (eth.value.quantity_move, eth.value.price_move) == (Decimal(30), Decimal(6))
    assert (found.holdings.quantity_move, found.holdings.price_move) == (Decimal(30), Decimal(6))
