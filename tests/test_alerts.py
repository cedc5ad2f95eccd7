"""Alert rules firing and clearing, totals across venues with different spellings, never silent about staleness."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Context, Decimal, localcontext
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.assets import AssetNames
from tui.money import Balance
from tui.monitor.alert_hook import run_hook
from tui.monitor.alerts import TOTALS, Alerts, Rule
from tui.monitor.totals import totals
from tui.snapshot.model import AccountSnapshot, VenueSnapshot
from tui.venues.errors import ErrorKind, VenueError


def _intx(at: float, failures: int = 0, **amounts: str) -> VenueSnapshot:
    fields = {"quantity": Decimal("1"), "max_withdraw_amount": Decimal("50000"), "loan": Decimal("0")}
    fields.update({k: Decimal(v) for k, v in amounts.items()})
    account = AccountSnapshot("P1", "Main", (Balance("USDC", fields),), at)
    return VenueSnapshot("INTX", "coinbase-intx", (account,), fetched_at=at, period=5.0, failures=failures)


def _kraken(at: float, **holdings: str) -> VenueSnapshot:
    balances = tuple(
        Balance(a, {"balance": Decimal(v), "hold_trade": Decimal(0), "available": Decimal(v)})
        for a, v in holdings.items()
    )
    return VenueSnapshot(
        "Kraken", "kraken-custody", (AccountSnapshot("V1", "Treasury", balances, at),), fetched_at=at, period=5.0
    )


BELOW = Rule("USDC withdrawable low", "max_withdraw_amount", "below", Decimal("10000"), venue="INTX", asset="USDC")
LOAN = Rule("a loan appeared", "loan", "above", Decimal("0"), venue="INTX")


def test_below_fires_once_and_clears_once() -> None:
    alerts = Alerts([BELOW])
    assert alerts.check_venue(_intx(0.0), 0.0) == []
    fired = alerts.check_venue(_intx(5.0, max_withdraw_amount="9999.99"), 5.0)
    assert [(e.fired, e.alert.detail) for e in fired] == [(True, "9999.99 < 10000")]
    assert alerts.check_venue(_intx(10.0, max_withdraw_amount="5000"), 10.0) == []  # still firing: no second event
    assert alerts.flagged("INTX") == {("P1:USDC", "max_withdraw_amount")}
    cleared = alerts.check_venue(_intx(15.0, max_withdraw_amount="10000"), 15.0)
    assert [(e.fired, e.alert.cleared_at) for e in cleared] == [(False, 15.0)]
    assert [a.active for a in alerts.log] == [True, False] and not alerts.active


def test_above_catches_a_loan_appearing() -> None:
    alerts = Alerts([LOAN])
    alerts.check_venue(_intx(0.0), 0.0)
    fired = alerts.check_venue(_intx(5.0, loan="0.00000001"), 5.0)
    assert fired and fired[0].alert.to_json()["value"] == "0.00000001" and fired[0].alert.to_json()["state"] == "firing"


def test_change_within_a_window_absolute_and_percent() -> None:
    absolute = Rule("moved", "quantity", "change", Decimal("100"), window=60.0)
    percent = Rule("moved %", "quantity", "change", Decimal("10"), percent=True, window=60.0)
    alerts = Alerts([absolute, percent])
    alerts.check_venue(_intx(0.0, quantity="1000"), 0.0)
    assert alerts.check_venue(_intx(10.0, quantity="1090"), 10.0) == []  # +90: under both lines
    fired = alerts.check_venue(_intx(20.0, quantity="1101"), 20.0)
    assert sorted(e.alert.rule.name for e in fired if e.fired) == ["moved", "moved %"]
    # a minute later the 1000 has left the window: 1090 → 1101 is within both lines, so both clear
    cleared = alerts.check_venue(_intx(75.0, quantity="1101"), 75.0)
    assert sorted(e.alert.rule.name for e in cleared if not e.fired) == ["moved", "moved %"]


# A walk: each step waits 1, 2 or 5 s and moves the value by -3..3 (0 often: calm stretches matter too).
WALKS = st.lists(st.tuples(st.sampled_from((1.0, 2.0, 5.0)), st.sampled_from((-3, -1, 0, 0, 1, 2, 3))), max_size=150)
WINDOWS = st.integers(1, 60).map(float)


def _walk_judged_against_the_definition(
    rule: Rule, start: int, steps: list[tuple[float, int]], moved: Callable[[Decimal, Decimal], bool]
) -> None:
    """The rule breaches when `moved(now, before)` holds for any value in force at some moment of the last
    `rule.window` seconds — judged here from every observation kept, not the rule's own queues."""
    alerts = Alerts([rule])
    seen: list[tuple[float, Decimal]] = []  # every observation: (time, value)
    now, value = 0.0, Decimal(start)
    for wait, step in steps:
        now += wait
        value += step
        seen.append((now, value))
        alerts.check_venue(_intx(now, quantity=str(value)), now)
        # the value in force at now - window is the last one observed at or before it
        first = max((i for i, (t, _) in enumerate(seen) if t <= now - rule.window), default=0)
        breach = any(moved(value, before) for _, before in seen[first:])
        assert bool(alerts.active) == breach, (rule.window, now, value)


