"""`balance-tui book` on histories recorded here, answer by answer, through the live program's own recording path
(Monitor -> History): the edges of the book at an instant (before the first record, a balance removed, a venue
failing across the instant, prices stale by the rule then in force, a restart, a file of an older release, any ISO
form of an instant) and `--between`'s split, checked exactly, also over random walks (Hypothesis). The same book
against a real run of `serve` on the ticking simulator is tests/test_book_run.py."""

from __future__ import annotations

import csv
import decimal
import io
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, run_cli, write_config
from tui.config import Config, parse
from tui.engine.prices import PriceBook
from tui.instants import iso_instant, parse_instant
from tui.money import Balance
from tui.monitor.book import BookError, book_at
from tui.monitor.history import History, connect
from tui.monitor.monitor import Monitor
from tui.snapshot.model import AccountSnapshot, VenueSnapshot
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.kraken_prices import Price

T0 = parse_instant("2026-11-30T12:00:00Z")
WIDE = decimal.Context(prec=200)


# --- a history recorded here, answer by answer ------------------------------------------------------------------


def kraken(
    at: float | None,
    holdings: dict[str, dict[str, str]],
    *,
    name: str = "Kraken",
    error: VenueError | None = None,
    failures: int = 0,
    account_errors: dict[str, VenueError] | None = None,
    account_fetched: dict[str, float] | None = None,
    names: dict[str, str] | None = None,
    period: float | None = 5.0,
) -> VenueSnapshot:
    """A Kraken custody venue's finished refresh: vault -> asset -> balance (hold 0, available = balance)."""
    accounts = tuple(
        AccountSnapshot(
            vault,
            (names or {}).get(vault, f"Vault {vault}"),
            tuple(
                Balance(asset, {"balance": Decimal(b), "hold_trade": Decimal("0"), "available": Decimal(b)})
                for asset, b in assets.items()
            ),
            (account_fetched or {}).get(vault, at),
            (account_errors or {}).get(vault),
        )
        for vault, assets in holdings.items()
    )
    return VenueSnapshot(name, "kraken-custody", accounts, error=error, fetched_at=at, failures=failures, period=period)


def prices(
    at: float | None, usd: dict[str, str], *, period: float = 60.0, error: VenueError | None = None
) -> PriceBook:
    return PriceBook(
        "kraken", {a: Price(Decimal(p), f"{a}USD") for a, p in usd.items()}, at, error, frozenset(), period
    )


