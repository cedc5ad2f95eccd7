"""The TUI writes end-of-day statements too (its statements worker, beside the history it records): driven by
Textual's pilot against the simulator over HTTP, with `[statements] at` a few seconds ahead in Asia/Kolkata
on the real clock. The files appear after the instant, named by its local date, not late, hold the book of
that instant (`balance-tui book --at`, the real program, run after), and the operator is told."""

from __future__ import annotations

import json
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.conftest import run_cli
from tests.scenes import until
from tests.test_statements_run import ZONE
from tui.config import parse
from tui.instants import iso_instant
from tui.sim import Simulator
from tui.ui.app import BalanceApp


async def test_the_tui_writes_a_statement_at_its_instant(tmp_path: Path) -> None:
    path = tmp_path / "tui.sqlite3"
    folder = tmp_path / "statements"
    with Simulator(seed=23, tick_seconds=0.25) as sim:
        sim.kraken_rate_limit = False
        instant = float(int(time.time()) + 6)  # whole seconds: the config names a time of day to the second
        local = datetime.fromtimestamp(instant, ZoneInfo(ZONE))
        text = (
            f'{sim.config_text(1)}\n[history]\npath = "{path}"\n'
            f'[statements]\nat = "{local:%H:%M:%S}"\ntimezone = "{ZONE}"\nfolder = "{folder}"\n'
        )
        config = tmp_path / "tui.toml"
        config.write_text(text)
        config.chmod(0o600)
        files = {fmt: folder / f"book-{local.date().isoformat()}.{fmt}" for fmt in ("json", "csv")}
        app = BalanceApp(parse(text), history=path)
        async with app.run_test() as pilot:
            await until(pilot, lambda: all(p.rows for p in app.panes))
            await until(pilot, lambda: all(p.exists() for p in files.values()), timeout=60)
            await until(pilot, lambda: any("written" in str(n.message) for n in app._notifications))
            told = [str(n.message) for n in app._notifications if "statement of" in str(n.message)]
    assert told == [f"statement of {local.date()} written: {files['json'].name}, {files['csv'].name} in {folder}"]
    statement = json.loads(files["json"].read_text(), parse_float=Decimal)
    assert statement["statement"]["due_at"] == iso_instant(instant) and statement["statement"]["late"] is False
    assert all(v["ok"] for v in statement["venues"]) and statement["usd_total"] is not None
    done = run_cli("book", "--at", iso_instant(instant), "--format", "json", "--config", str(config))
    book = json.loads(done.stdout, parse_float=Decimal)
    assert {k: v for k, v in statement.items() if k not in ("statement", "generated_at")} == {
        k: v for k, v in book.items() if k != "generated_at"
    }
