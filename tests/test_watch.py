"""`--watch --format jsonl` over real HTTP against the simulator, and the change tracker beneath it."""

from __future__ import annotations

import asyncio
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, start_cli
from tui.money import Balance
from tui.monitor.changes import CHANGED, NEW, REMOVED, ChangeTracker
from tui.sim import Simulator
from tui.snapshot.model import AccountSnapshot, VenueSnapshot
from tui.venues.errors import ErrorKind, VenueError

PATIENCE = 30.0

ROOT = Path(__file__).resolve().parent.parent


def _venue(*balances: Balance, error: VenueError | None = None, at: float = 1.0) -> VenueSnapshot:
    account = AccountSnapshot("V1", "Treasury", balances, at, error)
    return VenueSnapshot("Kraken", "kraken-custody", (account,))


def _kraken(asset: str, balance: str, hold: str = "0") -> Balance:
    b, h = Decimal(balance), Decimal(hold)
    return Balance(asset, {"balance": b, "hold_trade": h, "available": b - h})


def test_tracker_reports_new_changed_and_removed_field_by_field() -> None:
    tracker = ChangeTracker()
    first = tracker.diff(_venue(_kraken("XBT", "1.5"), _kraken("ETH", "2")))
    assert [(c.asset, c.event) for c in first] == [("XBT", NEW), ("ETH", NEW)]
    assert tracker.diff(_venue(_kraken("XBT", "1.5"), _kraken("ETH", "2"))) == []
    moved = tracker.diff(_venue(_kraken("XBT", "1.5", hold="0.5"), _kraken("ETH", "2.0")))
    assert [(c.asset, c.event, c.fields) for c in moved] == [
        ("XBT", CHANGED, ("hold_trade", "available")),
        ("ETH", CHANGED, ("balance", "available")),  # 2 → 2.0: the same number, not the same digits
    ]
    gone = tracker.diff(_venue(_kraken("ETH", "2.0")))
    assert [(c.asset, c.event, c.balance) for c in gone] == [("XBT", REMOVED, None)]


def test_a_failed_account_is_not_read_as_its_balances_disappearing() -> None:
    tracker = ChangeTracker()
    tracker.diff(_venue(_kraken("XBT", "1.5")))
    failed = VenueError(ErrorKind.SERVER, "Kraken answered HTTP 503", retryable=True)
    assert tracker.diff(_venue(error=failed)) == []
    assert tracker.diff(_venue(_kraken("XBT", "1.5"))) == []


