"""The JSON contract of `--once --format json` and `serve`'s `/snapshot` (design.md): venues, accounts and
balances with every amount as the exact string the venue sent, what they are worth in US dollars (exact
too), and each venue's state, enough for `from_contract` to rebuild the snapshot an attached viewer shows.

CONTRACT is the version of this shape: a server and a viewer of different contracts refuse each other."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tui.assets import AssetNames
from tui.engine.prices import PriceBook
from tui.money import AmountError, Balance, fmt, fmt_result, parse_amount
from tui.monitor.valuation import LOAN, NO_WORTH, Appraisal, Sums, appraise
from tui.snapshot.model import AccountSnapshot, Snapshot, VenueSnapshot, iso
from tui.venues import KINDS
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.intx import LABELS
from tui.venues.kraken_prices import Price

CONTRACT = 2  # 1: balances only (0.1); 2: values, venue state, summaries and prices (0.2)


def to_contract(snapshot: Snapshot) -> dict[str, Any]:
    worth = snapshot.appraisal
    return {
        "generated_at": iso(snapshot.generated_at),
        "venues": [
            {
                "name": venue.name,
                "kind": venue.kind,
                "ok": venue.ok,
                "error": _message(venue.error or (None if venue.ok else venue.first_error())),
                "usd_value": _gross(worth.venues.get(venue.name) if worth else None, worth),
                "fetched_at": _iso(venue.fetched_at),
                "state": _state(venue),
                "accounts": [
                    {
                        "id": account.id,
                        "name": account.name,
                        "ok": account.ok,
                        "error": _message(account.error),
                        "error_kind": account.error.kind.value if account.error else None,
                        "fetched_at": _iso(account.fetched_at),
                        "usd_value": _gross(worth.accounts.get((venue.name, account.id)) if worth else None, worth),
                        "summary": _summary(account.summary),
                        "balances": [
                            balance_record(balance, worth, venue.name, account.id) for balance in account.balances
                        ],
                    }
                    for account in venue.accounts
                ],
            }
            for venue in snapshot.venues
        ],
        **firm_record(worth),
        "assets": dict(snapshot.names),
    }


def _state(venue: VenueSnapshot) -> dict[str, Any]:
    """How the venue is being polled: what a viewer needs to draw its header as the poller's own would."""
    return {
        "refreshing": venue.refreshing,
        "next_refresh_at": _iso(venue.next_refresh_at),
        "round_trip": venue.round_trip,
        "failures": venue.failures,
        "period": venue.period,
        "note": venue.note,
        "error_kind": venue.error.kind.value if venue.error else None,
    }


def _summary(summary: Mapping[str, Decimal | bool | None] | None) -> dict[str, str | bool | None] | None:
    if summary is None:
        return None
    return {k: v if v is None or isinstance(v, bool) else fmt(v) for k, v in summary.items()}


def _iso(ts: float | None) -> str | None:
    return iso(ts) if ts is not None else None


def balance_record(balance: Balance, worth: Appraisal | None, venue: str, account: str) -> dict[str, str | None]:
    """A balance as the contract writes it: its amounts as sent, then its price and values."""
    found = worth.worth(venue, account, balance.asset) if worth else NO_WORTH
    record = balance.as_record()
    record["usd_price"] = fmt(found.price.usd) if found.price else None
    record["usd_value"] = fmt_result(found.value) if found.value is not None else None
    if LOAN in balance.amounts:  # a venue with loans (INTX): what the loan is worth, as a liability
        record["loan_usd_value"] = fmt_result(found.loan_value) if found.loan_value is not None else None
    return record


def _gross(sums: Sums | None, worth: Appraisal | None) -> str | None:
    if sums is None or worth is None or not worth.priced:
        return None
    return fmt_result(sums.gross)


