"""Alerts on what it is worth: a balance's usd_value, a venue's usd_total ("page me if what we hold at INTX
drops below $10M"), and the firm's net across venues; they fire and clear as prices (or balances) move,
and stale prices never clear them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tui.config import parse
from tui.engine.prices import PriceBook
from tui.money import Balance
from tui.monitor.monitor import Monitor
from tui.snapshot.model import AccountSnapshot, VenueSnapshot
from tui.venues.kraken_prices import Price

INTX_VENUE = """
[[venue]]
kind = "coinbase-intx"
name = "INTX"
api_key = { env = "K" }
api_secret = { env = "S" }
passphrase = { env = "P" }
"""
KRAKEN_VENUE = """
[[venue]]
kind = "kraken-custody"
name = "Kraken"
api_key = { env = "K2" }
api_secret = { env = "S2" }
"""
VENUES = INTX_VENUE + KRAKEN_VENUE

CONFIG = (
    VENUES
    + """
[[alert]]
name = "INTX under $10M"
venue = "INTX"
field = "usd_total"
below = "10000000"

[[alert]]
name = "BTC position over $5M"
venue = "INTX"
asset = "BTC"
field = "usd_value"
above = "5000000"

[[alert]]
name = "firm net under $12M"
venue = "totals"
field = "usd_net"
below = "12000000"
"""
)


def intx(at: float, btc: str = "100", loan: str = "0") -> VenueSnapshot:
    balances = (
        Balance("BTC", {"quantity": Decimal(btc), "loan": Decimal(loan)}),
        Balance("USDC", {"quantity": Decimal("4000000"), "loan": Decimal(0)}),
    )
    return VenueSnapshot(
        "INTX", "coinbase-intx", (AccountSnapshot("p-1-0", "Main", balances, at),), fetched_at=at, period=5.0
    )


def kraken(at: float) -> VenueSnapshot:
    balances = (Balance("XBT", {"balance": Decimal("10"), "hold_trade": Decimal(0), "available": Decimal("10")}),)
    return VenueSnapshot(
        "Kraken", "kraken-custody", (AccountSnapshot("V1", "Vault", balances, at),), fetched_at=at, period=5.0
    )


def book(at: float, btc: str, error: bool = False) -> PriceBook:
    from tui.venues.errors import ErrorKind, VenueError

    prices = {"BTC": Price(Decimal(btc), "XXBTZUSD"), "USDC": Price(Decimal("1"), "USDCUSD")}
    failure = VenueError(ErrorKind.SERVER, "Ticker: Kraken answered HTTP 503") if error else None
    return PriceBook("kraken", prices, at, failure, period=60.0)


def active(monitor: Monitor) -> set[str]:
    return {alert.rule.name for alert in monitor.alerts.active.values()}


def test_value_rules_fire_and_clear_as_prices_move() -> None:
    monitor = Monitor(parse(CONFIG))
    monitor.take(intx(0.0), 0.0)
    monitor.take(kraken(0.0), 0.0)
    # BTC at $90,000: INTX holds 100 BTC ($9M) + 4M USDC = $13M; the firm 110 BTC + 4M = $13.9M
    events = monitor.take_prices(book(1.0, "90000"), 1.0).events
    assert [e.alert.rule.name for e in events if e.fired] == ["BTC position over $5M"]
    # BTC falls to $50,000: INTX is worth 5M + 4M = $9M, the firm 5.5M + 4M = $9.5M
    events = monitor.take_prices(book(2.0, "50000"), 2.0).events
    fired = {e.alert.rule.name for e in events if e.fired}
    cleared = {e.alert.rule.name for e in events if not e.fired}
    assert fired == {"INTX under $10M", "firm net under $12M"} and cleared == {"BTC position over $5M"}
    (intx_alert,) = [a for a in monitor.alerts.active.values() if a.rule.name == "INTX under $10M"]
    assert intx_alert.value == Decimal("9000000") and intx_alert.target.label() == "INTX (all accounts)"
    # the balances move instead: 140 BTC at $50,000 = $7M + 4M = $11M at INTX; the firm $11.5M
    events = monitor.take(intx(3.0, btc="140"), 3.0).events
    assert {e.alert.rule.name for e in events if not e.fired} == {"INTX under $10M"}
    assert {e.alert.rule.name for e in events if e.fired} == {"BTC position over $5M"}
    assert active(monitor) == {"BTC position over $5M", "firm net under $12M"}


def test_a_loan_lowers_the_net_not_the_gross() -> None:
    monitor = Monitor(parse(CONFIG))
    monitor.take(kraken(0.0), 0.0)
    monitor.take(intx(0.0, btc="100", loan="50"), 0.0)
    outcome = monitor.take_prices(book(1.0, "100000"), 1.0)
    worth = outcome.worth
    assert worth is not None
    assert worth.firm.gross == Decimal("15000000")  # 110 BTC × 100,000 + 4,000,000
    assert worth.firm.loans == Decimal("5000000") and worth.firm.net == Decimal("10000000")
    assert active(monitor) == {"BTC position over $5M", "firm net under $12M"}


def test_stale_prices_never_clear_a_value_alert() -> None:
    monitor = Monitor(parse(CONFIG))
    monitor.take(intx(0.0), 0.0)
    monitor.take(kraken(0.0), 0.0)
    monitor.take_prices(book(1.0, "50000"), 1.0)
    assert "INTX under $10M" in active(monitor)
    # ten minutes on, the balances are fresh but the source has failed since: its last prices are stale
    monitor.take(intx(600.0), 600.0)
    monitor.take(kraken(600.0), 600.0)
    # prices that would say INTX is fine (BTC at $90,000), but as old as the last good answer
    stale = PriceBook("kraken", book(1.0, "90000").prices, 1.0, book(0, "1", error=True).error, period=60.0)
    events = monitor.take_prices(stale, 600.0).events
    assert not [e for e in events if not e.fired] and "INTX under $10M" in active(monitor)
    (held,) = [a for a in monitor.alerts.active.values() if a.rule.name == "INTX under $10M"]
    assert held.stale_age == 599.0  # the balances are fresh: the prices are what is old
    # and a balance's value crossing its line on those prices fires, marked as resting on stale data
    (raised,) = [e.alert for e in events if e.fired and e.alert.rule.name == "BTC position over $5M"]
    assert raised.stale_age == 599.0 and raised.to_json()["stale"] is True


def test_prices_are_recorded_when_they_move_so_values_can_be_recomputed(tmp_path: Path) -> None:
    import sqlite3

    from tui.monitor.history import History

    path = tmp_path / "history.sqlite3"
    monitor = Monitor(parse(CONFIG), History(path))
    monitor.take(intx(0.0), 0.0)
    monitor.take_prices(book(10.0, "90000"), 10.0)
    monitor.take_prices(book(70.0, "90000"), 70.0)  # nothing moved: nothing recorded
    monitor.take_prices(book(130.0, "91000.5"), 130.0)
    assert monitor.history is not None
    monitor.history.flush()
    monitor.history.close()
    with sqlite3.connect(path) as db:
        query = "SELECT at, asset, field, value FROM changes WHERE venue = 'prices' ORDER BY rowid"
        rows = db.execute(query).fetchall()
        quantity = db.execute("SELECT value FROM changes WHERE asset = 'BTC' AND field = 'quantity'").fetchone()
    assert rows == [
        (10.0, "BTC", "usd_price", "90000"),
        (10.0, "USDC", "usd_price", "1"),
        (130.0, "BTC", "usd_price", "91000.5"),
    ]
    assert Decimal(quantity[0]) * Decimal(rows[-1][3]) == Decimal("9100050")  # recomputed from the history


UNPRICED_RULES = (
    KRAKEN_VENUE
    + """
