"""`--once`: one snapshot of every venue to stdout as a table, JSON or CSV. Never loads Textual."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from tui.config import load
from tui.money import align, dollars
from tui.snapshot.contract import to_contract
from tui.snapshot.model import Snapshot, iso
from tui.stderr import say
from tui.untrusted import csv_cell, json_text, visible
from tui.venues import intx, kraken

TABLE_FIELDS = {
    "kraken-custody": ("balance", "hold_trade", "available"),
    "coinbase-intx": ("quantity", "hold", "collateral_value", "max_withdraw_amount", "loan"),
}
WORTH_FIELDS = ("usd_price", "usd_value", "loan_usd_value")
CSV_FIELDS = ("venue", "kind", "account_id", "account_name", "asset", *kraken.FIELDS, *intx.FIELDS, *WORTH_FIELDS)
CSV_TEXT = frozenset(("venue", "kind", "account_id", "account_name", "asset", *intx.LABELS))  # words, not amounts


def run_once(path: Path, fmt: str = "table") -> int:
    """Exit code per the contract: 0 every venue answered, 1 some did not (the rest still printed)."""
    from tui.engine.engine import Engine

    config = load(path)

    async def snapshot() -> Snapshot:
        async with Engine(config) as engine:
            return await engine.once()

    return print_snapshot(asyncio.run(snapshot()), fmt)


def print_snapshot(result: Snapshot, fmt: str) -> int:
    """Print it as asked, each failing venue's cause on stderr; the exit code of the contract."""
    sys.stdout.write(render(result, fmt))
    sys.stdout.flush()
    for venue in result.venues:
        error = venue.first_error()
        if error is not None:
            say(f"{venue.name}: {error.message}")
    return 0 if result.ok else 1


def render(snapshot: Snapshot, fmt: str) -> str:
    contract = to_contract(snapshot)
    if fmt == "json":
        return json_document(contract)
    if fmt == "csv":
        return csv_document(contract)
    return table(snapshot, contract)


def json_document(contract: dict[str, Any]) -> str:
    return json_text(contract, indent=1, ensure_ascii=True) + "\n"


Cell = Callable[[dict[str, Any], dict[str, Any]], str | None]  # (venue, account) of the contract -> a cell


def csv_document(
    contract: dict[str, Any], lead: Mapping[str, str] | None = None, more: Mapping[str, Cell] | None = None
) -> str:
    """One row per balance, every amount and value exact (as in the JSON); text cells inert in a spreadsheet.
    `lead`: columns first, the same on every row; `more`: columns last, each cell by its account (both ours,
    never text from outside)."""
    import csv  # here: only --format csv needs it

    out = io.StringIO()
    first, last = dict(lead or {}), dict(more or {})
    writer = csv.DictWriter(out, fieldnames=(*first, *CSV_FIELDS, *last), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for venue in contract["venues"]:
        for account in venue["accounts"]:
            extra = {name: cell(venue, account) for name, cell in last.items()}
            for balance in account["balances"]:
                where = {"venue": venue["name"], "kind": venue["kind"], "account_id": account["id"]}
                row = {**where, "account_name": account["name"], **balance}
                cells = {k: csv_cell(v) if k in CSV_TEXT and v is not None else v for k, v in row.items()}
                writer.writerow({**first, **cells, **extra})
    return out.getvalue()


def table(
    snapshot: Snapshot, contract: dict[str, Any], title: str | None = None, notes: Mapping[str, str] | None = None
) -> str:
    """For people: amounts aligned on the point, values in dollars to the cent, totals at the end. `title`
    replaces the first line; `notes`: a line under a venue's heading, by venue name (ours, already visible)."""
    blocks = [title or f"balance-tui snapshot at {iso(snapshot.generated_at)}"]
    for venue, shown in zip(snapshot.venues, contract["venues"], strict=True):
        error = venue.first_error()
        status = "ok" if venue.ok else f"FAILED: {visible(error.message) if error else 'no data'}"
        worth = f", worth ${_dollars(shown['usd_value'])}" if shown["usd_value"] is not None else ""
        blocks.append(f"\n== {visible(venue.name)} ({venue.kind}): {status}{worth}")
        if notes and venue.name in notes:
            blocks.append(notes[venue.name])
        fields = TABLE_FIELDS.get(venue.kind, ())
        header = ("account", "asset", *fields, "value (USD)")
        rows = [
            (
                visible(account["name"]),
                visible(balance["asset"]),
                *(balance.get(f) or "" for f in fields),
                _value(balance),
            )
            for account in shown["accounts"]
            for balance in account["balances"]
        ]
        if not rows:
            blocks.append("   (no balances)")
            continue
        columns = list(zip(*rows, strict=True))
        aligned = [list(columns[0]), list(columns[1])] + [align([str(v) for v in col]) for col in columns[2:-1]]
        aligned.append(list(columns[-1]))
        widths = [max(len(header[i]), *(len(v) for v in aligned[i])) for i in range(len(header))]
        lines = [
            "  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True)))
        ]
        for r in range(len(rows)):
            lines.append(
                "  ".join(
                    aligned[i][r].ljust(widths[i]) if i < 2 else aligned[i][r].rjust(widths[i])
                    for i in range(len(header))
                )
            )
        blocks.append("\n".join(lines))
    blocks.append(_worth_lines(contract))
    return "\n".join(blocks) + "\n"


def _value(balance: dict[str, Any]) -> str:
    if balance.get("usd_value") is not None:
        return _dollars(balance["usd_value"])
    return "unpriced" if balance.get("usd_price") is None else ""


def _worth_lines(contract: dict[str, Any]) -> str:
    prices = contract["prices"]
    if prices["source"] == "none":
        return '\nvalues: off ([prices] source = "none")'
    lines = ["", f"prices: {prices['source']}, fetched {prices['fetched_at'] or 'never'}"]
    if prices["error"]:
        lines.append(f"prices failing: {visible(prices['error'])}")
    if contract["usd_total"] is not None:
        lines.append(
            f"worth: ${_dollars(contract['usd_total'])} gross, ${_dollars(contract['usd_loans'])} loans, "
            f"${_dollars(contract['usd_net'])} net"
        )
    if contract["unpriced"]:
        lines.append(f"unpriced (not counted): {visible(', '.join(contract['unpriced']))}")
    return "\n".join(lines)


def _dollars(text: str) -> str:
    return dollars(Decimal(text))
