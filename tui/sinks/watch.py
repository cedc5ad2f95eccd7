"""`--watch --format jsonl`: one JSON line per change, for piping into other tools. Never loads Textual.

The first refresh of each account prints every balance as "new", so a reader starts with the whole
state; after that only what moved. A venue that starts or stops failing prints a line too, and so does
each new set of prices ("prices": every price, and what everything is worth under them). Amounts and
values keep the contract of `--once`: exact strings, `null` where there is nothing.

Where prices are configured, the whole state waits for the first price answer (or its failure), so that its
"new" lines carry their values rather than `null`: at most PRICES_WAIT seconds after the first venue
answered, after which it is printed as it is and the values follow with the prices.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TextIO

from tui.assets import AssetNames
from tui.config import Config, load
from tui.engine.prices import PriceBook
from tui.money import fmt
from tui.monitor.changes import NEW, Change, ChangeTracker
from tui.monitor.valuation import Appraisal, appraise
from tui.pipe import reader_gone, when_reader_leaves
from tui.snapshot.contract import balance_record, firm_record
from tui.snapshot.model import VenueSnapshot, iso
from tui.stderr import say
from tui.untrusted import json_text

PRICES_WAIT = 15.0  # seconds the first state waits for the first prices, from the first venue's answer


def change_line(change: Change, worth: Appraisal | None) -> dict[str, Any]:
    balance, previous = change.balance, change.previous
    return {
        "at": iso(change.at),
        "event": change.event,
        "venue": change.venue,
        "kind": change.kind,
        "account": {"id": change.account_id, "name": change.account_name},
        "asset": change.asset,
        "fields": list(change.fields),
        "balance": balance_record(balance, worth, change.venue, change.account_id) if balance else None,
        "previous": previous.as_record() if previous is not None else None,
    }


def prices_line(worth: Appraisal) -> dict[str, Any]:
    """The prices in force and what everything is worth under them: printed whenever a price moves."""
    book = worth.book
    assert book is not None
    return {
        "at": iso(worth.now),
        "event": "prices",
        **firm_record(worth),
        "usd_prices": {asset: fmt(price.usd) for asset, price in sorted(book.prices.items())},
    }


class Lines:
    """The stream's lines, whoever writes them (`--watch` on stdout, `serve` to each of its viewers): what
    each finished refresh and each new set of prices add, and the whole state for a reader who starts now."""

    def __init__(self, names: AssetNames | None = None) -> None:
        self.names = names or AssetNames()
        self.tracker = ChangeTracker()
        self.latest: dict[str, VenueSnapshot] = {}
        self.book: PriceBook | None = None
        self._failing: dict[str, str | None] = {}
        self._printed: tuple[object, ...] = ()

    def venue(self, snapshot: VenueSnapshot) -> list[dict[str, Any]]:
        """What a refresh changed: a line per balance that moved, and one if the venue started or stopped failing."""
        if snapshot.refreshing:
            return []
        self.latest[snapshot.name] = snapshot
        worth = self._appraise([snapshot])
        lines = [change_line(c, worth) for c in self.tracker.diff(snapshot)]
        error = snapshot.first_error()
        message = error.message if error is not None else None
        if message != self._failing.get(snapshot.name, None):
            event = "venue-failing" if message else "venue-recovered"
            lines.append({"at": iso(time.time()), "event": event, "venue": snapshot.name, "error": message})
        self._failing[snapshot.name] = message
        return lines

    def prices(self, book: PriceBook) -> list[dict[str, Any]]:
        """A line when the prices or their trouble changed (not at every fetch of the same prices)."""
        self.book = book
        printed = (tuple((a, fmt(p.usd)) for a, p in sorted(book.prices.items())), book.error, book.unpriceable)
        if printed == self._printed:
            return []
        self._printed = printed
        worth = self._appraise(list(self.latest.values()))
        assert worth is not None
        return [prices_line(worth)]

    def state(self) -> list[dict[str, Any]]:
        """Everything known now, as a reader who had followed from the start would have it: a "new" line per
        balance (a failing account's last good ones included), a "venue-failing" line per failing venue, and
        the prices."""
        worth = self._appraise(list(self.latest.values()))
        lines = []
        for snapshot in self.latest.values():
            lines += [change_line(c, worth) for c in known(snapshot)]
            if self._failing.get(snapshot.name):
                at = iso(time.time())
                lines.append(
                    {"at": at, "event": "venue-failing", "venue": snapshot.name, "error": self._failing[snapshot.name]}
                )
        if worth is not None:
            lines.append(prices_line(worth))
        return lines

    def _appraise(self, venues: list[VenueSnapshot]) -> Appraisal | None:
        return appraise(venues, self.book, self.names, time.time()) if self.book is not None else None


def known(snapshot: VenueSnapshot) -> list[Change]:
    """Every balance this venue has answered, as "new": the accounts' last good answers."""
    return [
        Change(
            account.fetched_at,
            snapshot.name,
            snapshot.kind,
            account.id,
            account.name,
            b.asset,
            NEW,
            tuple(b.amounts),
            b,
            None,
        )
        for account in snapshot.accounts
        if account.fetched_at is not None
        for b in account.balances
    ]


def encode(line: dict[str, Any]) -> str:
    """One line of the stream, as written (the same bytes on stdout and to every viewer of a server): text from
    outside as JSON escapes where it could steer a terminal."""
    return json_text(line) + "\n"


class Stream:
    """Turns each finished refresh into JSON lines on `out`, and each new set of prices into one line. While
    `holding`, nothing is printed: `hold_for_prices` then prints the whole state once the first prices came."""

    def __init__(self, out: TextIO, names: AssetNames | None = None) -> None:
        self.out = out
        self.lines = Lines(names)
        self.holding = False  # the first state waits for the first prices
        self._answered = asyncio.Event()  # a venue answered while holding
        self._priced = asyncio.Event()  # the first prices (or their failure) came while holding

    def publish(self, snapshot: VenueSnapshot) -> None:
        lines = self.lines.venue(snapshot)
        if self.holding:
            if lines:
                self._answered.set()
            return
        self._write(lines)

    def publish_prices(self, book: PriceBook) -> None:
        lines = self.lines.prices(book)
        if self.holding:
            self._answered.set()
            self._priced.set()
            return
        self._write(lines)

    async def hold_for_prices(self, wait: float = PRICES_WAIT) -> None:
        """Once the first prices came (or failed), or `wait` seconds after the first venue answered without
        them: the whole state, as it is then, and every line after it as it comes."""
        self.holding = True
        await self._answered.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._priced.wait(), wait)
        self.holding = False
        self._write(self.lines.state())

    def _write(self, lines: list[dict[str, Any]]) -> None:
        for line in lines:
            self.out.write(encode(line))
        if lines:
            self.out.flush()