[[alert]]
name = "no NOPAIR left"
venue = "totals"
asset = "NOPAIR"
field = "usd_value"
below = "1"

[[alert]]
name = "firm under $1"
venue = "totals"
field = "usd_total"
below = "1"
"""
)


def test_a_value_rule_never_fires_on_a_value_nobody_knows() -> None:
    """5,000 NOPAIR without a USD market: its total has no value (not $0), so "below $1" stays quiet; and with
    prices too old to use, the firm's worth is unknown, not $0, so "firm under $1" stays quiet too."""
    holding = Balance("NOPAIR", {"balance": Decimal(5000), "hold_trade": Decimal(0), "available": Decimal(5000)})
    btc = Balance("XBT", {"balance": Decimal(2), "hold_trade": Decimal(0), "available": Decimal(2)})
    vault = VenueSnapshot(
        "Kraken", "kraken-custody", (AccountSnapshot("V1", "Vault", (holding, btc), 0.0),), fetched_at=0.0, period=5.0
    )
    monitor = Monitor(parse(UNPRICED_RULES))
    monitor.take(vault, 0.0)
    prices = PriceBook("kraken", book(0.0, "100").prices, 0.0, unpriceable=frozenset({"NOPAIR"}), period=60.0)
    outcome = monitor.take_prices(prices, 0.0)
    assert outcome.worth is not None and outcome.worth.unpriced == ("NOPAIR",)  # the premise: NOPAIR has no value
    assert active(monitor) == set()
    # an hour on, the same prices are too old to use (15 periods of 60 s): nothing is worth anything known
    later = VenueSnapshot(
        "Kraken",
        "kraken-custody",
        (AccountSnapshot("V1", "Vault", (holding, btc), 3600.0),),
        fetched_at=3600.0,
        period=5.0,
    )
    monitor.take(later, 3600.0)
    outcome = monitor.take_prices(prices, 3600.0)
    assert outcome.worth is not None and not outcome.worth.priced  # the premise: no usable prices
    assert active(monitor) == set()


def test_a_move_is_measured_between_values_from_fresh_data() -> None:
    """A value read on stale prices is judged (it may fire, marked stale) but never remembered as where a
    move started or ended: the move is measured from the last value fresh data gave (README)."""
    rule = """
[[alert]]
name = "BTC position moved $1M"
venue = "INTX"
asset = "BTC"
field = "usd_value"
change = "1000000"
window = "60s"
"""
    monitor = Monitor(parse(VENUES + rule))
    monitor.take_prices(book(0.0, "50000"), 0.0)
    monitor.take(intx(0.0, btc="100"), 0.0)  # $5M, fresh
    assert not active(monitor)
    # 200 s on the source has failed since its answer at 0 s (stale after three 60 s periods); 50 BTC came in
    stale = PriceBook("kraken", book(0.0, "50000").prices, 0.0, book(0, "1", error=True).error, period=60.0)
    monitor.take_prices(stale, 200.0)
    (raised,) = [e.alert for e in monitor.take(intx(200.0, btc="150"), 200.0).events if e.fired]
    assert raised.rule.name == "BTC position moved $1M" and raised.stale_age == 200.0  # $7.5M on stale prices
    # fresh prices at 400 s: the last fresh value was $5M, so the $2.5M move is still inside the window
    monitor.take_prices(book(400.0, "50000"), 400.0)
    monitor.take(intx(400.0, btc="150"), 400.0)
    (held,) = monitor.alerts.active.values()
    assert held.rule.name == "BTC position moved $1M" and held.stale_age is None and held.value == Decimal("7500000")
    # a minute of fresh $7.5M later, the move has left the window
    monitor.take(intx(461.0, btc="150"), 461.0)
    assert not active(monitor)
