"""Promises of the alert rules, the cross-venue totals and the monitor that no other test held them to
(issue 22): each test here failed against a plausible bug planted in a scratch copy.

Every expected figure is worked out here from the inputs (ages are `now - fetched_at` by hand), never read
back from the code under test."""

from __future__ import annotations

import shlex
import sys
from decimal import Decimal

import pytest

from tests.test_value_alerts import VENUES
from tui.assets import AssetNames
from tui.config import parse
from tui.credentials import remember
from tui.engine.prices import PriceBook
from tui.money import Balance
from tui.monitor.alert_hook import run_hook
from tui.monitor.alerts import TOTALS, Alerts, Rule
from tui.monitor.monitor import Monitor
from tui.monitor.totals import is_stale, totals
from tui.snapshot.model import AccountSnapshot, VenueSnapshot
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.kraken_prices import Price


def kraken_vault(at: float, *, failing: bool = False, period: float = 5.0, **holdings: str) -> VenueSnapshot:
    """One vault; `failing`: its latest refresh failed (the refresher keeps the last good balances, sets the
    account's error and counts a failure on the venue, with no venue-wide error: refresher._fetch_all)."""
    balances = tuple(
        Balance(a, {"balance": Decimal(v), "hold_trade": Decimal(0), "available": Decimal(v)})
        for a, v in holdings.items()
    )
    error = VenueError(ErrorKind.SERVER, "HTTP 503") if failing else None
    account = AccountSnapshot("V1", "Treasury", balances, at, error=error)
    return VenueSnapshot(
        "Kraken", "kraken-custody", (account,), fetched_at=at, period=period, failures=1 if failing else 0
    )


def intx_portfolio(at: float, *, period: float = 5.0, **quantities: str) -> VenueSnapshot:
    balances = tuple(
        Balance(a, {"quantity": Decimal(v), "max_withdraw_amount": Decimal(v), "loan": Decimal(0)})
        for a, v in quantities.items()
    )
    return VenueSnapshot(
        "INTX", "coinbase-intx", (AccountSnapshot("P1", "Main", balances, at),), fetched_at=at, period=period
    )


def prices(at: float, btc: str = "100000") -> PriceBook:
    return PriceBook("kraken", {"BTC": Price(Decimal(btc), "XXBTZUSD")}, at, period=60.0)


# --- totals: never fresher than the oldest part ---------------------------------------------------------


def test_a_venue_whose_every_account_failed_is_stale_and_the_totals_say_so() -> None:
    """Every vault failed (the venue counts a failure but carries no venue-wide error): its data is stale,
    and the totals pane's note names it, though the answer itself is only seconds old."""
    failing = kraken_vault(100.0, failing=True, XBT="2")
    assert is_stale(failing, 101.0)
    monitor = Monitor(parse(VENUES))
    monitor.take(intx_portfolio(101.0, USDC="5"), 101.0)
    outcome = monitor.take(failing, 101.0)
    assert outcome.totals is not None and outcome.totals.note == "includes stale data from Kraken"


def test_an_answer_older_than_three_periods_makes_its_totals_stale() -> None:
    """A 5 s venue last answered at t=100: at 115 (three periods) its totals are fresh, past 115 stale."""
    vault = kraken_vault(100.0, XBT="2")
    (fresh,) = totals([vault], AssetNames(), 115.0)
    assert not fresh.stale and not is_stale(vault, 115.0)
    (old,) = totals([vault], AssetNames(), 115.5)
    assert old.stale and is_stale(vault, 115.5)


def test_the_totals_pane_is_as_old_as_its_oldest_venue_and_marks_stale_holders() -> None:
    """INTX answered at t=90, Kraken at t=100: the totals pane's answer time is 90 (never the newest), and
    an account whose refresh failed is marked "(stale)" where the pane says who holds the asset."""
    monitor = Monitor(parse(VENUES))
    monitor.take(intx_portfolio(90.0, BTC="1"), 90.0)
    outcome = monitor.take(kraken_vault(100.0, failing=True, XBT="2"), 100.0)
    assert outcome.totals is not None
    assert outcome.totals.fetched_at == 90.0
    assert outcome.totals.accounts[0].fetched_at == 90.0
    (btc,) = [b for b in outcome.totals.accounts[0].balances if b.asset == "BTC"]
    assert btc.amount("total") == Decimal(3)
    assert btc.labels["held_at"] == "Main · Treasury (stale)"


# --- the age a stale alert states -------------------------------------------------------------------------