class Tape:
    """The live program's recording path: a Monitor recording into a History, fed what venues answered."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.history = History(path)
        self.monitor = Monitor(parse(""), self.history)

    def venue(self, snapshot: VenueSnapshot, taken: float | None = None) -> None:
        self.monitor.take(snapshot, taken if taken is not None else (snapshot.fetched_at or 0.0) + 0.01)

    def prices(self, book: PriceBook, taken: float | None = None) -> None:
        self.monitor.take_prices(book, taken if taken is not None else (book.fetched_at or 0.0) + 0.01)

    def restart(self) -> None:
        """The program stops and starts again: a new Monitor (its tracker has seen nothing), the same file."""
        self.close()
        self.history = History(self.path)
        self.monitor = Monitor(parse(""), self.history)

    def close(self) -> None:
        self.history.flush()
        self.history.close()

    def book(self, at: float, **options: Any) -> Any:
        self.history.flush()
        db = connect(self.path)
        try:
            return book_at(db, at, CONFIG, **options)
        finally:
            db.close()


CONFIG: Config = parse("")


@pytest.fixture
def tape(tmp_path: Path) -> Iterator[Tape]:
    recorded = Tape(tmp_path / "history.sqlite3")
    yield recorded
    recorded.close()


def config_for(tmp_path: Path, history: Path, extra: str = "") -> Path:
    return write_config(tmp_path / "book.toml", f'[history]\npath = "{history}"\n{extra}')


def document(tape: Tape, at: float, **options: Any) -> dict[str, Any]:
    from tui.sinks.book_report import at_document

    return at_document(tape.book(at, **options))


def balances(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(v["name"], a["id"], b["asset"]): b for v in doc["venues"] for a in v["accounts"] for b in a["balances"]}


def book_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("book", *args, "--config", str(config))


# --- the edges ----------------------------------------------------------------------------------------------------


def test_an_instant_before_the_first_record_says_so_and_exits_2(tape: Tape, tmp_path: Path) -> None:
    tape.venue(kraken(T0, {"V1": {"XBT": "1.5"}}))
    tape.close()
    config = config_for(tmp_path, tape.path)
    done = book_cli(config, "--at", iso_instant(T0 - 1))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        "balance-tui: 2026-11-30T11:59:59Z is before the history begins (2026-11-30T12:00:00Z): "
        "nothing was recorded then"
    )
    at_start = book_cli(config, "--at", iso_instant(T0), "--format", "json")
    assert at_start.returncode == 0, at_start.stderr
    assert json.loads(at_start.stdout)["venues"][0]["accounts"][0]["balances"][0]["balance"] == "1.5"


def test_without_a_history_book_has_nothing_to_work_from(tmp_path: Path) -> None:
    off = write_config(tmp_path / "off.toml", "[history]\nenabled = false\n")
    done = book_cli(off, "--at", "2026-11-30")
    assert done.returncode == 2 and done.stdout == ""
    assert "the history is off ([history] enabled = false" in done.stderr and "nothing to work from" in done.stderr
    missing = config_for(tmp_path, tmp_path / "never.sqlite3")
    done = book_cli(missing, "--at", "2026-11-30")
    assert done.returncode == 2 and "no history at" in done.stderr and "Traceback" not in done.stderr


def test_a_balance_removed_before_the_instant_is_absent(tape: Tape) -> None:
    tape.venue(kraken(T0, {"V1": {"XBT": "1.5", "ETH": "10"}}))
    tape.venue(kraken(T0 + 5, {"V1": {"XBT": "1.5"}}))  # ETH withdrawn
    before, after = balances(document(tape, T0 + 4.9)), balances(document(tape, T0 + 5))
    assert before[("Kraken", "V1", "ETH")]["balance"] == "10"
    assert ("Kraken", "V1", "ETH") not in after and after[("Kraken", "V1", "XBT")]["balance"] == "1.5"


def test_a_balance_removed_while_the_program_was_down_is_absent_after_it_came_back(tape: Tape) -> None:
    """The change tracker of the new process never saw ETH, so no "removed" change is recorded for it: the
    answer's list of balances says it is gone."""
    tape.venue(kraken(T0, {"V1": {"XBT": "1.5", "ETH": "10"}}))
    tape.restart()
    tape.venue(kraken(T0 + 3600, {"V1": {"XBT": "1.5"}}))
    assert ("Kraken", "V1", "ETH") in balances(document(tape, T0 + 3599))
    assert set(balances(document(tape, T0 + 3600))) == {("Kraken", "V1", "XBT")}


def test_every_field_keeps_its_digits_and_each_balance_its_order_and_labels(tape: Tape) -> None:
    long = "1234567890123456789012345678901234567.12345678901234567890123456789000"
    intx = VenueSnapshot(
        "INTX",
        "coinbase-intx",
        (
            AccountSnapshot(
                "p-1",
                "Main",
                (
                    Balance(
                        "USDC",
                        {"quantity": Decimal(long), "hold": Decimal("0.0"), "loan": Decimal("5.50")},
                        {"asset_id": "0-0-1", "asset_name": "USDC", "asset_uuid": None},
                    ),
                    Balance("BTC", {"quantity": Decimal("2.000")}, {"asset_id": "x", "asset_name": "BTC"}),
                ),
                T0,
            ),
        ),
        fetched_at=T0,
    )
    tape.venue(intx)
    shown = document(tape, T0)["venues"][0]["accounts"][0]["balances"]
    assert [b["asset"] for b in shown] == ["USDC", "BTC"]
    assert shown[0]["quantity"] == long and shown[0]["hold"] == "0.0" and shown[0]["loan"] == "5.50"
    assert shown[0]["asset_id"] == "0-0-1" and shown[0]["asset_uuid"] is None
    assert shown[1]["quantity"] == "2.000" and shown[1]["collateral_value"] is None


