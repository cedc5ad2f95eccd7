"""The book's edges not covered by tests/test_book.py: the same instant spelled in any zone and any ISO form
gives the same book (Hypothesis, against instants worked out here by date arithmetic, not by the parser);
an instant the program cannot write back (past the years 1-9999 in UTC) or a malformed one is a one-line
message through the real program, never a traceback; an older release's history never opened by this one;
and the statements worker on an injected wall clock: missed days written on return from the history and
marked late (across a daylight-saving change, named by local date), one written at its instant not late, one
written long after it (a machine asleep) late, an instant before the history skipped, nothing overwritten."""

from __future__ import annotations

import json
import sqlite3
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli, write_config
from tests.test_book import Tape, balances, kraken, prices
from tui.config import parse
from tui.instants import iso_instant, parse_instant
from tui.monitor.book import book_at
from tui.monitor.history import connect
from tui.sinks.book_report import at_document
from tui.sinks.statements import Statements

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = (datetime(2026, 11, 30, 12, 0, tzinfo=UTC) - EPOCH).total_seconds()


def _spell(moment: datetime, style: str) -> str:
    """An aware datetime in one of the ISO forms a person may type (the offset kept, or Z for UTC)."""
    offset = moment.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    date_part = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    time_part = f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    if style == "extended":
        return f"{date_part}T{time_part}{sign}{hh:02d}:{mm:02d}"
    if style == "basic":
        return f"{date_part.replace('-', '')}T{time_part.replace(':', '')}{sign}{hh:02d}{mm:02d}"
    if style == "space":
        return f"{date_part} {time_part}{sign}{hh:02d}:{mm:02d}"
    assert style == "utc"
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"


offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
styles = st.sampled_from(("extended", "basic", "space", "utc"))


@pytest.fixture
def local_zone_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's own zone +05:30, so that a time without a zone read as local time (not UTC) shows."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@settings(max_examples=300, deadline=None)
@given(
    utc=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    zone=offsets,
    style=styles,
)
def test_an_instant_in_any_zone_and_form_is_that_instant(utc: datetime, zone: timezone, style: str) -> None:
    """Any whole-second instant of the years 1-9999, spelled in any offset: parsed to its seconds since the
    epoch (worked out here by subtraction), and written back as its UTC spelling with a four-digit year."""
    utc = utc.replace(microsecond=0)
    text = _spell(utc.astimezone(zone), style)
    expected = (utc - EPOCH).total_seconds()
    assert parse_instant(text) == expected, text
    assert iso_instant(expected) == _spell(utc, "utc")


def test_a_time_without_a_zone_is_utc_and_a_date_its_start_in_utc(local_zone_not_utc: None) -> None:
    midnight = (datetime(2026, 12, 1, tzinfo=UTC) - EPOCH).total_seconds()
    assert parse_instant("2026-12-01") == midnight
    assert parse_instant("2026-12-01T00:00:00") == midnight
    assert parse_instant("2026-11-30 23:59:59") == midnight - 1
    assert parse_instant("2026-335") == midnight  # the ordinal date: day 335 of 2026 is 1 December
    assert parse_instant("2026-W49-2") == midnight  # ISO week 49 of 2026 begins on Monday 30 November


@given(zone=offsets, style=styles)
@settings(max_examples=10)
def test_past_the_years_1_to_9999_in_utc_is_refused_not_overflowed(zone: timezone, style: str) -> None:
    """Near either end an offset can carry an instant out of what can be written: a ValueError that says so."""
    minutes = int(zone.utcoffset(None).total_seconds()) // 60
    if minutes == 0:
        return
    edge = datetime(1, 1, 1, tzinfo=zone) if minutes > 0 else datetime(9999, 12, 31, 23, 59, 59, tzinfo=zone)
    if style == "utc":
        style = "extended"
    with pytest.raises(ValueError, match="outside the years 1 to 9999 in UTC"):
        parse_instant(_spell(edge, style))


# --- the same instant in any zone: the same book -------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tape]:
    tape = Tape(tmp_path_factory.mktemp("zones") / "history.sqlite3")
    tape.venue(kraken(T0, {"V1": {"XBT": "1", "ETH": "4"}}))
    tape.prices(prices(T0, {"BTC": "100", "ETH": "3"}, period=3600.0))
    tape.venue(kraken(T0 + 10, {"V1": {"XBT": "2"}}))  # XBT up, ETH withdrawn
    tape.prices(prices(T0 + 20, {"BTC": "90", "ETH": "3"}, period=3600.0))
    yield tape
    tape.close()