def test_an_alert_on_a_stale_total_gives_the_age_of_its_oldest_part() -> None:
    """BTC is held at INTX (answered 100 s ago, failing since) and at Kraken (20 s ago): an alert raised on
    the total says its data is 100 s old, the older of the two, not 20."""
    rule = Rule("BTC under 10", "total", "below", Decimal(10), venue=TOTALS)
    intx = intx_portfolio(0.0, BTC="1")
    intx = VenueSnapshot(intx.name, intx.kind, intx.accounts, fetched_at=0.0, period=5.0, failures=3)
    vault = kraken_vault(80.0, XBT="2")
    now = 100.0
    current = totals([intx, vault], AssetNames(), now)
    ages = {"INTX": now - 0.0, "Kraken": now - 80.0}
    (event,) = Alerts([rule]).check_totals(current, now, ages)
    assert event.fired and event.alert.stale_age == 100.0
    assert event.alert.to_json()["data_age_seconds"] == 100


# --- what a rule applies to -------------------------------------------------------------------------------


def test_a_rule_naming_an_asset_by_its_totals_name_matches_the_venues_spelling() -> None:
    """asset = "BTC" on Kraken, which spells it XBT (README: "the venue's spelling or the totals name")."""
    rule = Rule("BTC low at Kraken", "available", "below", Decimal(5), venue="Kraken", asset="BTC")
    (event,) = Alerts([rule]).check_venue(kraken_vault(0.0, XBT="2", ZUSD="1"), 0.0)
    assert event.fired and event.alert.target.asset == "XBT" and event.alert.detail == "2 < 5"


def test_a_rule_without_a_venue_is_on_every_venue_but_not_on_the_totals() -> None:
    """No venue named: the rule watches every venue's balances; the totals are a venue of their own
    (venue = "totals"), so the BTC worth at INTX does not fire a second time as the firm's BTC worth."""
    rule = Rule("a BTC position over $50k", "usd_value", "above", Decimal(50000), asset="BTC")
    monitor = Monitor(parse(VENUES))
    monitor.alerts = Alerts([rule], monitor.names)
    monitor.take(kraken_vault(0.0, ZUSD="1"), 0.0)
    monitor.take(intx_portfolio(0.0, BTC="1"), 0.0)
    monitor.take_prices(prices(0.0), 0.0)
    assert {(a.target.venue, a.target.asset) for a in monitor.alerts.active.values()} == {("INTX", "BTC")}


# --- a price tick checks only the rules on values ------------------------------------------------------------


def test_new_prices_leave_an_alert_on_a_balance_field_alone() -> None:
    """max_withdraw_amount below 10 fires on INTX's answer; a price tick (which checks only the rules on
    values) must neither clear it nor fire it again: only INTX's next answer can."""
    rule = Rule("withdrawable low", "max_withdraw_amount", "below", Decimal(10), venue="INTX", asset="USDC")
    monitor = Monitor(parse(VENUES))
    monitor.alerts = Alerts([rule], monitor.names)
    monitor.take(kraken_vault(0.0, XBT="1"), 0.0)
    fired = monitor.take(intx_portfolio(0.0, USDC="5", BTC="1"), 0.0).events
    assert [(e.fired, e.alert.rule.name) for e in fired] == [(True, "withdrawable low")]
    for tick, btc in enumerate(("100000", "100001", "99000"), start=1):
        assert monitor.take_prices(prices(float(tick), btc), float(tick)).events == []
        assert [a.rule.name for a in monitor.alerts.active.values()] == ["withdrawable low"]


@pytest.mark.parametrize("venue", ["INTX", TOTALS])
def test_a_value_alert_is_held_when_prices_become_too_old_to_use(venue: str) -> None:
    """What INTX holds (or the firm) is worth under $1M: it fires; an hour later the same prices are too old
    to use (15 periods of 60 s): the worth is unknown, not back within its line, so the alert stays, though
    every venue has just answered, and says how old the prices it last saw are."""
    rule = Rule("under $1M", "usd_total", "below", Decimal(1_000_000), venue=venue)
    monitor = Monitor(parse(VENUES))
    monitor.alerts = Alerts([rule], monitor.names)
    monitor.take(kraken_vault(0.0, XBT="1"), 0.0)
    monitor.take(intx_portfolio(0.0, USDC="5"), 0.0)
    fired = monitor.take_prices(prices(0.0), 0.0).events
    assert [(e.fired, e.alert.target.venue) for e in fired] == [(True, venue)]
    monitor.take(kraken_vault(3600.0, XBT="1"), 3600.0)
    outcome = monitor.take(intx_portfolio(3600.0, USDC="5"), 3600.0)
    assert outcome.worth is not None and not outcome.worth.priced  # the premise: no usable prices
    assert outcome.events == []
    (held,) = monitor.alerts.active.values()
    assert held.target.venue == venue
    assert held.stale_age == 3600.0 and held.to_json()["stale"] is True  # the prices' age (README: says how old)


