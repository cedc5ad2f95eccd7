"""Balance history in SQLite: one row per field whose digits changed, so a month of 5 s refreshes of
balances that rarely move stays small; and, so that the book at any past instant can be rebuilt (`book.py`),
one small row per answer (a venue's refresh, a fetch of the prices: its time, its data's time, its failures,
its period) pointing at what it said besides the amounts (`answers.py`), kept once per distinct state.

WAL journal, one transaction per refresh: a crash or `kill -9` loses at most the refresh being written,
never the file. Values are exact decimal strings (NULL once a balance is gone). Writes happen on a
thread of their own, so a slow disk never holds up a refresh or the screen.

The schema only ever grows: a file of an older release gets the new tables when opened (CREATE ... IF NOT
EXISTS), and its older instants are read from `changes` alone (`book` says what they lack).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from tui.config import Config
from tui.money import AmountError, fmt, parse_amount
from tui.monitor.answers import PRICES, Row, prices_row, venue_row
from tui.monitor.changes import Change
from tui.paths import Tell, app_folder, private_file, private_folder, tighten
from tui.snapshot.model import VenueSnapshot

if TYPE_CHECKING:
    from tui.engine.prices import PriceBook

SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    at REAL NOT NULL,
    venue TEXT NOT NULL,
    account TEXT NOT NULL,
    asset TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT
);
CREATE INDEX IF NOT EXISTS changes_by_key ON changes (venue, account, asset, field, at);
CREATE INDEX IF NOT EXISTS changes_by_time ON changes (at);
CREATE TABLE IF NOT EXISTS answer_sources (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS answer_states (
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS answers (
    source INTEGER NOT NULL,
    at REAL NOT NULL,
    fetched REAL,
    failures INTEGER NOT NULL,
    period REAL,
    state INTEGER NOT NULL,
    PRIMARY KEY (source, at)
) WITHOUT ROWID;
"""
# answers.fetched is NULL when it equals `at` (an answer that brought data is dated by it): most rows then hold
# two numbers and two small integers, about 20 bytes a refresh.


def default_path() -> Path:
    return app_folder("data") / "history.sqlite3"


def path_for(config: Config) -> Path:
    """Where this config's history lives: `[history] path`, else the platform's data directory."""
    return config.history.path or default_path()


_NEVER = object()  # no value recorded yet (None is a value: the balance is gone)
Key = tuple[str, str, str]  # a balance: venue, account, asset
_NOTHING: dict[str, str | None] = {}  # a balance with no field recorded (never written to)


def _fields(last: dict[Key, dict[str, str | None]], key: Key) -> dict[str, str | None]:
    """The last values of one balance's fields, in `last`, created empty the first time."""
    fields = last.get(key)
    if fields is None:
        fields = last[key] = {}
    return fields


class HistoryError(Exception):
    """The history file cannot be opened or read: one line for the operator."""


@dataclass(frozen=True, slots=True)
class Point:
    at: float
    venue: str
    account: str
    asset: str
    field: str
    value: str | None


def connect(path: Path | str, tell: Tell | None = None) -> sqlite3.Connection:
    """The history database, private: see `make_private`. `tell` hears what was tightened."""
    try:
        if isinstance(path, Path):
            make_private(path, tell)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise HistoryError(
            f"{path}: cannot be used as balance history ({exc}); move it aside to start afresh"
        ) from None
    except OSError as exc:
        raise HistoryError(f"{path}: {exc.strerror}") from None
    return db


def make_private(path: Path, tell: Tell | None = None) -> None:
    """The firm's holdings are for its owner's eyes: the database is created 0600 before SQLite opens it
    (SQLite then gives its -wal and -shm the database's mode), and one that others could read, or its -wal
    or -shm, is made private. Its folder is created 0700; when it is our own platform data folder, an existing
    one open to others is tightened too. The folder of a `[history] path` the operator chose elsewhere is
    theirs: created 0700 if missing, never chmod-ed (only the files in it are ours)."""
    ours = app_folder("data")
    private_folder(path.parent, ours=ours if path.parent == ours else None, tell=tell)
    private_file(path, tell)
    for journal in _journals(path):
        tighten(journal, tell)


def _journals(path: Path) -> list[Path]:
    """The -wal and -shm files that exist beside the database."""
    return [journal for suffix in ("-wal", "-shm") if (journal := Path(f"{path}{suffix}")).exists()]


def rows_for(changes: Iterable[Change]) -> list[tuple[float, str, str, str, str, str | None]]:
    rows = []
    for change in changes:
        amounts = change.balance.amounts if change.balance is not None else {}
        for name in change.fields:
            value = amounts.get(name)
            rows.append(
                (
                    change.at,
                    change.venue,
                    change.account_id,
                    change.asset,
                    name,
                    fmt(value) if value is not None else None,
                )
            )
    return rows