# the instant -> XBT's balance and the firm's worth then, by hand: 1x100+4x3, 2x100, 2x90
EXPECTED = {T0: ("1", "112"), T0 + 9: ("1", "112"), T0 + 10: ("2", "200"), T0 + 19: ("2", "200"), T0 + 20: ("2", "180")}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.sampled_from(sorted(EXPECTED)), zone=offsets, style=styles)
def test_the_same_instant_in_any_zone_gives_the_same_book(
    recorded: Tape, local_zone_not_utc: None, at: float, zone: timezone, style: str
) -> None:
    text = _spell(datetime.fromtimestamp(at, UTC).astimezone(zone), style)
    got = at_document(recorded.book(parse_instant(text)))
    xbt, worth = EXPECTED[at]
    assert got["as_of"]["at"] == _spell(datetime.fromtimestamp(at, UTC), "utc"), text
    assert balances(got)[("Kraken", "V1", "XBT")]["balance"] == xbt, text
    assert (("Kraken", "V1", "ETH") in balances(got)) is (at < T0 + 10), text
    assert got["usd_total"] == worth, text
    reference = at_document(recorded.book(at))
    assert {k: v for k, v in got.items() if k != "generated_at"} == {
        k: v for k, v in reference.items() if k != "generated_at"
    }


# --- as a user types it -----------------------------------------------------------------------------------------


def test_a_malformed_or_impossible_instant_is_one_line_never_a_traceback(tmp_path: Path) -> None:
    tape = Tape(tmp_path / "history.sqlite3")
    tape.venue(kraken(T0, {"V1": {"XBT": "1"}}))
    tape.close()
    config = write_config(tmp_path / "book.toml", f'[history]\npath = "{tape.path}"\n')
    for args in (
        ("--at", "9999-12-31T23:59:59-14:00"),
        ("--at", "0001-01-01T00:00:00+14:00"),
        ("--between", "2026-11-30", "9999-12-31T23:59:59-00:01"),
        ("--at", "9" * 5000),
        ("--at", "2026-11-30\x1b[2J\n2026-12-01"),
        ("--at", "2026-13-01"),
        ("--at", ""),
    ):
        done = run_cli("book", *args, "--config", str(config))
        assert done.returncode == 2 and done.stdout == "", args
        assert "Traceback" not in done.stderr and "\x1b" not in done.stderr, args
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("balance-tui: --") and len(lines[0]) < 200, (args, lines)
    early = run_cli("book", "--at", "0001-01-01T00:00:00Z", "--config", str(config))
    assert early.returncode == 2 and early.stderr.strip() == (
        "balance-tui: 0001-01-01T00:00:00Z is before the history begins (2026-11-30T12:00:00Z): nothing was "
        "recorded then"
    )


def test_an_older_releases_file_never_opened_by_this_one(tmp_path: Path) -> None:
    """`book` straight on a file written before answers were recorded (no answers tables at all): the book from
    the amounts alone, prices aged by their last move, and notes saying so; no traceback."""
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE changes (at REAL NOT NULL, venue TEXT NOT NULL, account TEXT NOT NULL, asset TEXT NOT NULL,"
        " field TEXT NOT NULL, value TEXT)"
    )
    old.executemany(
        "INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?)",
        [
            (T0, "Kraken", "V1", "XBT", "balance", "2.5"),
            (T0, "prices", "kraken", "BTC", "usd_price", "100"),
            (T0 + 30, "prices", "kraken", "BTC", "usd_price", "not a number"),  # by hand: no amount
            (T0 + 60, "Coinbase", "P1", "ETH", "quantity", "3"),
        ],
    )
    old.commit()
    old.close()
    path.chmod(0o600)
    config = write_config(tmp_path / "book.toml", f'[history]\npath = "{path}"\n')
    for fmt in ("json", "table", "csv"):
        done = run_cli("book", "--at", iso_instant(T0 + 90), "--format", fmt, "--config", str(config))
        assert done.returncode == 0 and "Traceback" not in done.stderr, (fmt, done.stderr)
    got = json.loads(
        run_cli("book", "--at", iso_instant(T0 + 90), "--format", "json", "--config", str(config)).stdout,
        parse_float=Decimal,
    )
    assert balances(got) == {
        ("Kraken", "V1", "XBT"): balances(got)[("Kraken", "V1", "XBT")],
        ("Coinbase", "P1", "ETH"): balances(got)[("Coinbase", "P1", "ETH")],
    }
    assert balances(got)[("Kraken", "V1", "XBT")]["balance"] == "2.5"
    assert got["as_of"]["prices"]["fetched_at"] == iso_instant(T0 + 30)  # the last price that moved
    assert got["usd_total"] == "0" and set(got["unpriced"]) == {"BTC", "ETH"}  # BTC's price is no amount now
    assert any("fetch times were not recorded" in n for n in got["as_of"]["notes"])
    assert any("recorded no answers in this file" in n for n in got["as_of"]["notes"])
    before = json.loads(
        run_cli("book", "--at", iso_instant(T0 + 10), "--format", "json", "--config", str(config)).stdout,
        parse_float=Decimal,
    )
    assert before["usd_total"] == "250" and before["as_of"]["prices"]["age_seconds"] == 10.0


