"""`--watch --format jsonl`: one JSON line per change, for piping into other tools. Never loads Textual.

The first refresh of each account prints every balance as "new", so a reader starts with the whole
state; after that only what moved. A venue that starts or stops failing prints a line too. Amounts keep
the contract of `--once`: exact strings, `null` where the venue sent nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from .changes import Change, ChangeTracker
from .config import Config, load
from .snapshot import VenueSnapshot, iso


def change_line(change: Change) -> dict[str, Any]:
    return {
        "at": iso(change.at),
        "event": change.event,
        "venue": change.venue,
        "kind": change.kind,
        "account": {"id": change.account_id, "name": change.account_name},
        "asset": change.asset,
        "fields": list(change.fields),
        "balance": change.balance.as_record() if change.balance is not None else None,
        "previous": change.previous.as_record() if change.previous is not None else None,
    }


class Stream:
    """Turns each finished refresh into JSON lines on `out`."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tracker = ChangeTracker()
        self._failing: dict[str, str | None] = {}

    def publish(self, snapshot: VenueSnapshot) -> None:
        if snapshot.refreshing:
            return
        lines = [change_line(c) for c in self.tracker.diff(snapshot)]
        error = snapshot.first_error()
        message = error.message if error is not None else None
        if message != self._failing.get(snapshot.name, None):
            event = "venue-failing" if message else "venue-recovered"
            lines.append({"at": iso(time.time()), "event": event, "venue": snapshot.name, "error": message})
        self._failing[snapshot.name] = message
        for line in lines:
            self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
        if lines:
            self.out.flush()


def run_watch(path: Path) -> int:
    """Until interrupted (Ctrl-C, SIGTERM, or the reader closing the pipe): exit 0."""
    config = load(path)
    try:
        asyncio.run(_watch(config, Stream(sys.stdout)))
    except BrokenPipeError:
        # The reader left (`| head`): point stdout at /dev/null so the flush at exit stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


async def _watch(config: Config, stream: Stream) -> None:
    from .engine import Engine

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Engine(config) as engine:
        tasks = [asyncio.create_task(r.run(stream.publish)) for r in engine.refreshers]
        done = asyncio.create_task(stop.wait())
        await asyncio.wait([done, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if task.done() and not task.cancelled() and isinstance(task.exception(), BrokenPipeError):
                raise BrokenPipeError