Answer = tuple["VenueSnapshot | PriceBook", float]  # what answered, and when the program took it
_Batch = tuple[list[Change], Answer | None]
STATES_KEPT = 1000  # distinct states remembered by the writer (a venue has a handful; more are looked up)
CACHE_KIB = 256  # the writer's SQLite page cache (default 2,000 KiB): it appends and looks up little, and the
# file's pages stay in the OS's cache anyway; 2 MB of RSS less (issue 24)


class History:
    """The store. `record()` queues; a writer thread commits each batch in one transaction."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.notes: list[str] = []  # what was made private on opening: for the operator, one line each
        self._db = connect(path, self.notes.append)
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self._last = self._latest()
        self._fetched = self._last_fetched()  # per source, its last answer's data time
        self._sources: dict[str, int] = {}
        self._states: dict[str, int] = {}
        self._queue: queue.Queue[_Batch | None] = queue.Queue()
        self._lock = threading.Lock()
        self.error: str | None = None  # set if a write failed; the operator sees it, the monitor carries on
        self._writer = threading.Thread(target=self._write_loop, name="history-writer", daemon=True)
        self._writer.start()

    def _latest(self) -> dict[Key, dict[str, str | None]]:
        """The last recorded value of every field, so a restart records only what moved meanwhile: by balance
        (venue, account, asset), then by field. One key per balance, not one 4-tuple per field: for 2,000
        balances of 8 fields that was 17,000 tuples and 1.8 MB of the TUI's memory (issue 24)."""
        query = (
            "SELECT venue, account, asset, field, value FROM changes WHERE rowid IN "
            "(SELECT max(rowid) FROM changes GROUP BY venue, account, asset, field)"
        )
        last: dict[Key, dict[str, str | None]] = {}
        for v, a, s, f, value in self._db.execute(query):
            _fields(last, (v, a, s))[f] = value
        return last

    def _last_fetched(self) -> dict[str, float | None]:
        query = (
            "SELECT name, (SELECT coalesce(fetched, at) FROM answers WHERE source = answer_sources.id "
            "ORDER BY at DESC LIMIT 1) FROM answer_sources"
        )
        return dict(self._db.execute(query).fetchall())

    def record(
        self, changes: list[Change], answer: VenueSnapshot | PriceBook | None = None, taken: float = 0.0
    ) -> None:
        """A refresh's changes, and the answer they came with (a venue's finished refresh, or the prices, taken
        by the program at `taken`): one transaction."""
        if changes or answer is not None:
            self._queue.put((changes, (answer, taken) if answer is not None else None))

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything queued is on disk (tests, and before closing)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(10)
        with self._lock:
            self._db.close()

    def _write_loop(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                self._write(*batch)
            finally:
                self._queue.task_done()

    def _write(self, changes: list[Change], answer: Answer | None) -> None:
        """One transaction for the batch. A batch that cannot be written (a full disk, a value SQLite cannot
        take) is said in `error` and forgotten as written, so its values are tried again with the next change;
        the writer carries on either way."""
        fresh = []
        written: dict[tuple[str, str, str, str], str | None] = {}
        for row in rows_for(changes):
            key = row[1:5]
            if written.get(key, self._last.get(key[:3], _NOTHING).get(key[3], _NEVER)) == row[5]:
                continue
            written[key] = row[5]
            fresh.append(row)
        said = self._row(*answer) if answer is not None else None
        if not fresh and said is None:
            return
        try:
            with self._lock:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?)", fresh)
                if said is not None:
                    self._insert_answer(said)
                self._db.execute("COMMIT")
        except (sqlite3.Error, ValueError) as exc:  # ValueError: text SQLite cannot encode
            self.error = f"history not written: {exc}"
            with self._lock:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            self._sources.clear()  # ids given inside the rolled-back transaction are gone with it
            self._states.clear()
            return
        self.error = None
        for (venue, account, asset, name), value in written.items():
            _fields(self._last, (venue, account, asset))[name] = value
        if said is not None:
            self._fetched[said.source] = said.fetched

    def _row(self, what: VenueSnapshot | PriceBook, taken: float) -> Row:
        if isinstance(what, VenueSnapshot):
            return venue_row(what, taken, self._fetched.get(what.name))
        return prices_row(what, taken, self._fetched.get(PRICES))

    def _insert_answer(self, row: Row) -> None:
        """The answer's row, its source's and its state's (each state once). Inside the writer's transaction."""
        source = self._sources.get(row.source)
        if source is None:
            self._db.execute("INSERT OR IGNORE INTO answer_sources (name) VALUES (?)", (row.source,))
            (source,) = self._db.execute("SELECT id FROM answer_sources WHERE name = ?", (row.source,)).fetchone()
            self._sources[row.source] = source
        state = self._states.get(row.state)
        if state is None:
            self._db.execute("INSERT OR IGNORE INTO answer_states (body) VALUES (?)", (row.state,))
            (state,) = self._db.execute("SELECT id FROM answer_states WHERE body = ?", (row.state,)).fetchone()
            if len(self._states) >= STATES_KEPT:
                self._states.clear()
            self._states[row.state] = state
        fetched = None if row.fetched == row.at else row.fetched
        self._db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
            (source, row.at, fetched, row.failures, row.period, state),
        )

    def series(self, venue: str, account: str, asset: str, field: str, since: float) -> list[tuple[float, Decimal]]:
        """One field's values since `since`, the value in force at `since` first: what a sparkline draws."""
        query = (
            "SELECT at, value FROM changes WHERE venue = ? AND account = ? AND asset = ? AND field = ? AND at < ? "
            "ORDER BY at DESC LIMIT 1"
        )
        key = (venue, account, asset, field)
        with self._lock:
            before = self._db.execute(query, (*key, since)).fetchall()
            after = self._db.execute(
                "SELECT at, value FROM changes WHERE venue = ? AND account = ? AND asset = ? AND field = ? AND at >= ? "
                "ORDER BY at",
                (*key, since),
            ).fetchall()
        points = [(max(at, since), value) for at, value in before] + list(after)
        return [(at, amount) for at, value in points if (amount := _amount(value)) is not None]


