"""`--attach URL`: the TUI, `--once` and `--watch` reading from a `serve` instead of the venues, with the
same output and exit codes. The server's contract is checked first: a viewer of another contract refuses
it, naming both releases."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from tui.config import Config
from tui.credentials import Secret
from tui.remote.client import AttachError, ServerClient
from tui.remote.source import RemoteSource
from tui.remote.viewer import viewer_config
from tui.snapshot.model import Snapshot
from tui.stderr import say
from tui.untrusted import json_line

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


def attached_watch(url: str, token: Secret | None) -> int:
    """The server's event stream on stdout, line for line, until interrupted; reconnects by itself (the
    stream starts again with the whole state, as on a first connection)."""

    async def stream() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with ServerClient(url, token) as client:
            await client.check()
            follow = asyncio.create_task(_follow(client))
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


async def _follow(client: ServerClient) -> None:
    retry = 1.0
    shown = Shown()
    while True:
        try:
            async for line in client.lines():
                if (text := shown.line(line)) is not None:
                    sys.stdout.write(text + "\n")
                    sys.stdout.flush()
                retry = 1.0
        except AttachError as exc:
            if exc.usage:
                raise
            say(f"{exc.message}; trying again in {retry:.0f} s")
        await asyncio.sleep(retry)
        retry = min(retry * 2, 8.0)


class Shown:
    """What an attached --watch has printed, so a reconnection's replay of the whole state prints only what
    changed meanwhile (as a local --watch would have), and the server's own notices go to stderr.

    Only JSON objects are passed on, and with the characters that could steer a terminal as JSON escapes: a
    line that is anything else is refused with a note, never printed (it could be any bytes at all)."""

    def __init__(self) -> None:
        self._balances: dict[tuple[object, ...], object] = {}

    def line(self, line: str) -> str | None:
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            refused = f"{line[:60]}…" if len(line) > 60 else line
            say(f"the server sent a line that is not a JSON object, not shown: {refused}")
            return None
        line = json_line(line)
        if event.get("event") == "dropped":
            say(f"the server dropped this viewer: it {event.get('reason')}")
            return None
        account = event.get("account")
        if event.get("event") in ("new", "changed", "removed") and isinstance(account, dict):
            key = (event.get("venue"), account.get("id"), event.get("asset"))
            balance = event.get("balance")
            if event["event"] == "new" and key in self._balances and self._balances[key] == balance:
                return None  # replayed: already printed as it is
            self._balances[key] = balance
        return line


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
