"""`balance-tui book`: the book at a past instant (`--at`), or what changed between two (`--between`), from the
history, as a table, JSON or CSV. Never loads Textual.

`--at` is the `--once` document rebuilt (same keys, rendered by the same code: `to_contract` and `once.py`),
plus `as_of`: the instant, and for each venue and account the age of its data then and whether it was failing.
Exit codes: 0 the book is printed and every venue was answering at the instant; 1 printed, but some venue was
failing then (as `--once`); 2 no book: a usage or config error, no history, or an instant before it.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tui.assets import AssetNames
from tui.config import Config, load, parse
from tui.instants import iso_instant, parse_instant
from tui.money import align, dollars, fmt, fmt_result, sub
from tui.monitor.book import Book, BookError, book_at
from tui.monitor.history import HistoryError, connect, path_for
from tui.monitor.moves import Move, Moves, Split, moves
from tui.monitor.totals import is_stale
from tui.sinks.once import Cell, csv_document, json_document, table
from tui.snapshot.contract import to_contract
from tui.snapshot.model import iso
from tui.stderr import say
from tui.untrusted import csv_cell, json_text, visible

EXIT_OK, EXIT_FAILING, EXIT_NO_BOOK = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Statement:
    """A book written as a daily statement: when it was due, when written, and whether late (from history)."""

    due: float
    local: datetime  # the instant in the statement's time zone
    written: float
    late: bool
    down: bool = True  # late because the program was not running at the instant (else: running, but long after)

    def describe(self) -> str:
        if not self.late:
            return "at the instant"
        why = (
            "balance-tui was not running at the instant"
            if self.down
            else f"{_span(self.written - self.due)} after the instant: the machine was asleep or the program held up"
        )
        return f"late: written {iso(self.written)} from the history ({why})"


def config_for(config_path: Path) -> Config:
    """The config if there is one (its history and asset names), else the defaults (the platform's history)."""
    return load(config_path) if config_path.exists() else parse("")


def run_book(
    config_path: Path,
    *,
    at: str | None,
    between: list[str] | None,
    fmt: str,
    venue: str | None = None,
    asset: str | None = None,
) -> int:
    config = config_for(config_path)
    try:
        instants = [parse_instant(text) for text in (between or [at or ""])]
    except ValueError as exc:
        say(f"{'--between' if between else '--at'}: {exc}")
        return EXIT_NO_BOOK
    if not config.history.enabled:
        say(f"the history is off ([history] enabled = false in {config.path}): `book` has nothing to work from")
        return EXIT_NO_BOOK
    path = path_for(config)
    if not path.exists():
        say(f"no history at {path}: the live TUI and `serve` record it as they run; `book` has nothing to work from")
        return EXIT_NO_BOOK
    try:
        db = connect(path, say)  # a history others could read is made private, and said so
        try:
            books = [book_at(db, t, config, venue=venue, asset=asset) for t in instants]
        finally:
            db.close()
    except (BookError, HistoryError, sqlite3.Error) as exc:  # a damaged file is a message, never a traceback
        say(exc)
        return EXIT_NO_BOOK
    for book in books:
        for shown in book.snapshot.venues:
            error = shown.first_error()
            if error is not None:
                say(f"{shown.name}: failing at {iso_instant(book.at)}: {error.message}")
    if between:
        sys.stdout.write(render_between(moves(books[0], books[1], AssetNames(config.assets)), fmt))
    else:
        sys.stdout.write(render_at(books[0], fmt))
    return EXIT_OK if all(book.ok for book in books) else EXIT_FAILING


# --- the book at an instant --------------------------------------------------------------------------------


def render_at(book: Book, fmt: str, statement: Statement | None = None) -> str:
    """The book as asked: JSON (the `--once` document plus `as_of`), CSV (the `--once` rows, the instant first
    and each account's age and state last) or a table for people."""
    contract = at_document(book, statement)
    if fmt == "json":
        return json_document(contract)
    if fmt == "csv":
        return csv_document(contract, {"as_of": iso_instant(book.at)}, _csv_more(book, statement))
    return _table(book, contract, statement)


def at_document(book: Book, statement: Statement | None = None) -> dict[str, Any]:
    """The `--once --format json` document of the rebuilt snapshot, with `as_of` (and `statement`) after its
    `generated_at`."""
    contract = to_contract(book.snapshot)
    document = {"generated_at": contract.pop("generated_at"), "as_of": as_of(book)}
    if statement is not None:
        document["statement"] = {
            "due_at": iso_instant(statement.due),
            "local_time": statement.local.isoformat(),
            "timezone": str(statement.local.tzinfo),
            "written_at": iso_instant(statement.written),
            "late": statement.late,
            "written": statement.describe(),
        }
    return {**document, **contract}


def as_of(book: Book) -> dict[str, Any]:
    """The instant, and what the book knew then of each venue's answers and of the prices."""
    at = book.at
    venues = []
    for venue in book.snapshot.venues:
        answered = book.answered.get(venue.name)
        venues.append(
            {
                "name": venue.name,
                "answered_at": _instant(answered),
                "fetched_at": _instant(venue.fetched_at),
                "age_seconds": _age(venue.fetched_at, at),
                "failing": not venue.ok,
                "stale": is_stale(venue, at),
                "recorded": answered is not None,
                "accounts": [
                    {
                        "id": account.id,
                        "name": account.name,
                        "fetched_at": _instant(account.fetched_at),
                        "age_seconds": _age(account.fetched_at, at),
                        "failing": not account.ok,
                    }
                    for account in venue.accounts
                ],
            }
        )
    worth = book.snapshot.appraisal
    prices = worth.book if worth is not None else None
    return {
        "at": iso_instant(at),
        "history_begins": iso_instant(book.begins),
        "answers_recorded_from": _instant(book.answers_begin),
        "venues": venues,
        "prices": None
        if prices is None
        else {
            "answered_at": _instant(book.prices_answered),
            "fetched_at": _instant(prices.fetched_at),
            "age_seconds": _age(prices.fetched_at, at),
            "failing": prices.error is not None,
            "stale": prices.stale(at),
            "usable": prices.usable(at),
        },
        "notes": list(book.notes),
    }


def _instant(ts: float | None) -> str | None:
    return None if ts is None else iso_instant(ts)


def _age(ts: float | None, at: float) -> float | None:
    return None if ts is None else round(max(0.0, at - ts), 3)


def _csv_more(book: Book, statement: Statement | None) -> dict[str, Cell]:
    """Each account's state at the instant, per row; a statement's rows say whether it was written late (a
    column, not a comment line: every CSV reader takes it, and it survives concatenating the daily files)."""
    ages = {(v.name, a.id): (a.ok, _age(a.fetched_at, book.at)) for v in book.snapshot.venues for a in v.accounts}

    def account_ok(venue: dict[str, Any], account: dict[str, Any]) -> str:
        return "true" if ages[(venue["name"], account["id"])][0] else "false"

    def age(venue: dict[str, Any], account: dict[str, Any]) -> str | None:
        seconds = ages[(venue["name"], account["id"])][1]
        return None if seconds is None else f"{seconds:.3f}"

    more: dict[str, Cell] = {"account_ok": account_ok, "age_seconds": age}
    if statement is not None:
        more["written"] = lambda venue, account: statement.describe()
    return more


def _table(book: Book, contract: dict[str, Any], statement: Statement | None) -> str:
    at = book.at
    title = f"balance-tui book as of {iso_instant(at)} (from the history, made {iso(book.snapshot.generated_at)})"
    if statement is not None:
        title += f"\nstatement due {statement.local.isoformat()}: written {statement.describe()}"
    notes = {}
    for venue in book.snapshot.venues:
        parts = []
        if book.answered.get(venue.name) is None:
            parts.append("no answers recorded then: dated by its last recorded change")
        age = _age(venue.fetched_at, at)
        parts.append("no data yet" if age is None else f"its data {_span(age)} old at the instant")
        if is_stale(venue, at):
            parts.append("STALE")
        for account in venue.accounts:
            if not account.ok:
                account_age = _age(account.fetched_at, at)
                old = "no data" if account_age is None else f"data {_span(account_age)} old"
                why = f": {visible(account.error.message)}" if account.error else ""
                parts.append(f"{visible(account.name)} failing{why} ({old})")
        notes[venue.name] = "   " + "; ".join(parts)
    text = table(book.snapshot, contract, title, notes)
    lines = []
    prices = book.snapshot.appraisal.book if book.snapshot.appraisal is not None else None
    if prices is not None:
        age = _age(prices.fetched_at, at)
        state = "unusable (too old: nothing valued)" if not prices.usable(at) else "stale" if prices.stale(at) else ""
        lines.append(
            f"prices at the instant: {'never fetched' if age is None else _span(age) + ' old'}"
            + (f", {state}" if state else "")
        )
    lines += [f"note: {visible(note)}" for note in book.notes]
    return text + "".join(line + "\n" for line in lines)


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# --- what changed between two instants ---------------------------------------------------------------------

BETWEEN_CSV = (
    "venue",
    "kind",
    "account_id",
    "account_name",
    "asset",
    "quantity_field",
    "quantity_from",
    "quantity_to",
    "quantity_change",
    "usd_price_from",
    "usd_price_to",
    "usd_value_from",
    "usd_value_to",
    "usd_value_change",
    "quantity_move",
    "price_move",
    "loan_usd_value_from",
    "loan_usd_value_to",
    "loan_usd_value_change",
    "loan_quantity_move",
    "loan_price_move",
    "fields_moved",
)
BETWEEN_TEXT = frozenset(("venue", "kind", "account_id", "account_name", "asset", "quantity_field", "fields_moved"))


def render_between(found: Moves, fmt: str) -> str:
    document = between_document(found)
    if fmt == "json":
        return json_text(document, indent=1, ensure_ascii=True) + "\n"
    if fmt == "csv":
        return _between_csv(document)
    return _between_table(found, document)


def between_document(found: Moves) -> dict[str, Any]:
    """Every balance that moved, its fields and its value's two moves, and the totals' moves; exact strings."""
    priced = found.priced
    return {
        "generated_at": iso(found.after.snapshot.generated_at),
        "from": iso_instant(found.before.at),
        "to": iso_instant(found.after.at),
        "balances": [_move(move, priced) for move in found.balances],
        "unchanged": found.unchanged,
        "usd_total": _totals(found.holdings, priced, "quantity_moves", "price_moves"),
        "usd_loans": _totals(found.loans, priced, "quantity_moves", "price_moves"),
        "usd_net": _totals(found.net, priced, "quantity_moves", "price_moves"),
        "as_of": {"from": as_of(found.before), "to": as_of(found.after)},
        "notes": list(found.notes),
    }


def _move(move: Move, priced: bool) -> dict[str, Any]:
    q1, q2 = move.quantity
    record: dict[str, Any] = {
        "venue": move.venue,
        "kind": move.kind,
        "account_id": move.account_id,
        "account_name": move.account_name,
        "asset": move.asset,
        "quantity_field": move.quantity_field,
        "quantity": {"from": _amount(q1), "to": _amount(q2), "change": fmt_result(_change(q1, q2))},
        "fields": {name: {"from": _amount(a), "to": _amount(b)} for name, (a, b) in move.fields.items()},
        "usd_price": {"from": _price(move.price[0]), "to": _price(move.price[1])},
        "usd_value": _totals(move.value, priced, "quantity_move", "price_move"),
    }
    if move.loan is not None:
        record["loan_usd_value"] = _totals(move.loan, priced, "quantity_move", "price_move")
    return record


def _totals(split: Split, priced: bool, quantity: str, price: str) -> dict[str, str | None] | None:
    if not priced:
        return None
    return {
        "from": _value(split.before),
        "to": _value(split.after),
        "change": fmt_result(split.change),
        quantity: fmt_result(split.quantity_move),
        price: fmt_result(split.price_move),
    }


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


def _value(value: Decimal | None) -> str | None:
    return None if value is None else fmt_result(value)


def _price(price: Any) -> str | None:
    return None if price is None else fmt(price.usd)


def _change(a: Decimal | None, b: Decimal | None) -> Decimal:
    return sub(b or Decimal(0), a or Decimal(0))


def _between_csv(document: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=BETWEEN_CSV, lineterminator="\n")
    writer.writeheader()
    for move in document["balances"]:
        value, loan = move["usd_value"] or {}, move.get("loan_usd_value") or {}
        row = {
            **{k: move[k] for k in ("venue", "kind", "account_id", "account_name", "asset", "quantity_field")},
            "quantity_from": move["quantity"]["from"],
            "quantity_to": move["quantity"]["to"],
            "quantity_change": move["quantity"]["change"],
            "usd_price_from": move["usd_price"]["from"],
            "usd_price_to": move["usd_price"]["to"],
            "usd_value_from": value.get("from"),
            "usd_value_to": value.get("to"),
            "usd_value_change": value.get("change"),
            "quantity_move": value.get("quantity_move"),
            "price_move": value.get("price_move"),
            "loan_usd_value_from": loan.get("from"),
            "loan_usd_value_to": loan.get("to"),
            "loan_usd_value_change": loan.get("change"),
            "loan_quantity_move": loan.get("quantity_move"),
            "loan_price_move": loan.get("price_move"),
            "fields_moved": " ".join(move["fields"]),
        }
        writer.writerow({k: csv_cell(v) if k in BETWEEN_TEXT and v else v for k, v in row.items()})
    return out.getvalue()


def _between_table(found: Moves, document: dict[str, Any]) -> str:
    lines = [f"balance-tui book: what changed from {document['from']} to {document['to']}"]
    rows = [
        (
            f"{visible(m['venue'])} · {visible(m['account_name'])}",
            visible(m["asset"]),
            m["quantity"]["from"] or "",
            m["quantity"]["to"] or "",
            _dollars(m["usd_value"], "change"),
            _dollars(m["usd_value"], "quantity_move"),
            _dollars(m["usd_value"], "price_move"),
        )
        for m in document["balances"]
    ]
    header = ("where", "asset", "quantity then", "quantity now", "value Δ (USD)", "quantity move", "price move")
    if rows:
        columns = [list(c) for c in zip(*rows, strict=True)]
        columns[2], columns[3] = align(columns[2]), align(columns[3])
        widths = [max(len(header[i]), *(len(v) for v in columns[i])) for i in range(len(header))]
        lines.append("")
        lines.append(
            "  ".join(h.ljust(w) if i < 4 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True)))
        )
        for r in range(len(rows)):
            lines.append(
                "  ".join(
                    columns[i][r].ljust(widths[i]) if i < 4 else columns[i][r].rjust(widths[i])
                    for i in range(len(header))
                )
            )
    else:
        lines.append("\nno balance moved")
    lines.append("")
    if found.priced:
        for label, key in (("holdings", "usd_total"), ("loans", "usd_loans"), ("net", "usd_net")):
            t = document[key]
            lines.append(
                f"{label}: ${_money(t['from'])} → ${_money(t['to'])} ({_signed(t['change'])}): "
                f"quantity moves {_signed(t['quantity_moves'])}, price moves {_signed(t['price_moves'])}"
            )
    lines += [f"note: {visible(note)}" for note in (*found.notes, *found.before.notes, *found.after.notes)]
    if found.unchanged:
        lines.append(f"{found.unchanged} balance{'s' if found.unchanged != 1 else ''} unchanged")
    return "\n".join(lines) + "\n"


def _dollars(value: Mapping[str, Any] | None, key: str) -> str:
    if value is None or value.get(key) is None:
        return ""
    return _signed(value[key])


def _money(text: str | None) -> str:
    return dollars(Decimal(text)) if text is not None else "0.00"


def _signed(text: str) -> str:
    amount = Decimal(text)
    return ("-$" if amount < 0 else "+$") + dollars(abs(amount))
