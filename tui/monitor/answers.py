"""What each answer said besides its amounts, as the history keeps it: a venue's refresh (its accounts, their
names, which failed and why, each one's last good answer, which balances it held and their labels) and a fetch
of the prices (which pair priced what, what failed, what has no USD market).

The amounts are in the history's `changes`; this is the rest of what a book at an instant needs. Written as a
small JSON "state", one row per distinct state (a venue that answers alike every five seconds adds one state,
however long it runs) and, per answer, its time, its last good data's time, its consecutive failures and its
period. Read back by `decode_*`, tolerant of anything: a state it cannot read is a `StateError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tui.money import loads
from tui.snapshot.model import VenueSnapshot
from tui.venues.errors import ErrorKind, VenueError

if TYPE_CHECKING:
    from tui.engine.prices import PriceBook

PRICES = "prices"  # the history's "venue" for the prices: their values in `changes`, their fetches in `answers`
WITH_VENUE = "venue"  # an account's last good answer is the venue's (the usual case: they answered together)
NEVER = "never"  # in a state: no good answer yet (the row's `fetched` column is then only `at`)


class StateError(ValueError):
    """A recorded state that is not one this release reads (written by hand, or damaged)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One answer as it goes into the history: `state` is the JSON text of what it said."""

    source: str  # the venue's name, or "prices"
    at: float  # when it answered: its data's time when it brought new data, else when the program took it
    fetched: float | None  # its last good data's time (None: never; the history then says so in the state)
    failures: int
    period: float | None
    state: str


@dataclass(frozen=True, slots=True)
class AccountState:
    id: str
    name: str
    error: VenueError | None
    fetched_at: float | None
    balances: tuple[tuple[str, Mapping[str, str | None]], ...]  # each asset held, with its labels, in order


@dataclass(frozen=True, slots=True)
class VenueAnswer:
    """A venue's answer, read back from the history."""

    venue: str
    at: float
    fetched_at: float | None
    failures: int
    period: float | None
    kind: str
    error: VenueError | None
    note: str | None
    accounts: tuple[AccountState, ...]


@dataclass(frozen=True, slots=True)
class PricesAnswer:
    """A fetch of the prices, read back from the history (the prices themselves are in `changes`)."""

    at: float
    fetched_at: float | None
    period: float | None
    source: str
    error: VenueError | None
    unpriceable: frozenset[str]
    pairs: Mapping[str, str]  # every asset priced then -> the market that priced it


def venue_row(snapshot: VenueSnapshot, taken: float, last_fetched: float | None) -> Row:
    """A venue's finished refresh, taken by the program at `taken`; `last_fetched`: the fetched_at of the
    venue's previous answer (so an answer that brought data is dated by it, one that failed by `taken`)."""
    fetched = snapshot.fetched_at
    accounts = [
        {
            "id": account.id,
            "name": account.name,
            "error": _error(account.error),
            "fetched": WITH_VENUE
            if account.fetched_at is not None and account.fetched_at == fetched
            else account.fetched_at,
            "balances": [[balance.asset, dict(balance.labels) or None] for balance in account.balances],
        }
        for account in snapshot.accounts
    ]
    body: dict[str, Any] = {
        "kind": snapshot.kind,
        "error": _error(snapshot.error),
        "note": snapshot.note,
        "accounts": accounts,
    }
    if fetched is None:
        body[NEVER] = True
    return Row(
        snapshot.name, _dated(fetched, last_fetched, taken), fetched, snapshot.failures, snapshot.period, _json(body)
    )


def prices_row(book: PriceBook, taken: float, last_fetched: float | None) -> Row:
    body: dict[str, Any] = {
        "source": book.source,
        "error": _error(book.error),
        "unpriceable": sorted(book.unpriceable),
        "pairs": {asset: price.pair for asset, price in sorted(book.prices.items())},
    }
    if book.fetched_at is None:
        body[NEVER] = True
    at = _dated(book.fetched_at, last_fetched, taken)
    return Row(PRICES, at, book.fetched_at, 0 if book.error is None else 1, book.period, _json(body))


def _dated(fetched: float | None, last_fetched: float | None, taken: float) -> float:
    """An answer that brought data is dated by that data's time; any other by when it was taken."""
    if fetched is not None and fetched != last_fetched and fetched <= taken:
        return fetched
    return taken


def _error(error: VenueError | None) -> list[str] | None:
    return None if error is None else [error.kind.value, error.message]


def _json(body: Mapping[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


# --- back from the history ---------------------------------------------------------------------------------


def decode_venue(
    venue: str, at: float, fetched: float | None, failures: int, period: float | None, state: str
) -> VenueAnswer:
    body = _body(state)
    fetched = None if body.get(NEVER) else fetched
    try:
        accounts = tuple(
            AccountState(
                _text(a["id"]),
                _text(a.get("name") or a["id"]),
                _venue_error(a.get("error")),
                fetched if a.get("fetched") == WITH_VENUE else _time(a.get("fetched")),
                tuple((_text(asset), _labels(labels)) for asset, labels in a.get("balances") or ()),
            )
            for a in body.get("accounts") or ()
        )
        return VenueAnswer(
            venue,
            at,
            fetched,
            int(failures or 0),
            period,
            _text(body["kind"]),
            _venue_error(body.get("error")),
            None if body.get("note") is None else _text(body["note"]),
            accounts,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"a recorded answer of {venue!r} cannot be read ({type(exc).__name__})") from None


def decode_prices(at: float, fetched: float | None, period: float | None, state: str) -> PricesAnswer:
    body = _body(state)
    fetched = None if body.get(NEVER) else fetched
    try:
        return PricesAnswer(
            at,
            fetched,
            period,
            _text(body["source"]),
            _venue_error(body.get("error")),
            frozenset(_text(a) for a in body.get("unpriceable") or ()),
            {_text(a): _text(p) for a, p in (body.get("pairs") or {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"a recorded fetch of the prices cannot be read ({type(exc).__name__})") from None


def _body(state: str) -> Mapping[str, Any]:
    try:
        body = loads(state)
    except (ValueError, TypeError):
        raise StateError("a recorded answer is not JSON") from None
    if not isinstance(body, dict):
        raise StateError("a recorded answer is not a JSON object")
    return body


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _labels(value: object) -> Mapping[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(value)
    return {_text(k): None if v is None else _text(v) for k, v in value.items()}


def _venue_error(value: object) -> VenueError | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise TypeError(value)
    kind, message = (_text(part) for part in value)
    try:
        error_kind = ErrorKind(kind)
    except ValueError:
        error_kind = ErrorKind.VENUE
    return VenueError(error_kind, message)


def _time(value: object) -> float | None:
    """A recorded time: JSON numbers are read as Decimal (nothing here goes through float unasked)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError(value)
    return float(value)  # ok-float: seconds since the epoch, not an amount