class Watch:
    """`balance-tui --watch` in its own process, its lines collected as they come."""

    def __init__(self, config: Path, *args: str) -> None:
        self.proc = start_cli("--watch", *args, "--config", str(config))
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def until(self, condition: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if condition(line):
                return line
        raise AssertionError(f"no such line within {timeout} s; saw {len(self.seen)}: {self.seen[-3:]}")

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, err


@pytest.fixture
def fast_config(sim: Simulator, tmp_path: Path) -> Path:
    path = tmp_path / "watch.toml"
    sim.write_config(path, refresh_seconds=1)
    return path


@pytest.fixture
def watch(fast_config: Path) -> Iterator[Callable[..., Watch]]:
    started: list[Watch] = []

    def start(*args: str) -> Watch:
        started.append(Watch(fast_config, *args))
        return started[-1]

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.communicate()


def test_stream_starts_with_every_balance_then_prints_each_change_exactly(
    sim: Simulator, watch: Callable[..., Watch]
) -> None:
    portfolio = next(p for p, held in sim.market.portfolios.items() if "BTC" in held.holdings)
    vault = next(v for v, held in sim.market.vaults.items() if "XBT" in held.holdings)
    stream = watch("--format", "jsonl")
    expected = sum(len(v.holdings) for v in sim.market.vaults.values()) + sum(
        len(p.holdings) for p in sim.market.portfolios.values()
    )
    for _ in range(expected):
        line = stream.until(lambda line: line["event"] == "new")
        assert line["balance"]["asset"] == line["asset"] and line["previous"] is None
    sim.market.set_intx(portfolio, "BTC", quantity="12345678901234567890.123456789", hold="0.5")
    moved = stream.until(lambda line: line["event"] == "changed" and line["asset"] == "BTC")
    assert moved["account"]["id"] == portfolio and moved["kind"] == "coinbase-intx"
    assert moved["balance"]["quantity"] == "12345678901234567890.123456789" and moved["balance"]["hold"] == "0.5"
    assert "quantity" in moved["fields"] and moved["previous"]["quantity"] != moved["balance"]["quantity"]
    sim.market.set_kraken(vault, "XBT", "7.000000000000000001", "0")
    xbt = stream.until(lambda line: line["event"] == "changed" and line["asset"] == "XBT")
    assert {k: v for k, v in xbt["balance"].items() if k not in ("usd_price", "usd_value")} == {
        "asset": "XBT",
        "balance": "7.000000000000000001",
        "hold_trade": "0",
        "available": "7.000000000000000001",
    }
    code, err = stream.stop()
    assert code == 0 and err == ""


def test_stream_says_when_a_venue_fails_and_recovers(sim: Simulator, watch: Callable[..., Watch]) -> None:
    stream = watch()
    stream.until(lambda line: line["event"] == "new" and line["kind"] == "kraken-custody")
    sim.faults.set("http-5xx", venue="kraken")
    failing = stream.until(lambda line: line["event"] == "venue-failing", timeout=30)
    assert "503" in failing["error"] and failing["venue"].startswith("Kraken")
    sim.faults.clear()
    stream.until(lambda line: line["event"] == "venue-recovered", timeout=60)
    code, err = stream.stop()
    assert code == 0 and err == ""


def test_a_reader_that_leaves_early_ends_the_stream_quietly(fast_config: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BALANCE_TUI_CONFIG"}
    done = subprocess.run(
        f"{sys.executable} -m tui --watch --config {fast_config} | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert json.loads(done.stdout)["event"] == "new"
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr


def test_watch_refuses_other_formats() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tui", "--watch", "--format", "csv"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2 and "jsonl" in done.stderr and "Traceback" not in done.stderr


def _state(stream: Watch, expected: int) -> list[dict[str, Any]]:
    """The whole state a --watch starts with: every balance's "new" line, and what came among them."""
    while sum(line["event"] == "new" for line in stream.seen) < expected:
        stream.until(lambda line: line["event"] == "new")
    return list(stream.seen)


def test_the_first_state_waits_for_the_prices_and_carries_the_values(sim: Simulator, fast_config: Path) -> None:
    """A local --watch prints nothing until the first prices came: every balance's first line has the value
    --once gives it, never a null filled in later."""
    once = json.loads(run_cli("--once", "--format", "json", "--config", str(fast_config)).stdout)
    priced = {
        (v["name"], a["id"], b["asset"]): b["usd_price"]
        for v in once["venues"]
        for a in v["accounts"]
        for b in a["balances"]
        if b["usd_price"] is not None
    }
    expected = sum(len(v.holdings) for v in sim.market.vaults.values()) + sum(
        len(p.holdings) for p in sim.market.portfolios.values()
    )
    assert 0 < len(priced) <= expected
    stream = Watch(fast_config)
    try:
        state = _state(stream, expected)
        assert [line["event"] for line in state] == ["new"] * expected  # nothing before the values
        shown = {(ln["venue"], ln["account"]["id"], ln["asset"]): ln["balance"]["usd_price"] for ln in state}
        assert {key: price for key, price in shown.items() if price is not None} == priced
        assert all(ln["balance"]["usd_value"] is not None for ln in state if ln["balance"]["usd_price"] is not None)
        prices = stream.until(lambda line: line["event"] != "new")
        assert prices["event"] == "prices" and prices["prices"]["fetched_at"] and prices["prices"]["error"] is None
    finally:
        code, err = stream.stop()
    assert code == 0 and err == ""


def test_prices_that_fail_hold_the_first_state_no_longer(sim: Simulator, fast_config: Path) -> None:
    """The price source answers 503: the state is printed once that failure is known, its values null, and
    the prices line says why."""
    sim.faults.set("http-5xx", venue="prices")
    expected = sum(len(v.holdings) for v in sim.market.vaults.values()) + sum(
        len(p.holdings) for p in sim.market.portfolios.values()
    )
    stream = Watch(fast_config)
    try:
        state = _state(stream, expected)
        assert all(ln["balance"]["usd_price"] is None for ln in state if ln["event"] == "new")
        prices = stream.until(lambda line: line["event"] == "prices")
        assert prices["prices"]["fetched_at"] is None and "503" in prices["prices"]["error"]
    finally:
        code, err = stream.stop()
    assert code == 0 and err == ""


def test_the_wait_for_prices_is_bounded() -> None:
    """Prices that never come (a source that hangs): the state is printed once the wait is over."""
    from tui.sinks.watch import Stream

    out = io.StringIO()

    async def run() -> None:
        stream = Stream(out)
        stream.holding = True
        held = asyncio.create_task(stream.hold_for_prices(wait=0.05))
        stream.publish(_venue(_kraken("XBT", "1.5")))
        assert out.getvalue() == ""  # held: no prices yet
        await asyncio.wait_for(held, PATIENCE)

    asyncio.run(run())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(ln["event"], ln["asset"], ln["balance"]["usd_value"]) for ln in lines] == [("new", "XBT", None)]


def test_prices_that_failed_end_the_wait_at_once() -> None:
    """The first price answer is a failure: the state is printed then, however long the wait could have been."""
    from tui.engine.prices import PriceBook
    from tui.sinks.watch import Stream

    out = io.StringIO()

    async def run() -> None:
        stream = Stream(out)
        stream.holding = True
        held = asyncio.create_task(stream.hold_for_prices(wait=3600))
        stream.publish(_venue(_kraken("XBT", "1.5")))
        await asyncio.sleep(0)
        assert out.getvalue() == ""
        failed = VenueError(ErrorKind.SERVER, "Kraken answered HTTP 503", retryable=True)
        stream.publish_prices(PriceBook("kraken", error=failed))
        await asyncio.wait_for(held, PATIENCE)

    asyncio.run(run())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [ln["event"] for ln in lines] == ["new", "prices"]
    assert lines[1]["prices"]["error"] == "Kraken answered HTTP 503" and lines[0]["balance"]["usd_value"] is None


def test_a_reader_that_leaves_while_nothing_moves_ends_the_stream(fast_config: Path) -> None:
    """The reader takes the whole state (as many lines as --once shows balances) and leaves; the balances stay
    still, so --watch has nothing more to write: it notices anyway and ends, exit 0, without a traceback, rather
    than waiting for a change that may be hours away (seen in CI as `--watch | head -n 1` hanging)."""
    env = {k: v for k, v in os.environ.items() if k != "BALANCE_TUI_CONFIG"}
    once = json.loads(run_cli("--once", "--format", "json", "--config", str(fast_config)).stdout)
    balances = sum(len(a["balances"]) for v in once["venues"] for a in v["accounts"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "--watch", "--config", str(fast_config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    state = [json.loads(proc.stdout.readline()) for _ in range(balances)]
    assert balances > 10 and {line["event"] for line in state} == {"new"}
    proc.stdout.close()  # the reader leaves, with nothing left for --watch to write
    try:
        code = proc.wait(timeout=60)  # a safety net: the end is what is waited for, not a time
    finally:
        proc.kill()
    err = proc.stderr.read().decode()
    assert code == 0 and "Traceback" not in err and "Error" not in err, err