def test_a_venue_failing_across_the_instant_is_marked(tape: Tape, tmp_path: Path) -> None:
    down = VenueError(ErrorKind.SERVER, "HTTP 503 from the venue")
    names = {"V1": "Treasury"}
    tape.venue(kraken(T0, {"V1": {"XBT": "1.5"}, "V2": {"ETH": "3"}}, names=names))
    tape.venue(
        kraken(T0, {"V1": {"XBT": "1.5"}, "V2": {"ETH": "3"}}, names=names, error=down, failures=1), taken=T0 + 5
    )
    tape.venue(
        kraken(T0, {"V1": {"XBT": "1.5"}, "V2": {"ETH": "3"}}, names=names, error=down, failures=2), taken=T0 + 15
    )
    half = VenueError(ErrorKind.TIMEOUT, "timed out")
    tape.venue(
        kraken(
            T0 + 30,
            {"V1": {"XBT": "1.75"}, "V2": {"ETH": "3"}},
            account_errors={"V2": half},
            account_fetched={"V2": T0},
        )
    )
    tape.venue(kraken(T0 + 40, {"V1": {"XBT": "1.75"}, "V2": {"ETH": "4"}}))
    failing = document(tape, T0 + 20)
    venue = failing["venues"][0]
    assert venue["ok"] is False and venue["error"] == "HTTP 503 from the venue"
    assert venue["state"]["failures"] == 2 and venue["state"]["error_kind"] == "server"
    assert balances(failing)[("Kraken", "V1", "XBT")]["balance"] == "1.5"  # the last good answer, kept
    marked = failing["as_of"]["venues"][0]
    assert marked["failing"] is True and marked["stale"] is True and marked["age_seconds"] == 20.0
    assert marked["answered_at"] == iso_instant(T0 + 15) and marked["accounts"][0]["name"] == "Treasury"
    one_account = document(tape, T0 + 35)
    accounts = {a["id"]: a for a in one_account["venues"][0]["accounts"]}
    assert accounts["V2"]["ok"] is False and accounts["V2"]["error"] == "timed out"
    assert accounts["V1"]["ok"] is True and balances(one_account)[("Kraken", "V1", "XBT")]["balance"] == "1.75"
    ages = {a["id"]: a["age_seconds"] for a in one_account["as_of"]["venues"][0]["accounts"]}
    assert ages == {"V1": 5.0, "V2": 35.0}
    assert document(tape, T0 + 40)["venues"][0]["ok"] is True
    tape.close()
    config = config_for(tmp_path, tape.path)
    done = book_cli(config, "--at", iso_instant(T0 + 20))
    assert done.returncode == 1, done.stderr  # printed, but a venue was failing then: as --once
    assert "FAILED: HTTP 503 from the venue" in done.stdout and "its data 20.0 s old at the instant" in done.stdout
    assert "STALE" in done.stdout and "Kraken: failing at 2026-11-30T12:00:20Z: HTTP 503" in done.stderr
    assert book_cli(config, "--at", iso_instant(T0 + 40)).returncode == 0


def test_prices_older_than_the_stale_rule_then_in_force_are_marked(tape: Tape) -> None:
    """PriceBook's rule: stale after 3 periods, unusable (nothing valued) after 15; the period is the one
    recorded with the fetch then in force."""
    tape.venue(kraken(T0, {"V1": {"XBT": "2"}}))
    tape.prices(prices(T0, {"BTC": "100"}, period=60.0))
    for after, stale, valued in ((170, False, True), (190, True, True), (890, True, True), (910, True, False)):
        doc = document(tape, T0 + after)
        assert doc["as_of"]["prices"]["stale"] is stale, after
        assert doc["as_of"]["prices"]["usable"] is valued, after
        assert (doc["usd_total"] == "200") is valued and (doc["usd_total"] is None) is not valued, after
        assert balances(doc)[("Kraken", "V1", "XBT")]["usd_value"] == ("200" if valued else None)
    tape.prices(prices(T0 + 1000, {"BTC": "110"}, period=10.0))  # a faster source later: its own rule
    assert document(tape, T0 + 1029)["as_of"]["prices"]["stale"] is False
    later = document(tape, T0 + 1031)
    assert later["as_of"]["prices"]["stale"] is True and later["usd_total"] == "220"
    assert later["prices"]["period"] == 10.0 and later["prices"]["usd_prices"]["BTC"] == {
        "usd": "110",
        "pair": "BTCUSD",
    }
    failing = VenueError(ErrorKind.UNREACHABLE, "connection refused")
    tape.prices(prices(T0 + 1000, {"BTC": "110"}, period=10.0, error=failing), taken=T0 + 1040)
    doc = document(tape, T0 + 1041)
    assert doc["prices"]["error"] == "connection refused" and doc["as_of"]["prices"]["failing"] is True
    assert doc["prices"]["fetched_at"] == "2026-11-30T12:16:40Z" and doc["usd_total"] == "220"


