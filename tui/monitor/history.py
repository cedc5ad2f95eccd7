"""Balance history in SQLite: one row per field whose digits changed, so a month of 5 s refreshes of
balances that rarely move stays small.

WAL journal, one transaction per refresh: a crash or `kill -9` loses at most the refresh being written,
never the file. Values are exact decimal strings (NULL once a balance is gone). Writes happen on a
thread of their own, so a slow disk never holds up a refresh or the screen.
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

from tui.config import Config
from tui.money import AmountError, fmt, parse_amount
from tui.monitor.changes import Change
from tui.paths import Tell, app_folder, private_file, private_folder, tighten

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
"""


def default_path() -> Path:
    return app_folder("data") / "history.sqlite3"


def path_for(config: Config) -> Path:
    """Where this config's history lives: `[history] path`, else the platform's data directory."""
    return config.history.path or default_path()


_NEVER = object()  # no value recorded yet (None is a value: the balance is gone)


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


class History:
    """The store. `record()` queues; a writer thread commits each batch in one transaction."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.notes: list[str] = []  # what was made private on opening: for the operator, one line each
        self._db = connect(path, self.notes.append)
        self._last = self._latest()
        self._queue: queue.Queue[list[Change] | None] = queue.Queue()
        self._lock = threading.Lock()
        self.error: str | None = None  # set if a write failed; the operator sees it, the monitor carries on
        self._writer = threading.Thread(target=self._write_loop, name="history-writer", daemon=True)
        self._writer.start()

    def _latest(self) -> dict[tuple[str, str, str, str], str | None]:
        """The last recorded value of every field, so a restart records only what moved meanwhile."""
        query = (
            "SELECT venue, account, asset, field, value FROM changes WHERE rowid IN "
            "(SELECT max(rowid) FROM changes GROUP BY venue, account, asset, field)"
        )
        return {(v, a, s, f): value for v, a, s, f, value in self._db.execute(query)}

    def record(self, changes: list[Change]) -> None:
        if changes:
            self._queue.put(changes)

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
                self._write(batch)
            finally:
                self._queue.task_done()

    def _write(self, changes: list[Change]) -> None:
        """One transaction for the batch. A batch that cannot be written (a full disk, a value SQLite cannot
        take) is said in `error` and forgotten as written, so its values are tried again with the next change;
        the writer carries on either way."""
        fresh = []
        written: dict[tuple[str, str, str, str], str | None] = {}
        for row in rows_for(changes):
            key = row[1:5]
            if written.get(key, self._last.get(key, _NEVER)) == row[5]:
                continue
            written[key] = row[5]
            fresh.append(row)
        if not fresh:
            return
        try:
            with self._lock:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?)", fresh)
                self._db.execute("COMMIT")
        except (sqlite3.Error, ValueError) as exc:  # ValueError: text SQLite cannot encode
            self.error = f"history not written: {exc}"
            with self._lock:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            return
        self.error = None
        self._last.update(written)

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
