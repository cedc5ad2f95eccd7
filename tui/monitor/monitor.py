"""Everything the live app does with a finished snapshot besides drawing it: record its changes, total
every asset across venues, value the holdings at the prices in force, and check the alert rules. No
Textual here; the app draws what this returns."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from tui.assets import AssetNames
from tui.config import Config
from tui.engine.prices import PriceBook
from tui.money import Balance, fmt
from tui.monitor.alerts import Alerts, Event
from tui.monitor.answers import PRICES
from tui.monitor.changes import ChangeTracker
from tui.monitor.history import History
from tui.monitor.spark import sparkline
from tui.monitor.totals import Total, is_stale, totals
from tui.monitor.valuation import Appraisal, appraise
from tui.snapshot.model import AccountSnapshot, VenueSnapshot

TOTALS_NAME = "Totals"
DAY = 86400.0
SPARK_WIDTH = 48


@dataclass(frozen=True, slots=True)
class Outcome:
    totals: VenueSnapshot | None  # shaped like a venue, so a pane can show it like any other
    events: list[Event]
    worth: Appraisal | None = None  # every venue's holdings at the prices in force (None: no prices)


class Monitor:
    def __init__(self, config: Config, history: History | None = None, started: float | None = None) -> None:
        self.names = AssetNames(config.assets)
        self.alerts = Alerts(config.alerts, self.names)
        self.tracker = ChangeTracker()
        self.history = history
        self.order = [v.name for v in config.venues]
        self.kinds = {v.name: v.kind for v in config.venues}
        self.started = time.time() if started is None else started
        self.latest: dict[str, VenueSnapshot] = {}
        self.book: PriceBook | None = None
        self.worth: Appraisal | None = None

    def take(self, snapshot: VenueSnapshot, now: float) -> Outcome:
        """A venue's finished refresh (not the "refreshing" notice that precedes it).

        No totals until every venue has answered once (with data or an error): a total made of the
        first venue alone would make the others' arrival look like a change.
        """
        self.latest[snapshot.name] = snapshot
        self._record(snapshot, snapshot, now)
        self.worth = self._appraise(now)
        events = self.alerts.check_venue(snapshot, now, self.worth)
        return self._with_totals(events, now)

    def take_prices(self, book: PriceBook, now: float) -> Outcome:
        """New prices (or the news that they failed): every value again, and the rules on values."""
        self.book = book
        self._record(prices_as_venue(book) if book.fetched_at is not None else None, book, now)
        self.worth = self._appraise(now)
        events: list[Event] = []
        for name in self.order:
            if name in self.latest:
                events += self.alerts.check_venue(self.latest[name], now, self.worth, values_only=True)
        return self._with_totals(events, now)

    def _record(self, snapshot: VenueSnapshot | None, answer: VenueSnapshot | PriceBook, now: float) -> None:
        """The changes `snapshot` brings, and the answer itself (what `book` needs beside the amounts)."""
        changes = self.tracker.diff(snapshot) if snapshot is not None else []
        if self.history is not None:
            self.history.record(changes, answer, now)

    def _appraise(self, now: float) -> Appraisal | None:
        if self.book is None:
            return None
        return appraise(self.latest.values(), self.book, self.names, now)

    def _with_totals(self, events: list[Event], now: float) -> Outcome:
        if any(name not in self.latest for name in self.order):
            return Outcome(None, events, self.worth)
        venues = [self.latest[name] for name in self.order]
        current = totals(venues, self.names, now)
        ages = {v.name: v.age(now) or 0.0 for v in venues}
        events += self.alerts.check_totals(current, now, ages, self.worth)
        return Outcome(self._as_venue(current, venues, now), events, self.worth)

    def trend(self, venue: str, account_id: str, asset: str, now: float) -> tuple[str, str]:
        """Two lines for a drill-down: the quantity over this session and over the last 24 h."""
        if self.history is None:  # the history is where trends come from: nothing is kept twice
            return "trend          history is off ([history] enabled = false in the config)", ""
        kind = self.kinds.get(venue)
        if kind is None:
            return "", ""
        session = self.history.series(venue, account_id, asset, kind.quantity, self.started)
        day = self.history.series(venue, account_id, asset, kind.quantity, now - DAY)
        return _trend_line("this session", session, self.started, now), _trend_line("last 24 h", day, now - DAY, now)

    def _as_venue(self, current: list[Total], venues: list[VenueSnapshot], now: float) -> VenueSnapshot:
        balances = tuple(
            Balance(
                total.asset,
                {"total": total.amount},
                {"held_at": _held_at(total), "spelled": ", ".join(sorted({h.asset for h in total.holdings}))},
            )
            for total in current
        )
        fetched = [v.fetched_at for v in venues if v.fetched_at is not None]
        oldest = min(fetched) if fetched else None
        stale = [v.name for v in venues if is_stale(v, now)]
        periods = [v.period for v in venues if v.period]
        return VenueSnapshot(
            TOTALS_NAME,
            "totals",
            (AccountSnapshot("total", "every venue", balances, oldest),),
            fetched_at=oldest,
            period=max(periods) if periods else None,
            note=f"includes stale data from {', '.join(stale)}" if stale else None,
        )


def prices_as_venue(book: PriceBook) -> VenueSnapshot:
    """The prices shaped as a venue with one account, so the change tracker and the history take them as
    they take balances: a price is recorded when its digits move, and values can be recomputed later."""
    balances = tuple(Balance(asset, {"usd_price": price.usd}) for asset, price in sorted(book.prices.items()))
    account = AccountSnapshot(book.source, book.source, balances, book.fetched_at)
    return VenueSnapshot(PRICES, PRICES, (account,), fetched_at=book.fetched_at)


def _trend_line(label: str, points: list[tuple[float, Decimal]], start: float, end: float) -> str:
    if not points:
        return f"{label:<14} no data yet"
    values = [v for _, v in points]
    line = sparkline(points, start, end, SPARK_WIDTH)
    low, high = min(values), max(values)
    span = f"steady at {fmt(low)}" if low == high else f"{fmt(low)} … {fmt(high)}"
    return f"{label:<14} {line}  {span}"


def _held_at(total: Total) -> str:
    """The accounts holding it, venue by venue ("Treasury, Cold storage · Main"), stale ones marked."""
    by_venue: dict[str, list[str]] = {}
    for holding in total.holdings:
        name = holding.account + (" (stale)" if holding.stale else "")
        if name not in by_venue.setdefault(holding.venue, []):
            by_venue[holding.venue].append(name)
    return " · ".join(", ".join(accounts) for accounts in by_venue.values())
