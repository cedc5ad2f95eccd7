"""`--once`: one snapshot of every venue to stdout as a table, JSON or CSV. Never loads Textual."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from pathlib import Path

from .config import load
from .money import align
from .snapshot import Snapshot, iso, to_contract
from .venues import intx, kraken

TABLE_FIELDS = {
    "kraken-custody": ("balance", "hold_trade", "available"),
    "coinbase-intx": ("quantity", "hold", "collateral_value", "max_withdraw_amount", "loan"),
}
CSV_FIELDS = ("venue", "kind", "account_id", "account_name", "asset", *kraken.FIELDS, *intx.FIELDS)


def run_once(path: Path, fmt: str = "table") -> int:
    """Exit code per the contract: 0 every venue answered, 1 some did not (the rest still printed)."""
    from .engine import Engine

    config = load(path)

    async def snapshot() -> Snapshot:
        async with Engine(config) as engine:
            return await engine.once()

    result = asyncio.run(snapshot())
    sys.stdout.write(render(result, fmt))
    sys.stdout.flush()
    for venue in result.venues:
        error = venue.first_error()
        if error is not None:
            print(f"balance-tui: {venue.name}: {error.message}", file=sys.stderr)
    return 0 if result.ok else 1


def render(snapshot: Snapshot, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_contract(snapshot), indent=1) + "\n"
    if fmt == "csv":
        return _csv(snapshot)
    return _table(snapshot)


def _csv(snapshot: Snapshot) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for venue in snapshot.venues:
        for account in venue.accounts:
            for balance in account.balances:
                row: dict[str, str | None] = {
                    "venue": venue.name,
                    "kind": venue.kind,
                    "account_id": account.id,
                    "account_name": account.name,
                }
                row.update(balance.as_record())
                writer.writerow(row)
    return out.getvalue()


def _table(snapshot: Snapshot) -> str:
    blocks = [f"balance-tui snapshot at {iso(snapshot.generated_at)}"]
    for venue in snapshot.venues:
        error = venue.first_error()
        status = "ok" if venue.ok else f"FAILED: {error.message if error else 'no data'}"
        blocks.append(f"\n== {venue.name} ({venue.kind}): {status}")
        fields = TABLE_FIELDS.get(venue.kind, ())
        header = ("account", "asset", *fields)
        rows = [
            (account.name, balance.asset, *(balance.as_record().get(f) or "" for f in fields))
            for account in venue.accounts
            for balance in account.balances
        ]
        if not rows:
            blocks.append("   (no balances)")
            continue
        columns = list(zip(*rows, strict=True))
        aligned = [list(columns[0]), list(columns[1])] + [align([str(v) for v in col]) for col in columns[2:]]
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
    return "\n".join(blocks) + "\n"