@settings(max_examples=150, deadline=None)
@given(window=WINDOWS, threshold=st.integers(1, 8), start=st.integers(-20, 120), steps=WALKS)
def test_change_rule_matches_every_value_in_force_within_the_window(
    window: float, threshold: int, start: int, steps: list[tuple[float, int]]
) -> None:
    rule = Rule("moved", "quantity", "change", Decimal(threshold), window=window)
    _walk_judged_against_the_definition(rule, start, steps, lambda now, before: abs(now - before) > threshold)


@settings(max_examples=150, deadline=None)
@given(window=WINDOWS, start=st.integers(-5, 5), percent=st.integers(10, 400), steps=WALKS)
def test_percent_change_rule_matches_every_value_in_force_even_across_zero(
    window: float, start: int, percent: int, steps: list[tuple[float, int]]
) -> None:
    """A net or loan value can cross zero: going from -100 through -1 to 5 moves 600 % from the -1, more
    than from the lowest or the highest value of the window. A value of zero has no percent to move by."""
    rule = Rule("moved %", "quantity", "change", Decimal(percent), percent=True, window=window)
    _walk_judged_against_the_definition(
        rule, start, steps, lambda now, before: before != 0 and abs(now - before) * 100 > abs(before) * percent
    )


def test_a_percent_change_is_judged_on_exact_digits() -> None:
    """10 % of 98765432109.876543210987654321 is 9876543210.9876543210987654321 (29 digits, worked out by
    hand): a move of exactly that is not more than 10 %, one of 10^-19 more is."""
    before, ten_percent = "98765432109.876543210987654321", "9876543210.9876543210987654321"
    exactly = "108641975320.8641975320864197531"  # before + ten_percent, by hand
    rule = Rule("moved %", "quantity", "change", Decimal("10"), percent=True, window=60.0)
    for now, more, fires in ((exactly, "0", False), (exactly, "0.0000000000000000001", True)):
        alerts = Alerts([rule])
        alerts.check_venue(_intx(0.0, quantity=before), 0.0)
        with localcontext(Context(prec=100)):  # this test's own sums, exact
            value = Decimal(now) + Decimal(more)
            assert value - Decimal(before) == Decimal(ten_percent) + Decimal(more)
            assert Decimal(ten_percent) * 10 == Decimal(before)
        fired = alerts.check_venue(_intx(1.0, quantity=str(value)), 1.0)
        assert bool(fired) is fires, (now, more)


def test_stale_data_never_clears_and_says_it_is_stale() -> None:
    alerts = Alerts([BELOW])
    alerts.check_venue(_intx(0.0, max_withdraw_amount="10"), 0.0)
    # the venue now fails: its kept data would not breach, but it is old, so the alert holds and says so
    stale = _intx(0.0, failures=3, max_withdraw_amount="20000")
    assert alerts.check_venue(stale, 60.0) == []
    (alert,) = alerts.active.values()
    assert alert.stale_age == 60.0 and alert.to_json()["stale"] is True and alert.to_json()["data_age_seconds"] == 60
    # and a rule that first breaches on stale data fires marked stale
    fresh_rules = Alerts([LOAN])
    failing = VenueSnapshot(
        "INTX",
        "coinbase-intx",
        (
            AccountSnapshot(
                "P1",
                "Main",
                (Balance("USDC", {"loan": Decimal("5")}),),
                0.0,
                VenueError(ErrorKind.SERVER, "INTX answered HTTP 503", retryable=True),
            ),
        ),
        fetched_at=0.0,
        period=5.0,
        failures=2,
    )
    (event,) = fresh_rules.check_venue(failing, 30.0)
    assert event.fired and event.alert.stale_age == 30.0


