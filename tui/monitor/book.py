"""The book at an instant, rebuilt from the history: each venue as its last answer at or before the instant
left it (its accounts, which were failing, each one's last good answer), every balance of those answers with
every field's exact digits as last recorded by then, and the prices of the last fetch by then.

What comes out is the live program's own objects (VenueSnapshot, AccountSnapshot, Balance, PriceBook), valued
by `appraise` at the instant: every sink renders it with the code that renders a live snapshot, so `book --at`
and `--once` cannot drift. Prices older than the stale rule then in force (the period recorded with them) are
stale, or unusable, exactly as they were on the screen at that instant.

An instant before the history recorded answers (a file written by an older release) is rebuilt from the amounts
alone, and `notes` says what that leaves unknown.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from tui.assets import AssetNames
from tui.config import Config
from tui.engine.prices import PriceBook
from tui.instants import iso_instant
from tui.money import AmountError, Balance, parse_amount
from tui.monitor.answers import PRICES, StateError, VenueAnswer, decode_prices, decode_venue
from tui.monitor.history import answer_at, answer_sources, answers_begin, first_record, recorded_keys, value_at
from tui.monitor.valuation import appraise
from tui.snapshot.model import AccountSnapshot, Snapshot, VenueSnapshot
from tui.venues import INTX_AMOUNTS, KINDS, KRAKEN_AMOUNTS
from tui.venues.kraken_prices import Price

USD_PRICE = "usd_price"  # the field the prices are recorded under (monitor.prices_as_venue)


class BookError(Exception):
    """No book can be given for that instant or selection: one line for the operator."""


@dataclass(frozen=True, slots=True)
class Book:
    at: float
    snapshot: Snapshot  # the venues and their worth at the instant; generated_at is when the book was made
    answered: dict[str, float | None]  # each venue's last answer (good or failed) by then; None: not recorded
    prices_answered: float | None  # the last fetch of the prices by then (None: not recorded)
    begins: float  # the history's first record
    answers_begin: float | None  # when the history began recording answers (None: never, an older file)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """Every venue was answering at the instant (the exit code of `--once`: 0, else 1)."""
        return self.snapshot.ok


def book_at(
    db: sqlite3.Connection,
    at: float,
    config: Config,
    *,
    venue: str | None = None,
    asset: str | None = None,
    now: float | None = None,
) -> Book:
    """The book at `at` (seconds since the epoch) of the history in `db`; `venue` and `asset` narrow it (an asset
    as a venue spells it or by its totals name). Raises BookError for an instant before the history, or a
    selection that holds nothing then."""
    begins = first_record(db)
    if begins is None:
        raise BookError("the history holds nothing yet: the live TUI and `serve` record it as they run")
    if at < begins:
        raise BookError(
            f"{iso_instant(at)} is before the history begins ({iso_instant(begins)}): nothing was recorded then"
        )
    names = AssetNames(config.assets)
    started = answers_begin(db)
    notes: list[str] = []
    try:
        answers = [a for source in answer_sources(db) if source != PRICES if (a := _venue_answer(db, source, at))]
    except StateError as exc:
        raise BookError(str(exc)) from None
    venues = [_venue(db, answer) for answer in answers if answer.kind in KINDS]
    answered: dict[str, float | None] = {a.venue: a.at for a in answers}
    if started is None or at < started:
        notes.append(_before_answers(started))
        known = {v.name for v in venues}
        for old in _from_changes(db, at, config):
            if old.name not in known:
                venues.append(old)
                answered[old.name] = None
    book, prices_answered = _prices(db, at, config, notes)
    if venue is not None:
        venues = [v for v in venues if v.name == venue]
        if not venues:
            there = ", ".join(sorted(answered)) or "none"
            raise BookError(f"no venue named {venue!r} in the history at {iso_instant(at)} (there: {there})")
    if asset is not None:
        venues = [_only(v, asset, names) for v in venues]
        if not any(a.balances for v in venues for a in v.accounts):
            _known_asset(db, asset, names)
    order = {v.name: i for i, v in enumerate(config.venues)}
    venues.sort(key=lambda v: order.get(v.name, len(order)))
    made = time.time() if now is None else now
    worth = appraise(venues, book, names, at) if book is not None else None
    snapshot = Snapshot(tuple(venues), made, worth, config.assets)
    return Book(at, snapshot, answered, prices_answered, begins, started, tuple(notes))


def _venue_answer(db: sqlite3.Connection, source: str, at: float) -> VenueAnswer | None:
    row = answer_at(db, source, at)
    if row is None:
        return None
    return decode_venue(row.source, row.at, row.fetched, row.failures, row.period, row.state)


def _venue(db: sqlite3.Connection, answer: VenueAnswer) -> VenueSnapshot:
    """A venue as its answer left it: each account's balances as of that account's last good answer."""
    amounts = KINDS[answer.kind].amounts
    accounts = tuple(
        AccountSnapshot(
            account.id,
            account.name,
            tuple(
                Balance(held, _amounts(db, answer.venue, account.id, held, amounts, account.fetched_at), labels)
                for held, labels in account.balances
            )
            if account.fetched_at is not None
            else (),
            account.fetched_at,
            account.error,
        )
        for account in answer.accounts
    )
    return VenueSnapshot(
        answer.venue,
        answer.kind,
        accounts,
        error=answer.error,
        fetched_at=answer.fetched_at,
        failures=answer.failures,
        period=answer.period,
        note=answer.note,
    )


def _amounts(
    db: sqlite3.Connection, venue: str, account: str, asset: str, fields: Iterable[str], at: float
) -> dict[str, Decimal | None]:
    return {name: _amount(value_at(db, venue, account, asset, name, at)) for name in fields}


def _amount(value: str | None) -> Decimal | None:
    """A recorded value as an amount; None for one that is none (gone, or not an amount: written by hand)."""
    try:
        return parse_amount(value)
    except AmountError:
        return None


def _prices(
    db: sqlite3.Connection, at: float, config: Config, notes: list[str]
) -> tuple[PriceBook | None, float | None]:
    """The prices in force at the instant: the last fetch by then, each price as last recorded by that fetch."""
    row = answer_at(db, PRICES, at)
    if row is not None:
        try:
            fetch = decode_prices(row.at, row.fetched, row.period, row.state)
        except StateError as exc:
            raise BookError(str(exc)) from None
        prices: dict[str, Price] = {}
        if fetch.fetched_at is not None:
            for asset, pair in fetch.pairs.items():
                usd = _amount(value_at(db, PRICES, fetch.source, asset, USD_PRICE, fetch.fetched_at))
                if usd is not None:
                    prices[asset] = Price(usd, pair)
        period = fetch.period if fetch.period is not None else config.prices.refresh_seconds
        return PriceBook(fetch.source, prices, fetch.fetched_at, fetch.error, fetch.unpriceable, period), fetch.at
    recorded = [key for key in recorded_keys(db, at) if key[0] == PRICES and key[3] == USD_PRICE]
    if not recorded:
        notes.append("no prices were recorded by then: nothing is valued")
        return None, None
    source = recorded[-1][1]
    prices = {}
    for _, account, asset, _ in recorded:
        usd = _amount(value_at(db, PRICES, account, asset, USD_PRICE, at))
        if account == source and usd is not None:
            prices[asset] = Price(usd, "")
    last = db.execute(
        "SELECT max(at) FROM changes WHERE venue = ? AND account = ? AND at <= ?", (PRICES, source, at)
    ).fetchone()[0]
    notes.append("the prices' fetch times were not recorded then: their age is that of the last price that moved")
    return PriceBook(source, prices, last, None, frozenset(), config.prices.refresh_seconds), None


def _from_changes(db: sqlite3.Connection, at: float, config: Config) -> list[VenueSnapshot]:
    """The venues at an instant before answers were recorded: every balance with a value by then, each account
    dated by its last recorded change (its last answer is not known), named by its id."""
    kinds = {v.name: v.kind.kind for v in config.venues}
    held: dict[str, dict[str, dict[str, set[str]]]] = {}  # venue -> account -> asset -> fields
    for venue, account, asset, name in recorded_keys(db, at):
        if venue != PRICES:
            held.setdefault(venue, {}).setdefault(account, {}).setdefault(asset, set()).add(name)
    venues = []
    for venue, accounts in held.items():
        kind = kinds.get(venue) or _kind_of({f for assets in accounts.values() for fs in assets.values() for f in fs})
        if kind is None:
            continue
        fields = KINDS[kind].amounts
        snapshots = []
        for account, assets in accounts.items():
            balances = []
            for asset in assets:
                amounts = _amounts(db, venue, account, asset, fields, at)
                if any(value is not None for value in amounts.values()):
                    balances.append(Balance(asset, amounts))
            last = db.execute(
                "SELECT max(at) FROM changes WHERE venue = ? AND account = ? AND at <= ?", (venue, account, at)
            ).fetchone()[0]
            snapshots.append(AccountSnapshot(account, account, tuple(balances), last))
        fetched = max((a.fetched_at for a in snapshots if a.fetched_at is not None), default=None)
        venues.append(VenueSnapshot(venue, kind, tuple(snapshots), fetched_at=fetched))
    return venues


def _kind_of(fields: set[str]) -> str | None:
    """A venue kind from the fields recorded for it (a venue no longer in the config)."""
    if fields & set(INTX_AMOUNTS):
        return "coinbase-intx"
    if fields & set(KRAKEN_AMOUNTS):
        return "kraken-custody"
    return None


def _only(venue: VenueSnapshot, asset: str, names: AssetNames) -> VenueSnapshot:
    """The venue with only the balances of `asset` (as spelled there, or by its totals name)."""
    accounts = tuple(
        replace(a, balances=tuple(b for b in a.balances if asset in (b.asset, names.canonical(b.asset))))
        for a in venue.accounts
    )
    return replace(venue, accounts=accounts)


SHOWN_ASSETS = 20  # assets named in the message for an --asset the history never held


def _known_asset(db: sqlite3.Connection, asset: str, names: AssetNames) -> None:
    """An asset held at no instant of the history is a misspelling (BookError, naming what was held), not an
    empty book: an empty book is the answer only for an asset held at some other instant."""
    held = {name for (name,) in db.execute("SELECT DISTINCT asset FROM changes WHERE venue != ?", (PRICES,))}
    if asset in held | {names.canonical(name) for name in held}:
        return
    known = sorted({names.canonical(name) for name in held})
    shown = ", ".join(known[:SHOWN_ASSETS]) + (
        f" and {len(known) - SHOWN_ASSETS} more" if len(known) > SHOWN_ASSETS else ""
    )
    raise BookError(f"no asset named {asset!r} was ever held in the history (held: {shown or 'none'})")


def _before_answers(started: float | None) -> str:
    since = f"before {iso_instant(started)}" if started is not None else "in this file"
    return (
        f"the history recorded no answers {since} (an older release): account names, failures and the time of each "
        "venue's last answer are not known at this instant; each account is dated by its last recorded change"
    )
