"""End-of-day statements: each day at `[statements] at` (local time in `timezone`), the book at that instant,
from the history, written as `book-YYYY-MM-DD.json` and `.csv` (the instant's local date) into `folder`.

A statement is the book `balance-tui book --at` gives for its instant, written by the same code. Files are
private (0600, in a 0700 folder) and never overwritten: one that exists is left as it is. An instant missed
while the program was down is written when it comes back (the newest statement in the folder, or 31 days ago,
whichever is later, onwards), from the history, and says so: `statement.late` in the JSON, the `written` column
of the CSV. Every wait polls the clock (a suspended machine, a clock that jumps), and the clock is injectable.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tui.config import Config
from tui.monitor.book import BookError, book_at
from tui.monitor.history import History, HistoryError, connect, first_record, path_for
from tui.paths import app_folder, private_folder
from tui.sinks.book_report import Statement, render_at
from tui.statements_config import StatementsConfig

SETTLE = 2.0  # seconds after the instant before writing: an answer that came just before it reaches the history
LATE_AFTER = 60.0  # written this long after its instant or more (a machine asleep): late too, and said so
CATCH_UP_DAYS = 31  # how far back a missed instant is still written on return
POLL = 1.0  # the longest sleep between two looks at the clock
NAME = re.compile(r"book-(\d{4}-\d{2}-\d{2})\.(json|csv)")


@dataclass(frozen=True, slots=True)
class Due:
    """One statement: its instant, and its local date (the files' name)."""

    at: float
    day: date
    local: datetime


def folder_for(config: Config) -> Path:
    settings = config.statements
    return settings.folder if settings is not None and settings.folder is not None else default_folder()


def default_folder() -> Path:
    return app_folder("data") / "statements"


def instant_on(settings: StatementsConfig, day: date) -> Due:
    local = datetime.combine(day, settings.at, tzinfo=ZoneInfo(settings.timezone))
    return Due(local.timestamp(), day, local)


def due_between(settings: StatementsConfig, start: float, end: float) -> list[Due]:
    """Every statement instant in (start, end], oldest first."""
    zone = ZoneInfo(settings.timezone)
    day = datetime.fromtimestamp(start, zone).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, zone).date() + timedelta(days=1)
    found = []
    while day <= last:
        due = instant_on(settings, day)
        if start < due.at <= end:
            found.append(due)
        day += timedelta(days=1)
    return found


def next_due(settings: StatementsConfig, after: float) -> Due:
    """The first statement instant after `after`."""
    zone = ZoneInfo(settings.timezone)
    day = datetime.fromtimestamp(after, zone).date() - timedelta(days=1)
    while (due := instant_on(settings, day)).at <= after:
        day += timedelta(days=1)
    return due