# --- statements on an injected wall clock -----------------------------------------------------------------------


def _utc(text: str) -> float:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is UTC
    return (moment - EPOCH).total_seconds()


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def _statement(folder: Path, day: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / f"book-{day}.json").read_text(), parse_float=Decimal)
    return document


def test_statements_on_a_wall_clock_missed_at_their_instant_and_asleep(tmp_path: Path) -> None:
    """New York, 00:00: 2026-10-31 and 11-01 are 04:00Z (EDT), 11-02 onwards 05:00Z (EST, after 1 November's
    change). The history begins 2026-10-30T12:00Z, so 10-30's statement has nothing to be made of."""
    tape = Tape(tmp_path / "history.sqlite3")
    tape.venue(kraken(_utc("2026-10-30T12:00:00+00:00"), {"V1": {"XBT": "1"}}))
    tape.prices(prices(_utc("2026-10-30T12:00:00+00:00"), {"BTC": "100"}, period=86400.0))
    tape.venue(kraken(_utc("2026-10-31T06:00:00+00:00"), {"V1": {"XBT": "2"}}))
    tape.venue(kraken(_utc("2026-11-01T04:30:00+00:00"), {"V1": {"XBT": "3"}}))
    tape.prices(prices(_utc("2026-11-01T04:30:00+00:00"), {"BTC": "110"}, period=86400.0))
    tape.close()
    folder = tmp_path / "statements"
    config = parse(
        f'[history]\npath = "{tape.path}"\n[statements]\nat = "00:00"\ntimezone = "America/New_York"\n'
        f'folder = "{folder}"\n'
    )
    clock = Clock(_utc("2026-11-02T05:00:10+00:00"))  # started ten seconds after 11-02's instant
    worker = Statements(config, wall=clock)
    written = worker.write_due()
    assert sorted(p.name for p in written) == [
        f"book-{day}.{fmt}" for day in ("2026-10-31", "2026-11-01", "2026-11-02") for fmt in ("csv", "json")
    ]
    hand = {  # local date -> the instant, XBT then and its worth, by hand
        "2026-10-31": ("2026-10-31T04:00:00Z", "1", "100"),
        "2026-11-01": ("2026-11-01T04:00:00Z", "2", "200"),
        "2026-11-02": ("2026-11-02T05:00:00Z", "3", "330"),
    }
    db = connect(tape.path)
    try:
        for day, (due, xbt, worth) in hand.items():
            statement = _statement(folder, day)
            assert statement["statement"]["due_at"] == due and statement["as_of"]["at"] == due, day
            assert statement["statement"]["late"] is True and statement["statement"]["written"] == (
                "late: written 2026-11-02T05:00:10Z from the history (balance-tui was not running at the instant)"
            )
            assert balances(statement)[("Kraken", "V1", "XBT")]["balance"] == xbt and statement["usd_total"] == worth
            book = at_document(book_at(db, _utc(due.replace("Z", "+00:00")), config))
            assert {k: v for k, v in statement.items() if k not in ("statement", "generated_at")} == {
                k: v for k, v in book.items() if k != "generated_at"
            }
            csv_text = (folder / f"book-{day}.csv").read_text()
            assert csv_text.splitlines()[0].endswith(",written") and all(
                line.split(",")[-1].startswith("late: ") for line in csv_text.splitlines()[1:]
            )
            for fmt in ("json", "csv"):
                assert stat.S_IMODE((folder / f"book-{day}.{fmt}").stat().st_mode) == 0o600
    finally:
        db.close()
    assert not (folder / "book-2026-10-30.json").exists()  # before the history: nothing to be made of
    assert [line for line in worker.said if "not written" in line] == []  # skipped quietly, not 31 complaints
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700

    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert worker.write_due() == [] and {p.name: p.read_bytes() for p in folder.iterdir()} == before

    clock.at = _utc("2026-11-03T05:00:01.5+00:00")  # the next instant has passed but not settled: an answer
    assert worker.write_due() == []  # from just before it may still be on its way to the history
    clock.at = _utc("2026-11-03T05:00:02.5+00:00")  # running through the next instant, just past its settling
    assert sorted(p.name for p in worker.write_due()) == ["book-2026-11-03.csv", "book-2026-11-03.json"]
    on_time = _statement(folder, "2026-11-03")
    assert on_time["statement"]["late"] is False and on_time["statement"]["written"] == "at the instant"
    assert on_time["statement"]["local_time"] == "2026-11-03T00:00:00-05:00"

    clock.at = _utc("2026-11-04T05:02:00+00:00")  # the machine slept through the instant: two minutes late
    assert len(worker.write_due()) == 2
    asleep = _statement(folder, "2026-11-04")["statement"]
    assert asleep["late"] is True and asleep["written"] == (
        "late: written 2026-11-04T05:02:00Z from the history (2.0 min after the instant: the machine was asleep or "
        "the program held up)"
    )
    (folder / "book-2026-11-04.csv").unlink()  # a crash between the two files: the missing one only
    kept = (folder / "book-2026-11-04.json").read_bytes()
    assert [p.name for p in worker.write_due()] == ["book-2026-11-04.csv"]
    assert (folder / "book-2026-11-04.json").read_bytes() == kept
    assert [line.split(":")[0] for line in worker.said if "late: from the history" in line] == [
        f"statement of {day} written (late"
        for day in ("2026-10-31", "2026-11-01", "2026-11-02", "2026-11-04", "2026-11-04")
    ]