def firm_record(worth: Appraisal | None) -> dict[str, Any]:
    """The prices' state and what everything together is worth: gross, loans, net, and what is unpriced."""
    book = worth.book if worth else None
    priced = worth is not None and worth.priced
    return {
        "prices": {
            "source": book.source if book else "none",
            "fetched_at": iso(book.fetched_at) if book and book.fetched_at is not None else None,
            "error": _message(book.error) if book else None,
            "error_kind": book.error.kind.value if book and book.error else None,
            "period": book.period if book else None,
            "usd_prices": {a: {"usd": fmt(p.usd), "pair": p.pair} for a, p in sorted(book.prices.items())}
            if book
            else {},
            "unpriceable": sorted(book.unpriceable) if book else [],
        },
        "usd_total": fmt_result(worth.firm.gross) if priced and worth else None,
        "usd_loans": fmt_result(worth.firm.loans) if priced and worth else None,
        "usd_net": fmt_result(worth.firm.net) if priced and worth else None,
        "unpriced": list(worth.unpriced) if worth else [],
    }


def _message(error: VenueError | None) -> str | None:
    return None if error is None else error.message


# --- back from the wire: what an attached viewer shows ------------------------------------------------------


def from_contract(data: Mapping[str, Any]) -> Snapshot:
    """The snapshot a contract JSON describes, values appraised again from its prices with its asset names
    (the same code as the poller's: the same figures). Raises ContractError on anything else."""
    try:
        names = AssetNames(dict(data.get("assets") or {}))
        venues = tuple(_venue(v) for v in data["venues"])
        book = _book(data["prices"])
        at = _time(data["generated_at"]) or time.time()
    except (KeyError, TypeError, ValueError, AttributeError, AmountError) as exc:
        raise ContractError(f"not a balance-tui snapshot ({type(exc).__name__}: {str(exc)[:80]})") from None
    worth = appraise(venues, book, names, at) if book is not None else None
    return Snapshot(venues, at, worth, names.overrides)


class ContractError(ValueError):
    """What a server sent is not the contract this viewer reads."""


def _venue(data: Mapping[str, Any]) -> VenueSnapshot:
    kind = KINDS[data["kind"]]
    state = data.get("state") or {}
    return VenueSnapshot(
        name=str(data["name"]),
        kind=kind.kind,
        accounts=tuple(_account(a, kind.amounts) for a in data["accounts"]),
        error=_error(state.get("error_kind"), data.get("error")) if state.get("error_kind") else None,
        fetched_at=_time(data.get("fetched_at")),
        refreshing=bool(state.get("refreshing")),
        next_refresh_at=_time(state.get("next_refresh_at")),
        round_trip=state.get("round_trip"),
        failures=int(state.get("failures") or 0),
        period=state.get("period"),
        note=state.get("note"),
    )


def _account(data: Mapping[str, Any], amounts: tuple[str, ...]) -> AccountSnapshot:
    balances = tuple(
        Balance(
            str(b["asset"]),
            {name: parse_amount(b.get(name)) for name in amounts},
            {name: b[name] for name in LABELS if name in b},
        )
        for b in data["balances"]
    )
    summary = data.get("summary")
    return AccountSnapshot(
        str(data["id"]),
        str(data["name"]),
        balances,
        _time(data.get("fetched_at")),
        _error(data.get("error_kind"), data.get("error")) if data.get("error") else None,
        {k: v if v is None or isinstance(v, bool) else parse_amount(v) for k, v in summary.items()}
        if summary is not None
        else None,
    )


def _price(value: object) -> Decimal:
    """A USD price as the poller's own source takes them (kraken_prices.last_trades): an amount, not below zero."""
    price = parse_amount(value)
    if price is None or price < 0:
        raise AmountError(f"expected a price not below zero, got {str(value)[:40]!r}")
    return price


def _book(data: Mapping[str, Any]) -> PriceBook | None:
    if data.get("source") in (None, "none"):
        return None
    prices = {a: Price(_price(p["usd"]), str(p["pair"])) for a, p in (data.get("usd_prices") or {}).items()}
    error = _error(data.get("error_kind"), data.get("error")) if data.get("error") else None
    return PriceBook(
        str(data["source"]),
        prices,
        _time(data.get("fetched_at")),
        error,
        frozenset(data.get("unpriceable") or ()),
        float(data.get("period") or 60.0),  # ok-float: seconds, not an amount
    )


def _error(kind: str | None, message: str | None) -> VenueError:
    try:
        error_kind = ErrorKind(kind) if kind else ErrorKind.VENUE
    except ValueError:
        error_kind = ErrorKind.VENUE
    return VenueError(error_kind, str(message or "failing"))


def _time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