def test_totals_sum_exactly_across_venues_and_spellings() -> None:
    names = AssetNames()
    kraken = _kraken(0.0, XXBT="1.10000000", XBT="0.2", ZUSD="10")
    intx = VenueSnapshot(
        "INTX",
        "coinbase-intx",
        (AccountSnapshot("P1", "Main", (Balance("BTC", {"quantity": Decimal("0.000000000000000001")}),), 0.0),),
        fetched_at=0.0,
        period=5.0,
    )
    by_asset = {t.asset: t for t in totals([kraken, intx], names, 1.0)}
    assert by_asset["BTC"].amount == Decimal("1.300000000000000001")
    assert format(by_asset["BTC"].amount, "f") == "1.300000000000000001"
    assert [(h.venue, h.asset) for h in by_asset["BTC"].holdings] == [
        ("Kraken", "XXBT"),
        ("Kraken", "XBT"),
        ("INTX", "BTC"),
    ]
    assert by_asset["USD"].amount == Decimal("10") and not by_asset["BTC"].stale
    kept_apart = {t.asset for t in totals([kraken], AssetNames({"XBT": "XBT"}), 1.0)}
    assert kept_apart == {"BTC", "XBT", "USD"}


def test_totals_stay_exact_past_the_default_28_digits() -> None:
    """38 significant digits each (Kraken sends up to 64 characters): the sum is written out by hand."""
    kraken = _kraken(0.0, XXBT="99999999999999999999.999999999999999999", XBT="0.000000000000000001")
    intx = VenueSnapshot(
        "INTX",
        "coinbase-intx",
        (
            AccountSnapshot(
                "P1", "Main", (Balance("BTC", {"quantity": Decimal("12345678901234567890.123456789012345678")}),), 0.0
            ),
        ),
        fetched_at=0.0,
        period=5.0,
    )
    (btc,) = totals([kraken, intx], AssetNames(), 1.0)
    assert format(btc.amount, "f") == "112345678901234567890.123456789012345678"


def test_a_row_missing_from_a_stale_answer_does_not_clear_its_alert() -> None:
    alerts = Alerts([BELOW])
    (fired,) = alerts.check_venue(_intx(0.0, max_withdraw_amount="10"), 0.0)
    assert fired.fired
    failing_without_rows = VenueSnapshot(
        "INTX",
        "coinbase-intx",
        (),
        error=VenueError(ErrorKind.UNREACHABLE, "cannot connect to the venue"),
        fetched_at=0.0,
        period=5.0,
        failures=1,
    )
    assert alerts.check_venue(failing_without_rows, 30.0) == []
    assert [a.rule.name for a in alerts.active.values()] == [BELOW.name]
    # the same row missing from a fresh answer does clear it: nothing is breaching any more
    fresh_without_rows = VenueSnapshot("INTX", "coinbase-intx", (), fetched_at=35.0, period=5.0)
    (cleared,) = alerts.check_venue(fresh_without_rows, 35.0)
    assert not cleared.fired and not alerts.active


def test_a_rule_on_a_total() -> None:
    names = AssetNames()
    rule = Rule("BTC total low", "total", "below", Decimal("1"), venue=TOTALS, asset="BTC")
    alerts = Alerts([rule], names)
    assert alerts.check_totals(totals([_kraken(0.0, XXBT="1.5")], names, 0.0), 0.0) == []
    (event,) = alerts.check_totals(totals([_kraken(5.0, XXBT="0.5")], names, 5.0), 5.0)
    assert event.fired and event.alert.target.label() == "total BTC"


