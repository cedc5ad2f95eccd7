"""Balance history: only changes are recorded, a kill -9 never corrupts it, and `balance-tui history` reads it."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_config
from tests.scenes import until
from tui.config import parse
from tui.money import Balance
from tui.monitor.changes import ChangeTracker
from tui.monitor.history import CACHE_KIB, History, connect, query
from tui.sim import Simulator
from tui.snapshot.model import AccountSnapshot, VenueSnapshot
from tui.ui.app import BalanceApp

ROOT = Path(__file__).resolve().parent.parent


def _venue(balance: str, at: float) -> VenueSnapshot:
    b = Decimal(balance)
    account = AccountSnapshot(
        "V1", "Treasury", (Balance("XBT", {"balance": b, "hold_trade": Decimal("0"), "available": b}),), at
    )
    return VenueSnapshot("Kraken", "kraken-custody", (account,))


def _count(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM changes").fetchone()[0])


def test_only_changes_are_recorded_even_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    history, tracker = History(path), ChangeTracker()
    for i in range(200):  # 200 refreshes, the balance moving twice
        value = "1.5" if i < 50 else "1.75" if i < 120 else "1.7500"
        history.record(tracker.diff(_venue(value, 1000.0 + i)))
    history.flush()
    history.close()
    assert _count(path) == 3 + 2 + 2  # the first answer's 3 fields, then balance and available twice
    again = History(path)  # a restart: its tracker sees everything as new, the store knows better
    again.record(ChangeTracker().diff(_venue("1.7500", 2000.0)))
    again.flush()
    again.close()
    assert _count(path) == 7
    values = [p.value for p in query(connect(path), asset="XBT") if p.field == "balance"]
    assert values == ["1.5", "1.75", "1.7500"]


def test_a_batch_that_cannot_be_written_is_said_and_the_writer_carries_on(tmp_path: Path) -> None:
    """Text SQLite cannot take (half a surrogate pair, had it come this far) fails its batch, not the writer;
    what that batch held is tried again with the next change."""
    path = tmp_path / "history.sqlite3"
    history = History(path)
    bad = VenueSnapshot("Kraken\ud800", "kraken-custody", _venue("1.5", 1000.0).accounts)
    history.record(ChangeTracker().diff(_venue("1.5", 1000.0)) + ChangeTracker().diff(bad))  # one batch
    history.flush()
    assert history.error is not None and "history not written" in history.error
    tracker = ChangeTracker()
    history.record(tracker.diff(_venue("1.5", 1001.0)))  # what the failed batch held: not written yet
    history.record(tracker.diff(_venue("2.5", 1002.0)))
    history.flush()
    history.close()
    assert history.error is None
    values = [p.value for p in query(connect(path), asset="XBT") if p.field == "balance"]
    assert values == ["1.5", "2.5"]


def test_a_series_starts_with_the_value_in_force(tmp_path: Path) -> None:
    history, tracker = History(tmp_path / "h.sqlite3"), ChangeTracker()
    for at, value in ((100.0, "1"), (200.0, "2"), (300.0, "3")):
        history.record(tracker.diff(_venue(value, at)))
    history.flush()
    assert history.series("Kraken", "V1", "XBT", "balance", since=250.0) == [
        (250.0, Decimal("2")),
        (300.0, Decimal("3")),
    ]
    history.close()


def test_a_recorded_value_that_is_no_amount_is_left_out_of_a_series(tmp_path: Path) -> None:
    """An older release recorded what a venue sent, "9e999999" included: drawn, it would raise deep inside."""
    path = tmp_path / "h.sqlite3"
    history, tracker = History(path), ChangeTracker()
    for at, value in ((100.0, "1"), (300.0, "3")):
        history.record(tracker.diff(_venue(value, at)))
    history.flush()
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT * FROM changes WHERE value = '3'").fetchone()
        for at, bad in ((150.0, "9e999999"), (200.0, "NaN")):
            db.execute("INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?)", (at, *row[1:5], bad))
    assert history.series("Kraken", "V1", "XBT", "balance", since=50.0) == [
        (100.0, Decimal("1")),
        (300.0, Decimal("3")),
    ]
    history.close()


WRITER = """
import sys, time
from decimal import Decimal

