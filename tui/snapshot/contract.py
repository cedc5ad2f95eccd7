"""The JSON contract of `--once --format json` (design.md): venues, accounts and balances with every
amount as the exact string the venue sent, and what they are worth in US dollars, exact too."""

from __future__ import annotations

from typing import Any

from tui.money import Balance, fmt, fmt_result
from tui.monitor.valuation import LOAN, NO_WORTH, Appraisal, Sums
from tui.snapshot.model import Snapshot, iso
from tui.venues.errors import VenueError


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
                "accounts": [
                    {
                        "id": account.id,
                        "name": account.name,
                        "ok": account.ok,
                        "error": _message(account.error),
                        "usd_value": _gross(worth.accounts.get((venue.name, account.id)) if worth else None, worth),
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
    }


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
        },
        "usd_total": fmt_result(worth.firm.gross) if priced and worth else None,
        "usd_loans": fmt_result(worth.firm.loans) if priced and worth else None,
        "usd_net": fmt_result(worth.firm.net) if priced and worth else None,
        "unpriced": list(worth.unpriced) if worth else [],
    }


def _message(error: VenueError | None) -> str | None:
    return None if error is None else error.message
