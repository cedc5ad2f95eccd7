"""`--attach URL`: the TUI, `--once` and `--watch` reading from a `serve` instead of the venues, with the
same output and exit codes. The server's contract is checked first: a viewer of another contract refuses
it, naming both releases."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import Any, TextIO

from tui.config import Config
from tui.credentials import Secret
from tui.remote.client import AttachError, Limits, ServerClient
from tui.remote.source import RemoteSource
from tui.remote.viewer import viewer_config
from tui.snapshot.model import Snapshot, iso
from tui.stderr import say
from tui.untrusted import json_line, json_text

EXIT_USAGE = 2


def attached_once(url: str, token: Secret | None, fmt: str) -> int:
    from tui.sinks.once import print_snapshot

    async def snapshot() -> Snapshot:
        async with RemoteSource(ServerClient(url, token)) as source:
            return await source.once()

    try:
        result = asyncio.run(snapshot())
    except AttachError as exc:
        return refused(exc)
    return print_snapshot(result, fmt)


def attached_watch(url: str, token: Secret | None, limits: Limits | None = None, out: TextIO | None = None) -> int:
    """The server's event stream on `out` (stdout), line for line, until interrupted; reconnects by itself, and
    then prints a resync line and only what differs from what it had printed (`Shown`)."""

    async def stream() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with ServerClient(url, token, limits) as client:
            await client.check()
            follow = asyncio.create_task(follow_stream(client, out or sys.stdout))
            await asyncio.wait([follow, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
            follow.cancel()
            outcome = (await asyncio.gather(follow, return_exceptions=True))[0]
            if isinstance(outcome, Exception):
                raise outcome  # the stream's own end: a refusal to report, or a closed stdout
        return 0

    try:
        return asyncio.run(stream())
    except AttachError as exc:
        return refused(exc)
    except BrokenPipeError:
        return 0


async def follow_stream(client: ServerClient, out: TextIO, shown: Shown | None = None) -> None:
    """The server's event stream on `out`, until cancelled or refused (an AttachError that is a usage error):
    a connection that fails or falls silent is made again, after 1 s, then up to 8 s."""
    retry = 1.0
    shown = shown or Shown()
    while True:
        shown.connecting()
        try:
            async for line in client.lines():
                printed = shown.lines(line)
                for text in printed:
                    out.write(text + "\n")
                if printed:
                    out.flush()
                retry = 1.0
        except AttachError as exc:
            if exc.usage:
                raise
            say(f"{exc.message}; trying again in {retry:.0f} s")
        await asyncio.sleep(retry)
        retry = min(retry * 2, 8.0)


Key = tuple[str, str, str]  # venue, account id, asset
Account = tuple[str, str]  # venue, account id
WORTH = ("usd_price", "usd_value", "loan_usd_value")  # a balance's values: they move with prices, not amounts


class Shown:
    """What an attached --watch has printed, so that after a reconnection (the stream starts again with the
    whole state) it prints one resync line and then only what differs from what it had printed, as a local
    --watch that had never lost its way would have: a balance with other amounts as "changed", one gone as
    "removed", a venue's failing or recovery and the prices only if they differ. The server's own notices go
    to stderr; heartbeats are the stream's own and never printed.

    A balance is gone once its account was heard again without it: the account's lines of the replay (or of
    its first answer on a restarted server) come together, and end at the next line about anything else. An
    account not heard again says nothing (its venue fails, or has not answered the restarted server yet),
    unless the server's state (ended by its first heartbeat) had its venue answering without it.

    Only JSON objects are passed on, and with the characters that could steer a terminal as JSON escapes: a
    line that is anything else is refused with a note, never printed (it could be any bytes at all)."""

    def __init__(self) -> None:
        self._balances: dict[Key, dict[str, Any]] = {}  # the last line printed of each balance held
        self._failing: dict[str, str | None] = {}  # venue -> its error as last printed (None: recovered)
        self._prices: dict[str, Any] | None = None  # the last prices line printed, without its times
        self._connections = 0
        self._resync = False  # the resync line is owed: printed before the next line
        self.replaying = False  # from a reconnection until the end of the server's state (its first heartbeat)
        self._unsettled: set[Account] = set()  # accounts printed before, not yet heard since reconnecting
        self._open: Account | None = None  # the unsettled account whose lines come now
        self._heard: set[str] = set()  # the assets heard of the open account
        self._replayed: dict[str, bool] = {}  # venues the server's state spoke of -> failing

    def connecting(self) -> None:
        """A new connection: its stream starts with the whole state again."""
        self._connections += 1
        self._open = None
        if self._connections > 1 and (self._balances or self._failing or self._prices):
            self._resync = self.replaying = True
            self._unsettled = {key[:2] for key in self._balances}
            self._replayed = {}

    def lines(self, line: str) -> list[str]:
        """What to print for a line of the stream: nothing, the line, or lines standing for it."""
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            refused = f"{line[:60]}…" if len(line) > 60 else line
            say(f"the server sent a line that is not a JSON object, not shown: {refused}")
            return []
        kind = event.get("event")
        if kind == "dropped":
            say(f"the server dropped this viewer: it {event.get('reason')}")
            return []
        printed: list[dict[str, Any]] = []
        if self._resync:
            self._resync = False
            printed.append({"event": "resync", "at": iso(time.time())})
        account = event.get("account")
        key: Key | None = None
        if kind in ("new", "changed", "removed") and isinstance(account, dict):
            key = (str(event.get("venue")), str(account.get("id")), str(event.get("asset")))
        if self._open is not None and (kind != "new" or key is None or key[:2] != self._open):
            printed += self._settle(self._open)
        if kind == "heartbeat":
            printed += self._replay_ended() if self.replaying else []
        else:
            printed += self._balance(event, key) if key is not None else self._other(event)
        return [json_line(line) if p is event else json_text(p) for p in printed]  # the line itself: as sent

    def _balance(self, event: dict[str, Any], key: Key) -> list[dict[str, Any]]:
        """A balance's line: printed as it is (`[event]`), as a change from what was printed, or not at all."""
        kind, before = event["event"], self._balances.get(key)
        if self.replaying and kind == "new":
            self._replayed.setdefault(key[0], False)
        if key[:2] in self._unsettled and kind == "new":
            self._open = key[:2]
            self._heard.add(key[2])
        if kind == "removed":
            self._balances.pop(key, None)
            return [event]
        shown = event
        if kind == "new" and before is not None:  # a replay of what was printed, or a change since
            moved = _moved(before.get("balance"), event.get("balance"))
            if not moved:
                return []
            shown = {**event, "event": "changed", "fields": moved, "previous": _amounts(before.get("balance"))}
        self._balances[key] = {
            **shown,
            "fields": list(dict.fromkeys(_fields(before) + _fields(event))),
        }  # every amount it has had
        return [shown]

    def _other(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """A venue failing or recovering, or the prices: printed only if they differ from what was printed."""
        kind = event.get("event")
        if kind in ("venue-failing", "venue-recovered"):
            venue = str(event.get("venue"))
            error = event.get("error") if kind == "venue-failing" else None
            if self.replaying:
                self._replayed[venue] = error is not None
            if venue in self._failing and self._failing[venue] == error:
                return []
            self._failing[venue] = error
        elif kind == "prices":
            prices = _without_times(event)
            if prices == self._prices:
                return []
            self._prices = prices
        return [event]

    def _settle(self, account: Account) -> list[dict[str, Any]]:
        """The account was heard again: what it had and no longer has is removed."""
        self._open = None
        self._unsettled.discard(account)
        gone = [key for key in self._balances if key[:2] == account and key[2] not in self._heard]
        self._heard = set()
        return [_removed(self._balances.pop(key)) for key in gone]

    def _replay_ended(self) -> list[dict[str, Any]]:
        """The server's state is complete: a venue it spoke of, not failing, has no more than it said (an
        account it did not mention holds nothing now), and a venue printed failing that it spoke of as
        answering has recovered."""
        self.replaying = False
        printed: list[dict[str, Any]] = []
        for account in sorted(self._unsettled):
            if self._replayed.get(account[0]) is False:
                printed += self._settle(account)
        for venue, failing in self._replayed.items():
            if not failing and self._failing.get(venue):
                self._failing[venue] = None
                printed.append({"at": iso(time.time()), "event": "venue-recovered", "venue": venue, "error": None})
        return printed


def _amounts(balance: object) -> dict[str, Any] | None:
    """A balance record without its values: what `previous` holds."""
    return {k: v for k, v in balance.items() if k not in WORTH} if isinstance(balance, dict) else None


def _moved(before: object, now: object) -> list[str]:
    """The fields whose text differs between two balance records, values aside."""
    was, is_ = _amounts(before) or {}, _amounts(now) or {}
    return [name for name in dict.fromkeys([*is_, *was]) if was.get(name) != is_.get(name)]


def _removed(line: dict[str, Any]) -> dict[str, Any]:
    """The line a balance last printed with, as its removal (as the server words one)."""
    return {
        "at": iso(time.time()),
        "event": "removed",
        "venue": line.get("venue"),
        "kind": line.get("kind"),
        "account": line.get("account"),
        "asset": line.get("asset"),
        "fields": line.get("fields", []),
        "balance": None,
        "previous": _amounts(line.get("balance")),
    }


def _fields(line: dict[str, Any] | None) -> list[str]:
    fields = (line or {}).get("fields")
    return [f for f in fields if isinstance(f, str)] if isinstance(fields, list) else []


def _without_times(line: dict[str, Any]) -> dict[str, Any]:
    """A prices line as compared: when it was written and when the prices were fetched left out."""
    prices = line.get("prices")
    kept = {k: v for k, v in prices.items() if k != "fetched_at"} if isinstance(prices, dict) else prices
    return {**{k: v for k, v in line.items() if k != "at"}, "prices": kept}


def attached_viewer(url: str, token: Secret | None) -> tuple[Config, RemoteSource]:
    """What the TUI needs to show a server (its config as a viewer, and the source): the caller opens the
    screen, since only the UI imports the UI. AttachError when the server cannot be shown."""

    async def first() -> Snapshot:
        async with ServerClient(url, token) as client:
            await client.check()
            return await client.snapshot()

    snapshot = asyncio.run(first())
    client = ServerClient(url, token)
    return viewer_config(snapshot, client.via), RemoteSource(client)


def refused(exc: AttachError) -> int:
    say(exc.message)
    return EXIT_USAGE if exc.usage else 1