def test_an_instant_in_any_iso_form_and_zone(tape: Tape, tmp_path: Path) -> None:
    midnight = parse_instant("2026-12-01T00:00:00Z")
    tape.venue(kraken(midnight - 10, {"V1": {"XBT": "1"}}))
    tape.venue(kraken(midnight, {"V1": {"XBT": "2"}}))
    tape.close()
    config = config_for(tmp_path, tape.path)
    seen = {}
    for text in (
        "2026-11-30T23:59:59Z",
        "2026-12-01T00:59:59+01:00",
        "2026-11-30T18:59:59-05:00",
        "20261130T235959Z",
        "2026-11-30 23:59:59",
        "2026-12-01",
        "2026-12-01T00:00:00.000Z",
        "2026-335",
    ):
        done = book_cli(config, "--at", text, "--format", "json")
        assert done.returncode == 0, (text, done.stderr)
        got = json.loads(done.stdout)
        seen[text] = (got["as_of"]["at"], balances(got)[("Kraken", "V1", "XBT")]["balance"])
    assert seen == {
        "2026-11-30T23:59:59Z": ("2026-11-30T23:59:59Z", "1"),
        "2026-12-01T00:59:59+01:00": ("2026-11-30T23:59:59Z", "1"),
        "2026-11-30T18:59:59-05:00": ("2026-11-30T23:59:59Z", "1"),
        "20261130T235959Z": ("2026-11-30T23:59:59Z", "1"),
        "2026-11-30 23:59:59": ("2026-11-30T23:59:59Z", "1"),
        "2026-12-01": ("2026-12-01T00:00:00Z", "2"),  # a date alone: its start, in UTC
        "2026-12-01T00:00:00.000Z": ("2026-12-01T00:00:00Z", "2"),
        "2026-335": ("2026-12-01T00:00:00Z", "2"),
    }
    bad = book_cli(config, "--at", "yesterday-ish")
    assert bad.returncode == 2 and "is no ISO 8601 date or time" in bad.stderr and "Traceback" not in bad.stderr
    helped = run_cli("book", "--help")
    assert "A date alone is its start in UTC" in helped.stdout


def test_an_older_history_file_keeps_working_and_says_what_it_lacks(tmp_path: Path) -> None:
    """A file of the release before answers were recorded: opened, it gains the new tables (nothing rewritten);
    its instants are rebuilt from the amounts alone, and the book says what that leaves unknown."""
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE changes (at REAL NOT NULL, venue TEXT NOT NULL, account TEXT NOT NULL, asset TEXT NOT NULL,"
        " field TEXT NOT NULL, value TEXT);"
        "CREATE INDEX changes_by_key ON changes (venue, account, asset, field, at);"
        "CREATE INDEX changes_by_time ON changes (at);"
    )
    rows = [
        (T0, "Kraken", "V1", "XBT", "balance", "1.50"),
        (T0, "Kraken", "V1", "XBT", "hold_trade", "0"),
        (T0, "Kraken", "V1", "XBT", "available", "1.50"),
        (T0, "Kraken", "V1", "ETH", "balance", "7"),
        (T0 + 1, "prices", "kraken", "BTC", "usd_price", "100.5"),
        (T0 + 60, "Kraken", "V1", "ETH", "balance", None),  # withdrawn
    ]
    old.executemany("INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?)", rows)
    old.commit()
    old.close()
    tape = Tape(path)  # the new release opens it
    tape.venue(kraken(T0 + 120, {"V1": {"XBT": "1.75"}}, names={"V1": "Treasury"}))
    tape.prices(prices(T0 + 120, {"BTC": "101"}))
    before = document(tape, T0 + 61)
    assert (
        set(balances(before)) == {("Kraken", "V1", "XBT")}
        and balances(before)[("Kraken", "V1", "XBT")]["balance"] == "1.50"
    )
    assert before["usd_total"] == "150.75" and before["venues"][0]["accounts"][0]["name"] == "V1"
    assert before["as_of"]["answers_recorded_from"] == iso_instant(T0 + 120)
    assert before["as_of"]["venues"][0]["recorded"] is False
    assert any("recorded no answers before 2026-11-30T12:02:00Z" in note for note in before["as_of"]["notes"])
    assert any("fetch times were not recorded" in note for note in before["as_of"]["notes"])
    after = document(tape, T0 + 121)
    assert after["as_of"]["notes"] == [] and after["venues"][0]["accounts"][0]["name"] == "Treasury"
    assert balances(after)[("Kraken", "V1", "XBT")]["usd_value"] == "176.75"
    tape.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM changes WHERE at <= ?", (T0 + 60,)).fetchone()[0] == len(rows)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"changes", "answers", "answer_states", "answer_sources"} <= tables


