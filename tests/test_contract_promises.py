"""What an attached viewer rebuilds from the contract JSON (`/snapshot`): the state it needs to judge age and
staleness exactly as the poller does (issue 22). A snapshot is built here by hand, written as the contract,
sent through JSON text, and read back; each expectation is the hand-built input, never the code's output."""

from __future__ import annotations

from decimal import Decimal

from tui.assets import AssetNames
from tui.engine.prices import PriceBook
from tui.money import Balance, loads
from tui.monitor.totals import is_stale
from tui.monitor.valuation import appraise
from tui.snapshot.contract import from_contract, to_contract
from tui.snapshot.model import AccountSnapshot, Snapshot, VenueSnapshot
from tui.untrusted import json_text
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.kraken_prices import Price

NOW = 1_780_000_000.0  # whole seconds: the contract's times are to the second


def _served() -> Snapshot:
    """Kraken: vault V1 answered 30 s ago, vault V2 failed (HTTP 503) and the venue counts 2 failures; BTC
    priced, NOPAIR held without a USD market (GONE too, but no longer held); prices fetched 40 s ago on a 10 s
    period (stale after 30 s)."""
    fields = {"hold_trade": Decimal(0)}
    good = AccountSnapshot(
        "V1",
        "Treasury",
        (Balance("XBT", {"balance": Decimal("2.5"), **fields, "available": Decimal("2.5")}),),
        NOW - 30,
    )
    failing = AccountSnapshot(
        "V2",
        "Cold",
        (Balance("NOPAIR", {"balance": Decimal(7), **fields, "available": Decimal(7)}),),
        NOW - 300,
        error=VenueError(ErrorKind.SERVER, "HTTP 503 from the venue"),
    )
    vault = VenueSnapshot("Kraken", "kraken-custody", (good, failing), fetched_at=NOW - 30, failures=2, period=5.0)
    book = PriceBook(
        "kraken",
        {"BTC": Price(Decimal("97000.25"), "XXBTZUSD")},
        NOW - 40,
        None,
        frozenset({"NOPAIR", "GONE"}),
        period=10.0,
    )
    worth = appraise([vault], book, AssetNames(), NOW)
    return Snapshot((vault,), NOW, worth)


def test_a_viewer_rebuilds_the_prices_period_what_has_no_market_and_each_failure() -> None:
    served = to_contract(_served())
    assert served["unpriced"] == ["NOPAIR"]  # what is held without a price, not every asset without a market
    assert served["prices"]["unpriceable"] == ["GONE", "NOPAIR"]
    seen = from_contract(loads(json_text(served)))
    (vault,) = seen.venues
    assert vault.failures == 2 and is_stale(vault, NOW)  # the poller's own view: two failures in a row
    v1, v2 = vault.accounts
    assert v1.error is None and v2.error is not None
    assert v2.error.kind is ErrorKind.SERVER and v2.error.message == "HTTP 503 from the venue"
    worth = seen.appraisal
    assert worth is not None and worth.book is not None
    assert worth.book.period == 10.0  # prices 40 s old on a 10 s period: stale, as the poller says
    assert worth.stale and worth.book.stale(NOW)
    assert worth.book.unpriceable == frozenset({"NOPAIR", "GONE"})
    assert worth.unpriced == ("NOPAIR",)
    assert worth.firm.gross == Decimal("242500.625")  # 2.5 × 97000.25, by hand; NOPAIR not counted