# --- --asset: a misspelling is not an empty book ----------------------------------------------------------------


def test_an_asset_never_held_is_said_one_held_at_another_instant_is_an_empty_book(tmp_path: Path) -> None:
    tape = Tape(tmp_path / "history.sqlite3")
    tape.venue(kraken(T0, {"V1": {"XBT": "1"}}))
    tape.prices(prices(T0, {"BTC": "100", "ETH": "3"}))
    tape.venue(kraken(T0 + 10, {"V1": {"XBT": "1", "ETH": "4"}}))  # ETH arrives
    tape.venue(kraken(T0 + 20, {"V1": {"ETH": "4"}}))  # XBT leaves
    tape.close()
    config = write_config(tmp_path / "book.toml", f'[history]\npath = "{tape.path}"\n')

    def book(*args: str) -> Any:
        return run_cli("book", *args, "--format", "json", "--config", str(config))

    empty = book("--at", iso_instant(T0 + 5), "--asset", "ETH")
    assert empty.returncode == 0, empty.stderr
    got = json.loads(empty.stdout, parse_float=Decimal)
    assert balances(got) == {} and got["usd_total"] == "0"  # none of it held then: the answer, not an error
    moved = json.loads(book("--between", iso_instant(T0 + 5), iso_instant(T0 + 15), "--asset", "ETH").stdout)
    assert [(m["asset"], m["quantity"]["from"], m["quantity"]["to"]) for m in moved["balances"]] == [("ETH", None, "4")]
    by_name = json.loads(book("--at", iso_instant(T0 + 5), "--asset", "BTC").stdout)  # XBT by its totals name
    assert list(balances(by_name)) == [("Kraken", "V1", "XBT")]
    gone = book("--at", iso_instant(T0 + 25), "--asset", "BTC")  # held before, as XBT: none of it now
    assert gone.returncode == 0 and balances(json.loads(gone.stdout)) == {}, gone.stderr
    for args in (("--at", iso_instant(T0 + 15)), ("--between", iso_instant(T0), iso_instant(T0 + 15))):
        wrong = book(*args, "--asset", "ETHH")
        assert wrong.returncode == 2 and wrong.stdout == "", args
        assert wrong.stderr.splitlines() == [
            "balance-tui: no asset named 'ETHH' was ever held in the history (held: BTC, ETH)"
        ], args


def test_a_statement_is_named_by_its_local_date_not_utcs(tmp_path: Path) -> None:
    """Tokyo (+09:00) at 08:00: 2026-12-01's statement is due 2026-11-30T23:00:00Z, still 30 November in UTC."""
    tape = Tape(tmp_path / "history.sqlite3")
    tape.venue(kraken(_utc("2026-11-30T00:00:00+00:00"), {"V1": {"XBT": "1"}}))
    tape.venue(kraken(_utc("2026-11-30T22:59:59+00:00"), {"V1": {"XBT": "2"}}))
    tape.venue(kraken(_utc("2026-11-30T23:00:01+00:00"), {"V1": {"XBT": "3"}}))
    tape.close()
    folder = tmp_path / "statements"
    config = parse(
        f'[history]\npath = "{tape.path}"\n[statements]\nat = "08:00"\ntimezone = "Asia/Tokyo"\nfolder = "{folder}"\n'
    )
    worker = Statements(config, wall=Clock(_utc("2026-11-30T23:00:05+00:00")))
    assert sorted(p.name for p in worker.write_due()) == ["book-2026-12-01.csv", "book-2026-12-01.json"]
    statement = _statement(folder, "2026-12-01")
    assert statement["statement"]["due_at"] == "2026-11-30T23:00:00Z" and statement["statement"]["late"] is True
    assert statement["statement"]["local_time"] == "2026-12-01T08:00:00+09:00"
    assert balances(statement)[("Kraken", "V1", "XBT")]["balance"] == "2"
