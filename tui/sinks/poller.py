"""`serve`'s one poller: the engine driving every configured key, and what the server hands its viewers.

It keeps the current snapshot (its contract JSON built once per change, however many read it), turns each
change into the `--watch` lines for every viewer, and does what the live TUI does with a finished refresh:
records the history and checks the alert rules, running their commands, so a desk gets its pages from
the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tui.assets import AssetNames
from tui.config import Config
from tui.engine.engine import Engine
from tui.engine.prices import PriceBook
from tui.monitor.alert_hook import run_hook
from tui.monitor.alerts import Event
from tui.monitor.history import History
from tui.monitor.monitor import Monitor
from tui.sinks.fanout import Fanout
from tui.sinks.statements import run_statements
from tui.sinks.watch import Lines, encode
from tui.snapshot.contract import to_contract
from tui.snapshot.model import Snapshot, VenueSnapshot
from tui.untrusted import json_text


class Poller:
    def __init__(
        self, config: Config, engine: Engine, fanout: Fanout, history: History | None, say: Callable[[str], None]
    ) -> None:
        self.config = config
        self.engine = engine
        self.fanout = fanout
        self.monitor = Monitor(config, history)
        self.lines = Lines(AssetNames(config.assets))
        self.refreshes: dict[str, int] = {r.name: 0 for r in engine.refreshers}  # finished, per venue
        self._say = say
        self._hooks: set[asyncio.Task[None]] = set()
        self._snapshot: Snapshot | None = None
        self._contract: bytes | None = None
        self._state: bytes | None = None

    async def run(self) -> None:
        """Every venue and the prices on their schedules, and the daily statements if configured, until cancelled."""
        statements = asyncio.create_task(run_statements(self.config, self.monitor.history, self._say))
        try:
            await self.engine.run(self._venue, self._prices)
        finally:
            statements.cancel()
            await asyncio.gather(statements, return_exceptions=True)

    def _venue(self, snapshot: VenueSnapshot) -> None:
        if snapshot.refreshing:  # viewers see finished refreshes only
            return
        self._page(self.monitor.take(snapshot, time.time()).events)
        self.refreshes[snapshot.name] = self.refreshes.get(snapshot.name, 0) + 1
        self._changed(self.lines.venue(snapshot))

    def _prices(self, book: PriceBook) -> None:
        self._page(self.monitor.take_prices(book, time.time()).events)
        self._changed(self.lines.prices(book))

    def _changed(self, lines: list[dict[str, object]]) -> None:
        self._snapshot = self._contract = self._state = None
        self.fanout.send([encode(line).encode() for line in lines])

    # --- what viewers are handed -------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Each venue's latest finished refresh in config order (one that has not answered yet: as it is
        now), with what it is worth."""
        if self._snapshot is None:
            latest = self.engine.latest
            venues = tuple(latest.get(r.name) or r.snapshot() for r in self.engine.refreshers)
            self._snapshot = Snapshot(venues, time.time(), self.monitor.worth, self.config.assets)
        return self._snapshot

    def contract(self) -> bytes:
        """`/snapshot`: the `--once --format json` document, built once per change."""
        if self._contract is None:
            self._contract = json_text(to_contract(self.snapshot())).encode()
        return self._contract

    def state(self) -> bytes:
        """What a new viewer of `/events` is sent first: the whole state, as `--watch` starts."""
        if self._state is None:
            self._state = "".join(encode(line) for line in self.lines.state()).encode()
        return self._state

    def firing(self) -> dict[str, int]:
        """Every alert rule by name, with how many of its targets fire now."""
        alerts = self.monitor.alerts
        counts = dict.fromkeys((rule.name for rule in alerts.rules), 0)
        for alert in alerts.active.values():
            counts[alert.rule.name] = counts.get(alert.rule.name, 0) + 1
        return counts

    # --- alerts ------------------------------------------------------------------------------------

    def _page(self, events: list[Event]) -> None:
        for event in events:
            alert = event.alert
            what = f"{alert.rule.name}: {alert.target.label()}"
            self._say(f"alert fired: {what}: {alert.detail}" if event.fired else f"alert cleared: {what}")
            if alert.rule.command:
                task = asyncio.get_running_loop().create_task(self._hook(alert.rule.command, alert.to_json()))
                self._hooks.add(task)
                task.add_done_callback(self._hooks.discard)

    async def _hook(self, command: str, payload: dict[str, object]) -> None:
        problem = await run_hook(command, payload)
        if problem is not None:
            self._say(f"alert command failed: {problem}")

    async def close(self) -> None:
        """Let the pages being sent finish (each has its own time limit), then close the history."""
        await asyncio.gather(*self._hooks, return_exceptions=True)
        if self.monitor.history is not None:
            self.monitor.history.close()