class Statements:
    """The daily writer of one config: `run()` until cancelled, in `serve` or the TUI beside the history
    they record (`history`, flushed before each statement is read back)."""

    def __init__(
        self,
        config: Config,
        history: History | None = None,
        *,
        say: Callable[[str], None] = print,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if config.statements is None:
            raise ValueError("no [statements] in this config")
        self.config = config
        self.settings = config.statements
        self.folder = folder_for(config)
        self.history = history
        self.source = Path(history.path) if history is not None else path_for(config)  # the file it records
        self._say = say
        self._wall = wall
        self.started = wall()  # an instant before it was missed: the program was not running then
        self.said: list[str] = []  # what the writer has to say: said by `run` on its own loop, never a thread

    async def run(self) -> None:
        """Forever: write whatever is due (a missed one too), then sleep until the next instant has settled."""
        while True:
            await asyncio.to_thread(self.write_due)
            while self.said:
                self._say(self.said.pop(0))
            due = next_due(self.settings, self._wall() - SETTLE)
            while (left := due.at + SETTLE - self._wall()) > 0:
                await asyncio.sleep(min(left, POLL))

    def write_due(self) -> list[Path]:
        """Every statement due by now and not written yet: from the newest one in the folder (at most
        CATCH_UP_DAYS back), each whose instant has settled and that the history covers."""
        now = self._wall()
        start = now - CATCH_UP_DAYS * 86400.0
        newest = self.newest()
        if newest is not None:  # that day again too: a file of it may be missing (a crash between the two)
            start = max(start, instant_on(self.settings, newest).at - 1.0)
        due = due_between(self.settings, start, now - SETTLE)
        if not due:
            return []
        begins = self._begins()
        written: list[Path] = []
        for one in due:
            if begins is not None and one.at >= begins:
                written += self.write(one)
        return written

    def _begins(self) -> float | None:
        """When the history begins (None: nothing recorded yet, or it cannot be read: said)."""
        if self.history is not None:
            self.history.flush()
        try:
            db = connect(self.source, self.said.append)
            try:
                return first_record(db)
            finally:
                db.close()
        except (HistoryError, sqlite3.Error) as exc:
            self.said.append(f"statements not written: {exc}")
            return None

    def newest(self) -> date | None:
        """The date of the newest statement in the folder."""
        try:
            names = [NAME.fullmatch(entry.name) for entry in self.folder.iterdir()]
        except OSError:
            return None
        days = []
        for match in names:
            if match is not None:
                try:
                    days.append(date.fromisoformat(match.group(1)))
                except ValueError:
                    continue
        return max(days, default=None)

    def paths(self, due: Due) -> dict[str, Path]:
        return {fmt: self.folder / f"book-{due.day.isoformat()}.{fmt}" for fmt in ("json", "csv")}

    def write(self, due: Due) -> list[Path]:
        """The statement of `due`, the files of it that are missing (none is ever replaced). Problems are said
        (one line each), never raised: the program that writes statements has other work."""
        missing = {fmt: path for fmt, path in self.paths(due).items() if not path.exists()}
        if not missing:
            return []
        if self.history is not None:
            self.history.flush()  # what was recorded by the instant is on disk before it is read back
        try:
            db = connect(self.source, self.said.append)
            try:
                book = book_at(db, due.at, self.config)
            finally:
                db.close()
        except (BookError, HistoryError, sqlite3.Error) as exc:
            self.said.append(f"statement of {due.day} not written: {exc}")
            return []
        written_at = self._wall()
        down = due.at < self.started
        late = down or written_at - due.at >= LATE_AFTER  # down, or asleep (a suspended machine)
        statement = Statement(due.at, due.local, written_at, late, down)
        written = []
        try:
            ours = app_folder("data")
            private_folder(self.folder, ours=ours if self.folder.is_relative_to(ours) else None, tell=self.said.append)
            for fmt, path in missing.items():
                if write_new(path, render_at(book, fmt, statement)):
                    written.append(path)
            if written:
                how = " (late: from the history)" if late else ""
                self.said.append(
                    f"statement of {due.day} written{how}: {', '.join(p.name for p in written)} in {self.folder}"
                )
        except OSError as exc:
            self.said.append(f"statement of {due.day} not written to {self.folder}: {exc.strerror or exc}")
        return written


def write_new(path: Path, text: str) -> bool:
    """`text` into a new private file at `path`, whole or not at all; False (nothing done) if one is there."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, path)  # never replaces: fails if the name is taken
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


async def run_statements(config: Config, history: History | None, say: Callable[[str], None]) -> None:
    """The daily writer when `[statements]` is configured and the history is recorded; else nothing, at once.
    A bug in it is said and ends it alone: the program it runs in has other work."""
    if config.statements is None or history is None or not isinstance(history.path, Path):
        return  # not configured, or nothing recorded to a file (":memory:", a viewer's session)
    try:
        await Statements(config, history, say=say).run()
    except Exception as exc:  # never past here: serve and the TUI keep polling
        say(f"statements stopped: {type(exc).__name__}: {exc}")