def test_venue_and_asset_narrow_the_book_and_its_totals(tape: Tape) -> None:
    tape.venue(kraken(T0, {"V1": {"XBT": "1", "ETH": "2"}}))
    tape.venue(kraken(T0, {"V9": {"BTC": "3"}}, name="Kraken 2"))
    tape.prices(prices(T0, {"BTC": "10", "ETH": "1"}))
    whole = document(tape, T0 + 1)
    assert whole["usd_total"] == "42"
    btc = document(tape, T0 + 1, asset="BTC")  # the totals name: XBT at one venue, BTC at the other
    assert set(balances(btc)) == {("Kraken", "V1", "XBT"), ("Kraken 2", "V9", "BTC")} and btc["usd_total"] == "40"
    one = document(tape, T0 + 1, venue="Kraken 2")
    assert [v["name"] for v in one["venues"]] == ["Kraken 2"] and one["usd_total"] == "30"
    with pytest.raises(BookError, match=r"no venue named 'Nope' .* \(there: Kraken, Kraken 2\)"):
        tape.book(T0 + 1, venue="Nope")


def test_text_from_outside_is_shown_never_obeyed(tape: Tape, tmp_path: Path) -> None:
    evil = "\x1b]0;owned\x07=HYPERLINK(\x1b[2J)\u202e"
    tape.venue(kraken(T0, {"V1": {"XBT\x1b[31m": "1"}}, name="K\x1b[2J", names={"V1": evil}))
    tape.close()
    config = config_for(tmp_path, tape.path)
    for fmt in ("table", "csv", "json"):
        done = book_cli(config, "--at", iso_instant(T0), "--format", fmt)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout and "\u202e" not in done.stdout and "\x07" not in done.stdout, fmt
    table = book_cli(config, "--at", iso_instant(T0)).stdout
    assert "K\\x1b[2J" in table and "\\x1b]0;owned\\x07" in table
    rows = list(csv.DictReader(io.StringIO(book_cli(config, "--at", iso_instant(T0), "--format", "csv").stdout)))
    assert rows[0]["account_name"].startswith("'") or not rows[0]["account_name"].startswith("=")
    assert rows[0]["venue"] == "K\\x1b[2J" and rows[0]["balance"] == "1"
    shown = json.loads(book_cli(config, "--at", iso_instant(T0), "--format", "json").stdout)
    assert shown["venues"][0]["name"] == "K\x1b[2J" and shown["venues"][0]["accounts"][0]["name"] == evil


