"""Thresholds on any field of any venue, account and asset (or a cross-venue total), and the alerts they
raise: below, above, or a change of more than X (absolute or %) within a window.

A rule fires once when a value crosses its line and clears once when a fresh answer is back on the right
side. Stale data (a failed refresh, an old answer) never clears an alert, and an alert raised or held on
stale data says so, with the data's age. No Textual here: the app shows what this decides.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tui.assets import AssetNames
from tui.money import fmt, mul, sub
from tui.monitor.rule import Rule as Rule
from tui.monitor.rules import BALANCE_VALUES, SCOPE_VALUES, SUMMARY, span
from tui.monitor.rules import TOTALS as TOTALS  # re-exported: the rules' words, where the alerts are
from tui.monitor.totals import Total, is_stale
from tui.snapshot.model import VenueSnapshot, iso

if TYPE_CHECKING:
    from tui.monitor.valuation import Appraisal, Sums

VALUE_FIELDS = frozenset((*BALANCE_VALUES, *SCOPE_VALUES))
WHOLE_VENUE = "*"  # the account id of a venue-wide target
LOG_LIMIT = 500
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Target:
    venue: str
    account_id: str
    account: str
    asset: str

    @property
    def row_key(self) -> str:
        return f"total:{self.asset}" if self.venue == TOTALS else f"{self.account_id}:{self.asset}"

    def label(self) -> str:
        if self.venue == TOTALS:
            return f"total {self.asset}" if self.asset else "every venue together"
        if self.account_id == WHOLE_VENUE:
            return f"{self.venue} (all accounts)"
        return f"{self.venue} / {self.account}" + (f" / {self.asset}" if self.asset else " (whole account)")


@dataclass(frozen=True, slots=True)
class Alert:
    rule: Rule
    target: Target
    value: Decimal | bool
    fired_at: float
    detail: str  # what crossed, in words
    stale_age: float | None = None  # set when the data behind it is not fresh: how old it is
    cleared_at: float | None = None

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def to_json(self) -> dict[str, Any]:
        """What a paging command reads on stdin."""
        return {
            "rule": self.rule.name,
            "state": "firing" if self.active else "cleared",
            "condition": self.rule.describe(),
            "venue": self.target.venue,
            "account": {"id": self.target.account_id, "name": self.target.account},
            "asset": self.target.asset,
            "field": self.rule.field,
            "value": self.value if isinstance(self.value, bool) else fmt(self.value),
            "detail": self.detail,
            "fired_at": iso(self.fired_at),
            "cleared_at": iso(self.cleared_at) if self.cleared_at is not None else None,
            "stale": self.stale_age is not None,
            "data_age_seconds": round(self.stale_age) if self.stale_age is not None else None,
        }


@dataclass(frozen=True, slots=True)
class Event:
    alert: Alert
    fired: bool  # False: cleared


class Point:
    """A value, and when it stopped being in force (None: it still is). One object however many of a watch's
    queues hold it, ended once for all: a tuple per queue, replaced by another when the value stopped, kept four
    times its size (1.2 MB of tuples for a percent rule on 1,000 Kraken balances after ten minutes; issue 24)."""

    __slots__ = ("end", "value")

    def __init__(self, value: Decimal) -> None:
        self.value = value
        self.end: float | None = None


class _Watch:
    """The values a change rule must compare with over its window, the value in force when the window starts
    included: the lowest and the highest, and for a percent rule also the smallest above zero and the largest
    below it.

    The farthest any earlier value is from now, in amount, is the lowest or the highest; in percent of the
    earlier value, for values of one sign it is too, but across zero it is the one nearest zero on the other
    side (-100 → -1 → 5 moves 600 % from the -1). Each is a monotonic queue that keeps only the points that can
    still be an extreme (a balance moving both ways costs a handful, not one per step). Lists, not deques: a
    deque is 760 bytes empty, and a rule on a thousand calm balances keeps a thousand of these. The value in
    force is `current`, the one point not yet ended, whichever queues hold it."""

    __slots__ = ("current", "queues")

    def __init__(self, percent: bool = False) -> None:
        self.queues: tuple[list[Point], ...] = ([], [], [], []) if percent else ([], [])
        self.current: Point | None = None

    def observe(self, now: float, value: Decimal, window: float) -> None:
        queues = self.queues
        if self.current is None or self.current.value != value:
            if self.current is not None:
                self.current.end = now  # the value in force until now, in every queue that holds it
            point = self.current = Point(value)
            _push(queues[0], point, value.__le__)
            _push(queues[1], point, value.__ge__)
            if len(queues) > 2 and value:
                _push(queues[2], point, value.__le__) if value > 0 else _push(queues[3], point, value.__ge__)
        start = now - window
        for queue in queues:
            if queue and (end := queue[0].end) is not None and end <= start:
                expired = 1
                while expired < len(queue) and (end := queue[expired].end) is not None and end <= start:
                    expired += 1
                del queue[:expired]

    def extremes(self) -> list[Decimal]:
        return [queue[0].value for queue in self.queues if queue]


def _push(queue: list[Point], point: Point, beats: Callable[[Decimal], bool]) -> None:
    """`point` onto a monotonic queue, after dropping the points it beats (they can no longer be an extreme)."""
    while queue and beats(queue[-1].value):
        queue.pop()
    queue.append(point)


class Alerts:
    """Every rule's state. Feed it each finished venue snapshot and the totals; it returns what changed."""

    def __init__(self, rules: Iterable[Rule], names: AssetNames | None = None) -> None:
        self.rules = tuple(rules)
        self.names = names or AssetNames()
        self.active: dict[tuple[int, Target], Alert] = {}
        self.log: deque[Alert] = deque(maxlen=LOG_LIMIT)  # newest last; fired and cleared
        self._watches: dict[tuple[int, Target], _Watch] = {}

    def check_venue(
        self, venue: VenueSnapshot, now: float, worth: Appraisal | None = None, values_only: bool = False
    ) -> list[Event]:
        """The rules on this venue's balances, accounts and values; `values_only` when only prices moved."""
        stale = is_stale(venue, now)
        prices_age = worth.book.age(now) if worth is not None and worth.stale and worth.book is not None else None
        values: list[tuple[Target, Mapping[str, Decimal | bool | None], float | None]] = []
        oldest: float | None = None
        oldest_answer: float | None = None
        for account in venue.accounts:
            if account.fetched_at is None:
                continue
            age = now - account.fetched_at if (stale or account.error is not None) else None
            valued_age = _older(age, prices_age)  # a value is as old as the older of its two parts
            oldest = _older(oldest, valued_age)
            oldest_answer = _older(oldest_answer, age)
            whole = Target(venue.name, account.id, account.name, "")
            for balance in account.balances:
                target = Target(venue.name, account.id, account.name, balance.asset)
                if not values_only:
                    values.append((target, balance.amounts, age))
                if worth is not None and worth.priced:
                    found = worth.worth(venue.name, account.id, balance.asset)
                    values.append((target, {"usd_value": found.value, "loan_usd_value": found.loan_value}, valued_age))
            if account.summary is not None and not values_only:
                values.append((whole, {SUMMARY + name: value for name, value in account.summary.items()}, age))
            if worth is not None and worth.priced and (venue.name, account.id) in worth.accounts:
                values.append((whole, _scope(worth.accounts[(venue.name, account.id)]), valued_age))
        if worth is not None and worth.priced and venue.name in worth.venues:
            everything = Target(venue.name, WHOLE_VENUE, "all accounts", "")
            values.append((everything, _scope(worth.venues[venue.name]), oldest if stale else prices_age))
        fresh = not stale and prices_age is None
        ages = (oldest_answer, _older(oldest_answer, prices_age))
        return self._check(venue.name, values, now, fresh, ages, VALUE_FIELDS if values_only else None)

    def check_totals(
        self,
        totals: Iterable[Total],
        now: float,
        ages: dict[str, float] | None = None,
        worth: Appraisal | None = None,
    ) -> list[Event]:
        totals = list(totals)
        priced = worth is not None and worth.priced
        prices_age = worth.book.age(now) if worth is not None and worth.stale and worth.book is not None else None
        values: list[tuple[Target, Mapping[str, Decimal | bool | None], float | None]] = []
        oldest: float | None = None
        for total in totals:
            age = max((ages or {}).get(h.venue, 0.0) for h in total.holdings) if total.stale else None
            oldest = _older(oldest, age)
            amounts: dict[str, Decimal | bool | None] = {"total": total.amount}
            if priced and worth is not None and total.asset in worth.assets:
                amounts["usd_value"] = worth.assets[total.asset].gross if total.asset not in worth.unpriced else None
            values.append((Target(TOTALS, TOTALS, "all venues", total.asset), amounts, _older(age, prices_age)))
        if priced and worth is not None:
            values.append((Target(TOTALS, TOTALS, "all venues", ""), _scope(worth.firm), _older(oldest, prices_age)))
        fresh = not any(t.stale for t in totals) and prices_age is None
        return self._check(TOTALS, values, now, fresh, (oldest, _older(oldest, prices_age)))

    def _check(
        self,
        venue: str,
        values: list[tuple[Target, Any, float | None]],
        now: float,
        fresh: bool,
        ages: tuple[float | None, float | None],
        fields: frozenset[str] | None = None,
    ) -> list[Event]:
        """Step every rule on this venue over the values given; `fields`: only the rules on these fields.
        `ages`: how old the data is that the venue's balances, and its values, would be judged on (None: fresh);
        an alert whose target is not in `values` is held with that age (a value unknown now that prices are
        too old to use is not back within its line, and says how old what it last saw is)."""
        events: list[Event] = []
        seen: set[tuple[int, Target]] = set()
        for index, rule in enumerate(self.rules):
            if not self._venue_matches(rule, venue) or (fields is not None and rule.field not in fields):
                continue
            for target, amounts, stale_age in values:
                if not self._matches(rule, target) or rule.field not in amounts:
                    continue
                value = amounts[rule.field]
                if value is None:
                    continue
                key = (index, target)
                seen.add(key)
                events.extend(self._step(key, rule, target, value, stale_age, now))
        in_scope = [k for k in self.active if k[1].venue == venue and k not in seen]
        for key in [k for k in in_scope if fields is None or self.rules[k[0]].field in fields]:
            if fresh:  # the balance is gone from a fresh answer: nothing is breaching any more
                events.extend(self._clear(key, now))
                continue
            age = ages[1] if self.rules[key[0]].field in VALUE_FIELDS else ages[0]
            if age is not None and self.active[key].stale_age != age:
                self.active[key] = replace(self.active[key], stale_age=age)
        return events

    def _step(
        self,
        key: tuple[int, Target],
        rule: Rule,
        target: Target,
        value: Decimal | bool,
        stale_age: float | None,
        now: float,
    ) -> list[Event]:
        if stale_age is None and rule.kind == "change" and not isinstance(value, bool):
            watch = self._watches.get(key)
            if watch is None:
                watch = self._watches[key] = _Watch(rule.percent)
            watch.observe(now, value, rule.window)
        detail = self._breach(key, rule, value)
        current = self.active.get(key)
        if detail is not None and current is None:
            alert = Alert(rule, target, value, now, detail, stale_age)
            self.active[key] = alert
            self.log.append(alert)
            return [Event(alert, fired=True)]
        if current is not None and detail is not None:
            if current.value != value or current.stale_age != stale_age or current.detail != detail:
                self.active[key] = replace(current, value=value, detail=detail, stale_age=stale_age)
        elif current is not None and detail is None:
            if stale_age is not None:  # stale data never clears: say it is stale instead
                self.active[key] = replace(current, stale_age=stale_age)
            else:
                return self._clear(key, now)
        return []

    def _clear(self, key: tuple[int, Target], now: float) -> list[Event]:
        current = self.active.pop(key)
        cleared = replace(current, cleared_at=now)
        self.log.append(cleared)
        return [Event(cleared, fired=False)]

    def _breach(self, key: tuple[int, Target], rule: Rule, value: Decimal | bool) -> str | None:
        if isinstance(value, bool) or rule.kind == "is":
            return f"{rule.field} is {'true' if value else 'false'}" if value is rule.expected else None
        if rule.kind == "below":
            return f"{fmt(value)} < {fmt(rule.threshold)}" if value < rule.threshold else None
        if rule.kind == "above":
            return f"{fmt(value)} > {fmt(rule.threshold)}" if value > rule.threshold else None
        watch = self._watches.get(key)
        if watch is None:
            return None
        for before in watch.extremes():
            if before == value:  # a calm balance: every extreme is the value now
                continue
            moved = sub(value, before).copy_abs()  # abs() would round to the default context
            if rule.percent:  # moved > |before| × threshold / 100, without a division to round
                breached = before != 0 and mul(moved, HUNDRED) > mul(before.copy_abs(), rule.threshold)
            else:
                breached = moved > rule.threshold
            if breached:
                return f"moved {fmt(sub(value, before))} from {fmt(before)} within {span(rule.window)}"
        return None

    def _venue_matches(self, rule: Rule, venue: str) -> bool:
        if rule.venue is None:
            return venue != TOTALS
        return rule.venue == venue

    def _matches(self, rule: Rule, target: Target) -> bool:
        if rule.field in SCOPE_VALUES and rule.venue != TOTALS:  # a venue's worth, or one account's
            return (rule.account is None) == (target.account_id == WHOLE_VENUE) and (
                rule.account is None or rule.account in (target.account_id, target.account)
            )
        if rule.account is not None and rule.account not in (target.account_id, target.account):
            return False
        if rule.asset is not None:
            if not target.asset:
                return False
            return rule.asset == target.asset or self.names.canonical(rule.asset) == self.names.canonical(target.asset)
        return True

    def flagged(self, venue: str) -> set[tuple[str, str]]:
        """(row key, field) of every active alert on this venue: the cells to mark."""
        return {(t.row_key, self.rules[i].field) for (i, t) in self.active if t.venue == venue}


def _scope(sums: Sums) -> dict[str, Decimal | bool | None]:
    return {"usd_total": sums.gross, "usd_loans": sums.loans, "usd_net": sums.net}


def _older(a: float | None, b: float | None) -> float | None:
    """The older of two ages, where None is fresh."""
    return b if a is None else a if b is None else max(a, b)