def run_watch(path: Path) -> int:
    """Until interrupted (Ctrl-C, SIGTERM, or the reader closing the pipe): exit 0."""
    config = load(path)
    try:
        asyncio.run(_watch(config, Stream(sys.stdout, AssetNames(config.assets))))
    except BrokenPipeError:
        reader_gone()  # the reader left (`| head`): the flush at exit stays quiet
    return 0


async def _watch(config: Config, stream: Stream) -> None:
    from tui.engine.engine import Engine

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Engine(config) as engine:
        for line in await engine.join_pollers():
            say(line)
        jobs: list[Coroutine[Any, Any, None]] = [engine.run(stream.publish, stream.publish_prices)]
        if engine.prices is not None:
            stream.holding = True  # before the first answer: hold_for_prices starts with the engine
            jobs.append(stream.hold_for_prices())
        running: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*jobs))
        gone = asyncio.Event()
        when_reader_leaves(loop, stream.out, gone.set)
        done: asyncio.Future[Any] = asyncio.create_task(stop.wait())
        left: asyncio.Future[Any] = asyncio.create_task(gone.wait())
        await asyncio.wait([done, left, running], return_when=asyncio.FIRST_COMPLETED)
        for waiting in (running, done, left):
            waiting.cancel()
        outcome = await asyncio.gather(running, return_exceptions=True)
        if gone.is_set() or isinstance(outcome[0], BrokenPipeError):
            raise BrokenPipeError