def test_csv_and_table_carry_the_instant_and_each_accounts_state(tape: Tape, tmp_path: Path) -> None:
    tape.venue(kraken(T0, {"V1": {"XBT": "1.5"}, "V2": {"ETH": "-0.25"}}))
    tape.prices(prices(T0, {"BTC": "100", "ETH": "4"}))
    tape.close()
    config = config_for(tmp_path, tape.path)
    done = book_cli(config, "--at", iso_instant(T0 + 7), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [
        (r["as_of"], r["asset"], r["balance"], r["usd_value"], r["account_ok"], r["age_seconds"]) for r in rows
    ] == [
        ("2026-11-30T12:00:07Z", "XBT", "1.5", "150", "true", "7.000"),
        ("2026-11-30T12:00:07Z", "ETH", "-0.25", "-1", "true", "7.000"),
    ]
    table = book_cli(config, "--at", iso_instant(T0 + 7)).stdout
    assert table.startswith("balance-tui book as of 2026-11-30T12:00:07Z (from the history, made ")
    assert "worth: $149.00 gross, $0.00 loans, $149.00 net" in table and "prices at the instant: 7.0 s old" in table


def test_book_never_loads_the_ui(tape: Tape, tmp_path: Path) -> None:
    tape.venue(kraken(T0, {"V1": {"XBT": "1.5"}}))
    tape.close()
    config = config_for(tmp_path, tape.path)
    code = (
        "import sys\nfrom tui.cli import run\n"
        f"rc = run(['book', '--at', '{iso_instant(T0)}', '--config', '{config}'])\n"
        "print(rc, sorted(m for m in sys.modules if m.split('.')[0] == 'textual' or m.startswith('tui.ui')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stderr


# --- between two instants ----------------------------------------------------------------------------------------


def test_between_splits_each_change_into_quantity_and_price_moves(tape: Tape, tmp_path: Path) -> None:
    tape.venue(kraken(T0, {"V1": {"XBT": "2", "ETH": "10", "DOT": "5"}}))
    tape.prices(prices(T0, {"BTC": "100", "ETH": "3", "DOT": "1"}))
    tape.venue(kraken(T0 + 60, {"V1": {"XBT": "3", "DOT": "5", "SOL": "4"}}))  # ETH out, SOL in
    tape.prices(prices(T0 + 60, {"BTC": "90", "DOT": "2", "SOL": "7"}))
    tape.close()
    config = config_for(tmp_path, tape.path)
    done = book_cli(config, "--between", iso_instant(T0 + 1), iso_instant(T0 + 61), "--format", "json")
    assert done.returncode == 0, done.stderr
    moved = json.loads(done.stdout)
    by_asset = {m["asset"]: m for m in moved["balances"]}
    assert by_asset["XBT"]["usd_value"] == {
        "from": "200",
        "to": "270",
        "change": "70",
        "quantity_move": "100",
        "price_move": "-30",
    }  # (3-2)x100 and 3x(90-100)
    assert by_asset["ETH"]["usd_value"] == {
        "from": "30",
        "to": None,
        "change": "-30",
        "quantity_move": "-30",
        "price_move": "0",
    }
    assert by_asset["SOL"]["usd_value"] == {
        "from": None,
        "to": "28",
        "change": "28",
        "quantity_move": "28",
        "price_move": "0",
    }
    assert by_asset["DOT"]["usd_value"] == {
        "from": "5",
        "to": "10",
        "change": "5",
        "quantity_move": "0",
        "price_move": "5",
    }
    assert by_asset["XBT"]["quantity"] == {"from": "2", "to": "3", "change": "1"}
    assert by_asset["XBT"]["fields"] == {"balance": {"from": "2", "to": "3"}, "available": {"from": "2", "to": "3"}}
    assert "fields" in by_asset["DOT"] and by_asset["DOT"]["fields"] == {}
    assert moved["usd_total"] == {
        "from": "235",
        "to": "308",
        "change": "73",
        "quantity_moves": "98",
        "price_moves": "-25",
    }
    rows = list(
        csv.DictReader(
            io.StringIO(
                book_cli(config, "--between", iso_instant(T0 + 1), iso_instant(T0 + 61), "--format", "csv").stdout
            )
        )
    )
    assert {(r["asset"], r["quantity_move"], r["price_move"]) for r in rows} == {
        ("XBT", "100", "-30"),
        ("ETH", "-30", "0"),
        ("SOL", "28", "0"),
        ("DOT", "0", "5"),
    }
    table = book_cli(config, "--between", iso_instant(T0 + 1), iso_instant(T0 + 61)).stdout
    assert "holdings: $235.00 → $308.00 (+$73.00): quantity moves +$98.00, price moves -$25.00" in table


def test_an_unpriced_holding_counts_zero_as_its_totals_do(tape: Tape) -> None:
    """XBT held throughout, priced only at the second instant: it enters the totals by a price move."""
    from tui.assets import AssetNames
    from tui.monitor.moves import moves

    tape.venue(kraken(T0, {"V1": {"XBT": "2", "ETH": "1"}}))
    tape.prices(prices(T0, {"ETH": "3"}))
    tape.prices(prices(T0 + 60, {"ETH": "3", "BTC": "50"}))
    found = moves(tape.book(T0 + 1), tape.book(T0 + 61), AssetNames())
    (xbt,) = [m for m in found.balances if m.asset == "XBT"]
    assert (xbt.value.before, xbt.value.after, xbt.value.quantity_move, xbt.value.price_move) == (
        None,
        Decimal(100),
        Decimal(0),
        Decimal(100),
    )
    assert found.holdings.change == Decimal(100) and found.unchanged == 1


amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e15"), places=12, allow_nan=False)
price_values = st.one_of(st.none(), st.decimals(min_value=Decimal(0), max_value=Decimal("1e7"), places=8))
ASSETS = ("XBT", "ETH", "SOL")


@st.composite
def walks(draw: st.DrawFn) -> list[tuple[dict[str, dict[str, Decimal]], dict[str, Decimal | None]]]:
    """Steps of a random walk: each vault's holdings (assets appear and vanish) and each asset's price (or none)."""
    steps = []
    for _ in range(draw(st.integers(2, 5))):
        holdings = {
            vault: {asset: draw(amounts) for asset in draw(st.sets(st.sampled_from(ASSETS)))} for vault in ("V1", "V2")
        }
        steps.append((holdings, {asset: draw(price_values) for asset in ASSETS}))
    return steps


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(walk=walks(), picks=st.tuples(st.integers(0, 4), st.integers(0, 4)))
def test_quantity_and_price_moves_sum_to_the_change_in_value(
    walk: list[tuple[dict[str, dict[str, Decimal]], dict[str, Decimal | None]]],
    picks: tuple[int, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Over random walks of holdings and prices, recorded and rebuilt: for two instants, each balance's quantity
    move + price move is its change in value, and all of them the change in the totals of the two books, to the
    last digit (Decimal); both books' values are holding × price, worked out here with Python's Decimal."""
    from tui.assets import AssetNames
    from tui.monitor.moves import moves
    from tui.sinks.book_report import at_document

    tape = Tape(tmp_path_factory.mktemp("walk") / "history.sqlite3")
    try:
        for step, (holdings, usd) in enumerate(walk):
            at = T0 + 60 * step
            tape.venue(kraken(at, {v: {a: str(q) for a, q in h.items()} for v, h in holdings.items()}))
            tape.prices(prices(at, {("BTC" if a == "XBT" else a): str(p) for a, p in usd.items() if p is not None}))
        first, second = (T0 + 60 * (min(p, len(walk) - 1)) + 1 for p in picks)
        before, after = tape.book(first), tape.book(second)
        found = moves(before, after, AssetNames())
        at1, at2 = at_document(before), at_document(after)
    finally:
        tape.close()
    total = WIDE.subtract(Decimal(at2["usd_total"]), Decimal(at1["usd_total"]))  # never the default 28 digits
    assert found.holdings.change == total
    assert WIDE.add(found.holdings.quantity_move, found.holdings.price_move) == total
    moved = {(m.venue, m.account_id, m.asset): m for m in found.balances}
    values1, values2 = balances(at1), balances(at2)
    for key in set(values1) | set(values2):
        v1 = Decimal(values1[key]["usd_value"] or 0) if key in values1 else Decimal(0)
        v2 = Decimal(values2[key]["usd_value"] or 0) if key in values2 else Decimal(0)
        move = moved.get(key)
        both = WIDE.add(move.value.quantity_move, move.value.price_move) if move else Decimal(0)
        assert both == WIDE.subtract(v2, v1)
    for doc, (holdings, usd) in ((at1, walk[min(picks[0], len(walk) - 1)]), (at2, walk[min(picks[1], len(walk) - 1)])):
        expected = Decimal(0)
        for held in holdings.values():
            for asset, quantity in held.items():
                price = usd[asset]
                if price is not None:
                    expected = WIDE.add(expected, WIDE.multiply(quantity, price))
        assert Decimal(doc["usd_total"]) == expected
