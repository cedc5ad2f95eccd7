"""Balance history: only changes are recorded, a kill -9 never corrupts it, and `balance-tui history` reads it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from tests.conftest import run_cli, write_config
from tui.app import BalanceApp
from tui.changes import ChangeTracker
from tui.config import parse
from tui.history import History, connect, query
from tui.money import Balance
from tui.scenes import until
from tui.sim import Simulator
from tui.snapshot import AccountSnapshot, VenueSnapshot

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


WRITER = """
import sys, time
from decimal import Decimal
sys.path.insert(0, {root!r})
from tui.changes import ChangeTracker
from tui.history import History
from tui.money import Balance
from tui.snapshot import AccountSnapshot, VenueSnapshot
history, tracker = History({path!r}), ChangeTracker()
i = 0
while True:
    balances = tuple(
        Balance(f"A{{n}}", {{"balance": Decimal(f"{{i}}.{{n}}"), "hold_trade": Decimal(0), "available": Decimal(i)}})
        for n in range(50)
    )
    venue = VenueSnapshot("Kraken", "kraken-custody", (AccountSnapshot("V1", "T", balances, time.time()),))
    history.record(tracker.diff(venue))
    if i == 20:
        print("writing", flush=True)
    i += 1
    time.sleep(0.001)
"""


def test_kill_9_during_writes_leaves_a_sound_database(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(root=str(ROOT), path=str(path))], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    time.sleep(1.0)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(10)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT field, value FROM changes").fetchall()
    assert len(rows) > 150 and all(value is None or Decimal(value) >= 0 for _, value in rows)
    after = History(path)  # and it carries on
    after.record(ChangeTracker().diff(_venue("9.99", time.time())))
    after.flush()
    after.close()
    assert _count(path) > len(rows)


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
