"""End-of-day statements over real runs: `serve` (its Server in a thread, over real HTTP) polls the ticking
simulator and records its history; its statements worker, on the real clock, writes the book at the configured
instant. The instants are set a few seconds ahead (or behind, for a restart) in a zone other than UTC, so that
a test waits seconds, not a day. What the files hold is compared with `balance-tui book --at` of the instant
(the real program, in a fresh process, run after) and with what `serve` served then; the files' names with the
instant's local date worked out here with zoneinfo."""

from __future__ import annotations

import csv
import io
import json
import stat
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import run_cli
from tests.test_book_run import Serving, until
from tui.instants import iso_instant
from tui.sim import Simulator

ZONE = "Asia/Kolkata"  # +05:30: an offset of half an hour, so that a zone read as UTC (or as whole hours) shows
STATEMENT_KEYS = {"due_at", "local_time", "timezone", "written_at", "late", "written"}


def _config(sim: Simulator, folder: Path, statements_at: datetime | None, name: str = "serve.toml") -> Path:
    config = folder / name
    sim.write_config(config, refresh_seconds=1)
    with config.open("a") as out:
        out.write(f'\n[history]\nenabled = true\npath = "{folder / "history.sqlite3"}"\n')
        if statements_at is not None:
            out.write(
                f'\n[statements]\nat = "{statements_at.strftime("%H:%M:%S")}"\ntimezone = "{ZONE}"\n'
                f'folder = "{folder / "statements"}"\n'
            )
    return config


def _local(at: float) -> datetime:
    return datetime.fromtimestamp(at, ZoneInfo(ZONE))


def _files(folder: Path, local: datetime) -> dict[str, Path]:
    name = f"book-{local.date().isoformat()}"
    return {fmt: folder / "statements" / f"{name}.{fmt}" for fmt in ("json", "csv")}


def _written(files: dict[str, Path]) -> bool:
    return all(path.exists() for path in files.values())


def _book(config: Path, at: float) -> dict[str, Any]:
    done = run_cli("book", "--at", iso_instant(at), "--format", "json", "--config", str(config))
    assert "Traceback" not in done.stderr and done.stdout, done.stderr
    document: dict[str, Any] = json.loads(done.stdout, parse_float=Decimal)
    return document


def _same_book(statement: dict[str, Any], book: dict[str, Any]) -> None:
    """The statement is the book of its instant, plus what says it is a statement."""
    assert set(statement) == set(book) | {"statement"}
    assert {k: v for k, v in statement.items() if k not in ("statement", "generated_at")} == {
        k: v for k, v in book.items() if k != "generated_at"
    }


def test_a_statement_is_written_at_its_instant_and_is_the_book_then(tmp_path: Path) -> None:
    """serve with [statements] at a time of day a few seconds ahead, in Asia/Kolkata: the files appear after the
    instant, named by its local date, private, not late, and hold the book of that instant (`book --at`, which
    test_book_run holds equal to what serve served then)."""
    with Simulator(seed=13, tick_seconds=0.25) as sim:
        sim.kraken_rate_limit = False
        instant = float(int(time.time()) + 8)  # whole seconds: the config names a time of day to the second
        config = _config(sim, tmp_path, _local(instant))
        serving = Serving(config)
        try:
            serving.capture("every venue answered")
            files = _files(tmp_path, _local(instant))
            until(lambda: _written(files), "the statement's files", timeout=90)
            written_seen = time.time()
        finally:
            assert serving.stop() == 0, serving.err.getvalue()
    statement = json.loads(files["json"].read_text(), parse_float=Decimal)
    assert statement["statement"]["due_at"] == iso_instant(instant) and statement["as_of"]["at"] == iso_instant(instant)
    assert set(statement["statement"]) == STATEMENT_KEYS
    assert statement["statement"]["late"] is False and statement["statement"]["written"] == "at the instant"
    assert statement["statement"]["local_time"] == _local(instant).isoformat()  # +05:30, the zone's own time
    written_at = datetime.fromisoformat(statement["statement"]["written_at"].replace("Z", "+00:00")).timestamp()
    assert instant <= written_at <= written_seen  # after its instant (it waits for it), before the files were seen
    assert all(v["ok"] for v in statement["venues"]) and statement["usd_total"] is not None
    _same_book(statement, _book(config, instant))
    for path in files.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(files["csv"].read_text())))
    assert (
        rows
        and {r["as_of"] for r in rows} == {iso_instant(instant)}
        and {r["written"] for r in rows} == {"at the instant"}
    )


def test_an_instant_missed_while_down_is_written_on_return_from_the_history_and_says_so(tmp_path: Path) -> None:
    """serve runs, then stops; the statement's instant fell during that run. Started again, now with
    [statements], it writes that day's statement at once from the history, marked late (JSON and every CSV
    row), equal to the book of the instant."""
    with Simulator(seed=17, tick_seconds=0.25) as sim:
        sim.kraken_rate_limit = False
        config = _config(sim, tmp_path, None)
        first = Serving(config)
        try:
            first.capture("every venue answered")
            instant = float(int(time.time()) + 2)
            until(lambda: first.capture("after the instant").at > instant + 1, "the instant passed in this run")
        finally:
            assert first.stop() == 0, first.err.getvalue()
        config = _config(sim, tmp_path, _local(instant), "again.toml")  # the same history, now with [statements]
        files = _files(tmp_path, _local(instant))
        assert not any(path.exists() for path in files.values())  # the first run had no [statements]
        second = Serving(config)
        try:
            until(lambda: _written(files), "the missed statement, on return", timeout=90)
        finally:
            assert second.stop() == 0, second.err.getvalue()
    statement = json.loads(files["json"].read_text(), parse_float=Decimal)
    assert statement["statement"]["due_at"] == iso_instant(instant) and statement["statement"]["late"] is True
    assert (
        statement["statement"]["written"].startswith("late: written ")
        and "from the history" in (statement["statement"]["written"])
    )
    assert all(v["ok"] for v in statement["venues"]) and statement["usd_total"] is not None  # the first run's data
    _same_book(statement, _book(config, instant))
    rows = list(csv.DictReader(io.StringIO(files["csv"].read_text())))
    assert rows and all(r["written"].startswith("late: ") for r in rows)
    said = second.out.getvalue() + second.err.getvalue()
    assert f"statement of {_local(instant).date()} written (late: from the history)" in said