root, path, acked, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, root)
from tui.monitor.changes import ChangeTracker
from tui.monitor.history import History
from tui.money import Balance
from tui.snapshot.model import AccountSnapshot, VenueSnapshot

history, tracker = History(path), ChangeTracker()
db = history._db
db.execute("PRAGMA cache_size = 10")  # a tiny page cache: the big refreshes spill to disk before COMMIT
state = {"acked": 0, "armed": False, "begin": 0}


def written() -> int:  # bytes this process has written so far
    with open("/proc/self/io") as io:
        return int(next(line for line in io if line.startswith("wchar:")).split()[1])


def trace(sql: str) -> None:
    if sql.strip().upper() == "BEGIN":
        state["begin"] = written()
    elif sql.strip().upper() == "COMMIT" and state["armed"]:
        print("open", state["acked"], written() - state["begin"], flush=True)
        time.sleep(3600)  # the transaction stays open until the test kills us


db.set_trace_callback(trace)
for i in range(acked + 1):  # refresh i: every field of every balance moves, answered at 1000 + i
    balances = tuple(
        Balance(f"A{n}", {"balance": Decimal(f"{i}.{n}"), "hold_trade": Decimal(i), "available": Decimal(f"{i}.{n}1")})
        for n in range(size)
    )
    venue = VenueSnapshot("Kraken", "kraken-custody", (AccountSnapshot("V1", "T", balances, 1000.0 + i),))
    state["armed"] = i == acked
    history.record(tracker.diff(venue))
    if i < acked:
        history.flush(60)
        assert history.error is None and history._queue.unfinished_tasks == 0, history.error
        state["acked"] += 1
time.sleep(3600)
"""
REFRESH_SIZE = 3000  # balances per refresh, three fields each: far more pages than the writer's cache holds


def _expected(refresh: int) -> set[tuple[float, str, str, str]]:
    """Refresh `refresh` of WRITER, row by row (at, asset, field, value), written out independently."""
    at = 1000.0 + refresh
    return {
        row
        for n in range(REFRESH_SIZE)
        for row in (
            (at, f"A{n}", "balance", f"{refresh}.{n}"),
            (at, f"A{n}", "hold_trade", str(refresh)),
            (at, f"A{n}", "available", f"{refresh}.{n}1"),
        )
    }


@contextmanager
def _writer_inside_a_transaction(path: Path, acked: int) -> Iterator[int]:
    """WRITER in its own process, once it has committed `acked` refreshes and stopped dead just before the
    COMMIT of the next one; yields how many bytes it wrote in that open transaction, and kills it with SIGKILL
    on the way out."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(ROOT), str(path), str(acked), str(REFRESH_SIZE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in proc.stdout or ():
            lines.put(line)
        lines.put("")  # the writer died

    threading.Thread(target=read, daemon=True).start()
    try:
        line = lines.get(timeout=60)  # a safety net only: the line comes as soon as the transaction is open
        word, committed, spilled = line.split() if line else ("died", "", "0")
        assert (word, committed) == ("open", str(acked)), line
        yield int(spilled)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(60)
    assert proc.returncode == -signal.SIGKILL  # killed inside the transaction, never exited by itself


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts the writer's bytes in /proc/self/io")
@pytest.mark.parametrize("acked", [0, 2])  # the first refresh into an empty file; one after others
def test_kill_9_inside_a_transaction_loses_that_refresh_whole_and_nothing_else(tmp_path: Path, acked: int) -> None:
    path = tmp_path / "history.sqlite3"
    with _writer_inside_a_transaction(path, acked) as spilled:
        assert spilled > 1_000_000  # SQLite wrote the open refresh's pages to disk before its COMMIT
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = db.execute("SELECT at, asset, field, value FROM changes").fetchall()
    assert len(rows) == len(set(rows)) == acked * 3 * REFRESH_SIZE  # every acknowledged refresh, the open one not
    assert set(rows) == set().union(*(_expected(i) for i in range(acked)))
    after = History(path)  # and it carries on
    after.record(ChangeTracker().diff(_venue("9.99", 5000.0)))
    after.flush()
    assert after.error is None
    after.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("SELECT count(*) FROM changes WHERE at = 5000.0").fetchone()[0] == 3


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts the writer's bytes in /proc/self/io")
def test_history_reads_while_the_tui_is_writing_a_refresh(tmp_path: Path) -> None:
    """WAL: `balance-tui history` reads what is committed while a writer holds an open transaction that has
    already written pages (a rollback journal would hold the reader off until busy_timeout, then fail)."""
    path = tmp_path / "history.sqlite3"
    config = write_config(tmp_path / "c.toml", f'[history]\npath = "{path}"\n')
    with _writer_inside_a_transaction(path, acked=2) as spilled:
        assert spilled > 1_000_000
        out = run_cli("history", "--config", str(config), "--format", "json")
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    by_refresh = Counter(int(r["value"].split(".")[0]) for r in records)  # refresh i's values all start "i."
    assert by_refresh == {0: 3 * REFRESH_SIZE, 1: 3 * REFRESH_SIZE}


