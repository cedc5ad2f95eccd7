"""`balance-tui history`: what the history database holds, as a table, JSON or CSV. Never loads Textual."""

from __future__ import annotations

import csv
import io
import sqlite3
import sys
import time
from pathlib import Path

from tui.config import ConfigError, load, parse_span
from tui.instants import parse_instant
from tui.money import AmountError, align, parse_amount
from tui.monitor.history import HistoryError, Point, connect, default_path, path_for, query
from tui.snapshot.model import iso
from tui.stderr import say
from tui.untrusted import csv_cell, json_text, visible


def parse_since(text: str, now: float | None = None) -> float:
    """`30m`, `24h`, `7d` before now, or an ISO date or time (UTC unless it says otherwise)."""
    now = time.time() if now is None else now
    try:
        return now - parse_span(text)
    except ValueError:
        pass
    try:
        return parse_instant(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a span such as 30m, 24h or 7d, or a date such as 2026-11-21"
        ) from None


def history_path(config_path: Path) -> Path:
    """The configured path if a config says so, else the platform's data directory."""
    return path_for(load(config_path)) if config_path.exists() else default_path()


def run_history(config_path: Path, *, venue: str | None, asset: str | None, since: str | None, fmt: str) -> int:
    try:
        start = parse_since(since) if since else None
    except ValueError as exc:
        raise ConfigError(None, str(exc)) from None
    path = history_path(config_path)
    if not path.exists():
        say(f"no history yet at {path}: the live TUI records it as it runs")
        return 0
    try:
        db = connect(path, say)  # a history file others could read is made private, and said so
        points = query(db, venue=venue, asset=asset, since=start)
    except (HistoryError, sqlite3.Error) as exc:  # a damaged file is a message, never a traceback
        say(exc)
        return 1
    sys.stdout.write(render(points, fmt))
    return 0


def render(points: list[Point], fmt: str) -> str:
    """The rows as asked. A history file is text from outside too (written by an older release, or by hand):
    its words are made visible in the table and inert in the CSV, and a value that is no amount is shown as
    words, never aligned as digits."""
    if fmt == "json":
        return json_text([_record(p) for p in points], indent=1) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(
            out, fieldnames=("at", "venue", "account", "asset", "field", "value"), lineterminator="\n"
        )
        writer.writeheader()
        for point in points:
            record = _record(point)
            writer.writerow({k: v if v is None or _is_amount(v, k) else csv_cell(v) for k, v in record.items()})
        return out.getvalue()
    if not points:
        return "no changes recorded for that selection\n"
    columns = [
        ["time", *(iso(p.at) for p in points)],
        ["venue", *(visible(p.venue) for p in points)],
        ["account", *(visible(p.account) for p in points)],
        ["asset", *(visible(p.asset) for p in points)],
        ["field", *(visible(p.field) for p in points)],
    ]
    values = align([_value_text(p.value) for p in points])
    columns.append(["value", *(v if v.strip() else "(gone)" for v in values)])
    widths = [max(len(cell) for cell in column) for column in columns]
    lines = [
        "  ".join(column[i].ljust(w) for column, w in zip(columns, widths, strict=True)).rstrip()
        for i in range(len(points) + 1)
    ]
    return "\n".join(lines) + "\n"


def _is_amount(text: str, column: str) -> bool:
    """Whether a CSV cell is an amount left as it is: the time we wrote, or a value that parses as one."""
    if column == "at":
        return True
    if column != "value":
        return False
    try:
        return parse_amount(text) is not None
    except AmountError:
        return False


def _value_text(value: str | None) -> str:
    if value is None:
        return ""
    return value if _is_amount(value, "value") else visible(value)


def _record(point: Point) -> dict[str, str | None]:
    return {
        "at": iso(point.at),
        "venue": point.venue,
        "account": point.account,
        "asset": point.asset,
        "field": point.field,
        "value": point.value,
    }