async def test_the_paging_command_gets_json_and_failures_are_words(tmp_path: Path) -> None:
    out = tmp_path / "page.json"
    alert = Alerts([BELOW])
    (event,) = alert.check_venue(_intx(5.0, max_withdraw_amount="1"), 5.0)
    payload = event.alert.to_json()
    copy = shlex.join([sys.executable, "-c", f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"])
    assert await run_hook(copy, payload) is None
    assert json.loads(out.read_text()) == payload
    failing = shlex.join([sys.executable, "-c", "import sys; print('no route to pager', file=sys.stderr); sys.exit(3)"])
    assert await run_hook(failing, payload) == f"alert command {sys.executable!r} exited 3: no route to pager"
    slow = shlex.join([sys.executable, "-c", "import time; time.sleep(30)"])
    assert "ran over 0.5 s and was stopped" in (await run_hook(slow, payload, timeout=0.5) or "")
    assert "cannot start" in (await run_hook("/no/such/pager", payload) or "")
    assert "quotes" in (await run_hook('pager "unclosed', payload) or "")


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="looks for the processes in /proc")
async def test_a_command_over_its_time_ends_with_everything_it_started(tmp_path: Path) -> None:
    from tests.test_secret_command import living

    seconds = f"300.{uuid.uuid4().int % 10**9}"  # a sleep no other process on this machine is running
    started = tmp_path / "started"
    script = f"sleep {seconds} & touch {shlex.quote(str(started))}; sleep {seconds}"
    problem = await run_hook(shlex.join(["sh", "-c", script]), {"rule": "x"}, timeout=1.0)
    assert "ran over 1 s and was stopped" in (problem or "")
    assert started.exists(), "the command was stopped before it started its child: this test proves nothing"
    deadline = time.monotonic() + 30
    while living(seconds) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not living(seconds), "a process the alert command started outlived it"


async def test_a_command_that_floods_stderr_costs_no_memory_and_says_its_last_line() -> None:
    """32 MB on stderr: only its tail is kept (the last line is all that is shown)."""
    import tracemalloc

    flood = "import sys\nfor _ in range(500): sys.stderr.write('x' * 65536 + '\\n')\nprint('the end', file=sys.stderr)"
    tracemalloc.start()
    try:
        problem = await run_hook(shlex.join([sys.executable, "-c", flood + "\nsys.exit(4)"]), {"rule": "x"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert problem == f"alert command {sys.executable!r} exited 4: the end"
    assert peak < 8_000_000, f"{peak / 1e6:.0f} MB held for a command's stderr"


def test_a_total_is_stale_while_one_account_holding_it_fails() -> None:
    """Vault V1 answered, vault V2's last refresh failed (the venue itself answered): BTC's total still counts
    V2's last good amount, but says it is stale (a grand total never looks fresher than its oldest part)."""
    fields = {"balance": Decimal(1), "hold_trade": Decimal(0), "available": Decimal(1)}
    good = AccountSnapshot("V1", "Treasury", (Balance("XBT", fields),), 10.0)
    failing = AccountSnapshot(
        "V2", "Cold", (Balance("XXBT", fields),), 0.0, error=VenueError(ErrorKind.SERVER, "HTTP 503")
    )
    usd = AccountSnapshot("V1", "Treasury", (Balance("ZUSD", fields),), 10.0)
    venue = VenueSnapshot("Kraken", "kraken-custody", (good, failing), fetched_at=10.0, period=5.0)
    by_asset = {t.asset: t for t in totals([venue], AssetNames(), 10.0)}
    assert by_asset["BTC"].amount == Decimal(2) and by_asset["BTC"].stale
    healthy = VenueSnapshot("Kraken", "kraken-custody", (usd,), fetched_at=10.0, period=5.0)
    assert not totals([healthy], AssetNames(), 10.0)[0].stale  # the premise: an answered account is fresh


def test_a_watch_holds_each_value_once_however_many_queues_keep_it() -> None:
    """Issue 24 (RSS): a change rule's window keeps one small point per value, shared by its queues (lowest,
    highest, nearest zero on each side) and ended once when the value stops: not a tuple per queue replaced
    by another at its end."""
    from tui.monitor.alerts import Point, _Watch

    watch = _Watch(percent=True)
    watch.observe(0.0, Decimal("5"), 600.0)
    first = watch.queues[0][-1]
    assert isinstance(first, Point) and not hasattr(first, "__dict__")
    assert watch.queues[1][-1] is first and watch.queues[2][-1] is first and first.end is None
    watch.observe(10.0, Decimal("7"), 600.0)
    now = watch.current
    assert first.end == 10.0 and now is not None and now.end is None  # ended once, in every queue alike
    assert watch.queues[0] == [first, now] and watch.queues[1] == [now] and watch.queues[2] == [first, now]
    assert watch.extremes() == [Decimal("5"), Decimal("7"), Decimal("5")]