def test_history_command_prints_table_json_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    history, tracker = History(path), ChangeTracker()
    now = time.time()
    history.record(tracker.diff(_venue("12.3456789012", now - 7200)))
    history.record(tracker.diff(_venue("100.000000000000000001", now - 60)))
    history.flush()
    history.close()
    config = write_config(tmp_path / "c.toml", f'[history]\npath = "{path}"\n')
    out = run_cli("history", "--config", str(config), "--format", "json", "--since", "1h", "--asset", "XBT")
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    assert {(r["field"], r["value"]) for r in records} == {
        ("balance", "100.000000000000000001"),
        ("available", "100.000000000000000001"),
    }
    table = run_cli("history", "--config", str(config))
    assert table.returncode == 0 and "12.3456789012" in table.stdout and "100.000000000000000001" in table.stdout
    csv_out = run_cli("history", "--config", str(config), "--format", "csv", "--venue", "nobody")
    assert csv_out.stdout.strip() == "at,venue,account,asset,field,value"
    bad = run_cli("history", "--config", str(config), "--since", "yesterday-ish")
    assert bad.returncode == 2 and "--since" in bad.stderr and "Traceback" not in bad.stderr


async def test_the_tui_records_what_moved(tmp_path: Path) -> None:
    path = tmp_path / "tui.sqlite3"
    with Simulator(seed=5) as sim:
        vault = next(iter(sim.market.vaults))
        app = BalanceApp(parse(sim.config_text(1)), history=path)
        async with app.run_test() as pilot:
            await until(pilot, lambda: all(p.rows for p in app.panes))
            sim.market.set_kraken(vault, "XBT", "4.000000000000000001", "0")

            def recorded() -> bool:
                assert app.monitor.history is not None
                app.monitor.history.flush()
                return any(p.value == "4.000000000000000001" for p in query(connect(path), asset="XBT"))

            await until(pilot, recorded, timeout=20)


def test_the_writer_keeps_a_small_page_cache(tmp_path: Path) -> None:
    """Issue 24 (RSS): SQLite's default page cache (2,000 KiB) was 2 MB of the TUI's memory for a writer that
    appends; the writer's connection asks for a quarter of a megabyte."""
    history = History(tmp_path / "history.sqlite3")
    try:
        (size,) = history._db.execute("PRAGMA cache_size").fetchone()
        assert size == -CACHE_KIB and CACHE_KIB <= 256  # negative: KiB, not pages
    finally:
        history.close()


def test_the_last_values_are_kept_by_balance_not_by_field(tmp_path: Path) -> None:
    """Issue 24 (RSS): the writer's index of last values has one key per balance (venue, account, asset), its
    fields under it, not a 4-tuple per field (17,000 of them for 2,000 balances); so too after a restart."""
    path = tmp_path / "history.sqlite3"
    history = History(path)
    history.record(ChangeTracker().diff(_venue("1.5", 1000.0)))
    history.flush()
    expected = {("Kraken", "V1", "XBT"): {"balance": "1.5", "hold_trade": "0", "available": "1.5"}}
    assert history._last == expected
    history.close()
    again = History(path)
    try:
        assert again._last == expected
    finally:
        again.close()