def _amount(value: str | None) -> Decimal | None:
    """A recorded value, or None for one that is no amount (written by an older release, or by hand)."""
    try:
        return parse_amount(value)
    except AmountError:
        return None


def query(
    db: sqlite3.Connection, *, venue: str | None = None, asset: str | None = None, since: float | None = None
) -> list[Point]:
    clauses: list[str] = []
    args: list[str | float] = []
    if venue is not None:
        clauses.append("venue = ?")
        args.append(venue)
    if asset is not None:
        clauses.append("asset = ?")
        args.append(asset)
    if since is not None:
        clauses.append("at >= ?")
        args.append(since)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = db.execute(f"SELECT at, venue, account, asset, field, value FROM changes{where} ORDER BY at, rowid", args)
    return [Point(*row) for row in rows]


# --- the book at an instant reads these ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recorded:
    """An answer as stored: `fetched` resolved (the column is NULL when it equals `at`), `state` its JSON."""

    source: str
    at: float
    fetched: float
    failures: int
    period: float | None
    state: str


def first_record(db: sqlite3.Connection) -> float | None:
    """When the history begins: its first change or answer (None: it holds nothing)."""
    first = [db.execute("SELECT min(at) FROM changes").fetchone()[0], answers_begin(db)]
    return min((at for at in first if at is not None), default=None)


def answers_begin(db: sqlite3.Connection) -> float | None:
    """The first answer recorded: before it (a file of an older release), the history kept amounts only."""
    query = "SELECT min((SELECT min(at) FROM answers WHERE source = answer_sources.id)) FROM answer_sources"
    at: float | None = db.execute(query).fetchone()[0]
    return at


def answer_sources(db: sqlite3.Connection) -> list[str]:
    """Every venue (and "prices") that ever answered, in the order they first did."""
    return [name for (name,) in db.execute("SELECT name FROM answer_sources ORDER BY id")]


def answer_at(db: sqlite3.Connection, source: str, at: float) -> Recorded | None:
    """The source's last answer at or before `at`."""
    row = db.execute(
        "SELECT answers.at, coalesce(answers.fetched, answers.at), failures, period, body FROM answers "
        "JOIN answer_sources ON answer_sources.id = answers.source "
        "JOIN answer_states ON answer_states.id = answers.state "
        "WHERE answer_sources.name = ? AND answers.at <= ? ORDER BY answers.at DESC LIMIT 1",
        (source, at),
    ).fetchone()
    return None if row is None else Recorded(source, *row)


def value_at(db: sqlite3.Connection, venue: str, account: str, asset: str, field: str, at: float) -> str | None:
    """A field's last recorded value at or before `at` (None: gone, not sent, or never recorded)."""
    row = db.execute(
        "SELECT value FROM changes WHERE venue = ? AND account = ? AND asset = ? AND field = ? AND at <= ? "
        "ORDER BY at DESC, rowid DESC LIMIT 1",
        (venue, account, asset, field, at),
    ).fetchone()
    return None if row is None else row[0]


def recorded_keys(db: sqlite3.Connection, at: float) -> list[tuple[str, str, str, str]]:
    """Every (venue, account, asset, field) with a value recorded at or before `at`, in the order first seen:
    what an instant before the answers were recorded is rebuilt from."""
    query = (
        "SELECT venue, account, asset, field FROM changes WHERE at <= ? "
        "GROUP BY venue, account, asset, field ORDER BY min(rowid)"
    )
    return [(venue, account, asset, field) for venue, account, asset, field in db.execute(query, (at,))]