# --- the paging command ---------------------------------------------------------------------------------------


async def test_an_empty_alert_command_is_said_not_run() -> None:
    assert await run_hook("   ", {"rule": "x"}) == "alert command is empty"


# --- the paging command's failure, redacted before it is shortened ---------------------------------------------


async def test_a_failing_commands_last_line_is_redacted_before_it_is_shortened() -> None:
    """The command's last stderr line quotes a secret, once whole and once straddling the 160th character
    (where the message is cut): neither the secret nor any 8 characters of it reach the operator."""
    secret = "sk-live-" + "Q7w9Zr2XpL4vNc8T" * 2
    remember(secret)
    line = "auth failed for " + secret + " " + "." * (150 - len("auth failed for ") - len(secret) - 1) + secret
    assert line.index(secret, 20) < 160 < line.index(secret, 20) + len(secret)  # the premise: it straddles the cut
    script = f"import sys; print({line!r}, file=sys.stderr); sys.exit(2)"
    problem = await run_hook(shlex.join([sys.executable, "-c", script]), {"rule": "x"})
    assert problem is not None and problem.startswith(f"alert command {sys.executable!r} exited 2: auth failed for ")
    assert not any(secret[i : i + 8] in problem for i in range(len(secret) - 7)), problem


# --- the age a held value alert states ----------------------------------------------------------------------

KRAKEN_ONLY = (
    '[[venue]]\nkind = "kraken-custody"\nname = "Kraken"\napi_key = { env = "K" }\napi_secret = { env = "S" }\n'
)


def test_a_value_held_on_stale_balances_and_stale_prices_is_as_old_as_the_older() -> None:
    """The vault's XBT is worth over $1: fired on fresh data at t=150. At t=400 the vault has failed since
    t=150 (its balance is 250 s old) and the prices are from t=0 (400 s, stale after 180): the held alert
    says its value is 400 s old, the older of its two parts, and a balance rule on the same vault 250 s."""
    worth_rule = Rule("XBT worth over $1", "usd_value", "above", Decimal(1), venue="Kraken", asset="XBT")
    amount_rule = Rule("XBT over 1", "balance", "above", Decimal(1), venue="Kraken", asset="XBT")
    monitor = Monitor(parse(KRAKEN_ONLY))
    monitor.alerts = Alerts([worth_rule, amount_rule], monitor.names)
    monitor.take_prices(prices(0.0), 0.0)
    fired = monitor.take(kraken_vault(150.0, XBT="2"), 150.0).events
    assert sorted(e.alert.rule.name for e in fired if e.fired) == ["XBT over 1", "XBT worth over $1"]
    assert all(a.stale_age is None for a in monitor.alerts.active.values())
    monitor.take(kraken_vault(150.0, failing=True, XBT="2"), 400.0)
    held = {a.rule.name: a.stale_age for a in monitor.alerts.active.values()}
    assert held == {"XBT worth over $1": 400.0, "XBT over 1": 250.0}


def test_a_venue_wide_worth_on_a_failing_venue_says_how_old_it_is() -> None:
    """What Kraken holds is worth over $1: fired at t=10. At t=100 every vault has failed since t=10 while the
    prices are fresh (t=90): the venue's worth rests on 90 s old balances, and its alert says so."""
    rule = Rule("Kraken worth over $1", "usd_total", "above", Decimal(1), venue="Kraken")
    monitor = Monitor(parse(KRAKEN_ONLY))
    monitor.alerts = Alerts([rule], monitor.names)
    monitor.take_prices(prices(10.0), 10.0)
    (fired,) = monitor.take(kraken_vault(10.0, XBT="2"), 10.0).events
    assert fired.fired and fired.alert.target.account_id == "*" and fired.alert.stale_age is None
    monitor.take_prices(prices(90.0), 90.0)
    monitor.take(kraken_vault(10.0, failing=True, XBT="2"), 100.0)
    (held,) = monitor.alerts.active.values()
    assert held.stale_age == 90.0
