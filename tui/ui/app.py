"""The Textual app: one pane per venue, fed by a snapshot source (the local engine, or a server it is
attached to) in a background worker.

Workers only post messages; handlers on the UI thread touch widgets (Dolphie's fetch/render split).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.driver import Driver
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from tui.config import Config
from tui.engine.engine import Engine
from tui.engine.prices import PriceBook
from tui.monitor.alert_hook import run_hook
from tui.monitor.alerts import TOTALS, Event
from tui.monitor.history import History, HistoryError
from tui.monitor.monitor import TOTALS_NAME, Monitor, Outcome
from tui.sinks.statements import run_statements
from tui.snapshot.model import VenueSnapshot
from tui.snapshot.source import SnapshotSource
from tui.ui.panes import BalanceTable, VenuePane, View
from tui.ui.rows import MASK, SORTS, Baseline, available_columns, sort_label
from tui.ui.screens import (
    AlertsScreen,
    ColumnsScreen,
    Drilldown,
    HelpScreen,
    IntxDetailScreen,
    KrakenDetailScreen,
    prices_status,
)
from tui.ui.tables import DeskFooter
from tui.untrusted import visible

REPLACED_COMMANDS = {"Keys", "Maximize", "Minimize"}  # Textual's, which our help and maximise replace
TOTALS_MIN_HEIGHT = 30  # below this, three stacked panes would show two or three rows each


class VenueUpdated(Message):
    """A venue's refresher published a snapshot (posted from its worker)."""

    def __init__(self, index: int, snapshot: VenueSnapshot) -> None:
        super().__init__()
        self.index = index
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, VenueUpdated) and message.index == self.index


class PricesUpdated(Message):
    """The price source published a new price book (posted from its worker)."""

    def __init__(self, book: PriceBook) -> None:
        super().__init__()
        self.book = book

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PricesUpdated)


class BalanceApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses (the scenes) live elsewhere
    TITLE = "balance-tui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="interrupt"),  # as q: an operator's reflex
        Binding("question_mark", "help", "Help", id="help"),
        Binding("r", "refresh_now", "Refresh", id="refresh"),
        Binding("p", "pause", "Pause", id="pause"),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("s", "sort", "Sort", id="sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False, id="reverse_sort"),
        Binding("h", "hide_zero", "Zeros", show=False, id="hide_zero"),
        Binding("m", "mask", "Mask", id="mask"),
        Binding("z", "maximise", "Max", show=False, id="maximise"),
        Binding("a", "alerts", "Alerts", id="alerts"),
        Binding("c", "columns", "Columns", show=False, id="columns"),
        Binding("t", "toggle_totals", "Totals", show=False, id="totals"),
        Binding("tab", "focus_next", "Next pane", show=False),
        Binding("shift+tab", "focus_previous", "Prev pane", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(
        self,
        config: Config,
        *,
        demo: bool = False,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        jitter: random.Random | None = None,
        source: SnapshotSource | None = None,
        history: Path | str | None = None,
    ) -> None:
        """`clock`, `monotonic` and `jitter` (the backoff's randomness): tests and screenshots fix them.

        `history`: where to record balance changes (":memory:" for the session only; None: nowhere).
        """
        super().__init__()
        self.history_path = history
        self.monitor = Monitor(config, started=clock())
        self.config = config
        self.demo = demo
        self.clock = clock
        self.source: SnapshotSource = source or Engine(
            config, clock=monotonic, wall=clock, rng=jitter, keep_nonces=not demo
        )
        self._index = {venue.name: i for i, venue in enumerate(config.venues)}
        self.view = View()
        self.baseline = Baseline()
        self.paused = False
        self.panes: list[VenuePane] = []  # one per venue, in the config's order
        self.totals_pane: VenuePane | None = None
        self.frozen = False  # the objects made until every pane showed its first answer, out of the collector's sight

    def get_driver_class(self) -> type[Driver]:
        """Textual's choice, with its Linux/macOS terminal driver swapped for one whose input thread sleeps
        until a key comes (tui/ui/driver.py); a driver named by TEXTUAL_DRIVER (textual-serve's) stays."""
        driver = super().get_driver_class()
        if driver.__module__ == "textual.drivers.linux_driver" and driver.__name__ == "LinuxDriver":
            from tui.ui.driver import QuietLinuxDriver

            return QuietLinuxDriver
        return driver

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification (the screens' too) goes through the gate: its words often quote a venue, a
        name or a command, so they are made visible and never read as markup (a `[` in a vault name would
        otherwise style the text, or fail it)."""
        super().notify(visible(message), title=visible(title), severity=severity, timeout=timeout, markup=False)

    # --- layout ---------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        if self.demo:
            yield Static(" DEMO · simulated venues, not real money ", id="demo-banner")
        with Vertical(id="panes"):
            valued = self.config.prices.source != "none"
            for i, venue in enumerate(self.config.venues):
                pane = VenuePane(
                    i, venue.name, venue.kind.kind, self.baseline, self.view, self.clock, valued, venue.columns
                )
                self.panes.append(pane)
                yield pane
            if len(self.config.venues) > 1:
                self.totals_pane = VenuePane(
                    len(self.panes), TOTALS_NAME, "totals", self.baseline, self.view, self.clock, valued
                )
                self.totals_pane.add_class("totals")
                yield self.totals_pane
        yield Input(placeholder="filter by asset or account; Enter keeps it, Esc clears", id="filter")
        yield Static(id="status")
        yield DeskFooter()

    async def on_mount(self) -> None:
        self._open_history()
        self.title = (
            "balance-tui"
            + (" · DEMO" if self.demo else "")
            + (f" via {visible(self.source.via)}" if self.source.via else "")
        )
        self.query_one("#filter", Input).display = False
        self._status()
        for pane in self.all_panes:
            pane.via = self.source.via
        await self.source.__aenter__()
        join = getattr(self.source, "join_pollers", None)  # a local engine: the keys it polls are its own
        if join is not None and not self.demo:
            for line in await join():
                self.notify(line, title="another poller on this key", severity="warning", timeout=30)
        self.run_worker(
            self.source.run(self._venue_published, self._prices_published),
            name="source",
            group="source",
            exit_on_error=False,
        )
        self.run_worker(run_statements(self.config, self.monitor.history, self.notify), name="statements")
        self.set_interval(1.0, self._tick)
        if self.totals_pane is not None and self.size.height < TOTALS_MIN_HEIGHT:
            self.totals_pane.display = False
            self.notify("a short terminal: totals hidden (t shows them, z maximises a pane)", timeout=6)
        if self.panes:
            self.panes[0].table.focus()
        self._watch_terminal()

    def _venue_published(self, snapshot: VenueSnapshot) -> None:
        index = self._index.get(snapshot.name)
        if index is not None:
            self.post_message(VenueUpdated(index, snapshot))

    def _prices_published(self, book: PriceBook) -> None:
        self.post_message(PricesUpdated(book))

    async def on_unmount(self) -> None:
        if self.frozen:  # a process that goes on (the tests, `serve`'s) collects them again
            gc.unfreeze()
        self.workers.cancel_all()
        await self.source.__aexit__(None, None, None)
        if self.monitor.history is not None:
            self.monitor.history.close()

    def _open_history(self) -> None:
        if self.history_path is None:
            return
        try:
            self.monitor.history = History(self.history_path)
        except HistoryError as exc:
            self.notify(f"{exc}. Balances are shown but not recorded.", severity="warning", timeout=30)
            return
        for note in self.monitor.history.notes:  # a history file others could read, made private
            self.notify(note, severity="warning", timeout=30)

    # --- data in --------------------------------------------------------------------------------------

    def on_venue_updated(self, message: VenueUpdated) -> None:
        pane = self.panes[message.index]
        if not pane.live:  # a snapshot that arrives while the app closes
            return
        if message.snapshot.refreshing:
            pane.show(message.snapshot)  # no rows drawn (but the first): flashes wait for the answer
        else:
            self._end_flashes()  # drawn in the frame of the new data, not in one of their own
            outcome = self.monitor.take(message.snapshot, self.clock())
            pane.show_valued(message.snapshot, outcome.worth)  # its rows built once, values and all
            self._draw(outcome)
            self._freeze_when_loaded()
        for screen in self.screen_stack:  # one under help or the alerts keeps up too
            if isinstance(screen, KrakenDetailScreen) and screen.venue == pane.venue_name:
                screen.update_from(message.snapshot)

    def _freeze_when_loaded(self) -> None:
        """Once every pane has shown an answer, what exists (Textual's widgets and styles, the modules, the
        first rows) lives as long as the app: frozen, a full collection no longer walks it again and again
        (one a minute cost ~30 ms in the idle TUI). What is made later is collected as before; a frozen object
        freed by its references is freed all the same."""
        if self.frozen or not all(p.snapshot is not None and not p.snapshot.refreshing for p in self.panes):
            return
        self.frozen = True
        gc.collect()  # what start-up left for the collector is collected, not frozen
        gc.freeze()

    def on_prices_updated(self, message: PricesUpdated) -> None:
        if self.panes and not self.panes[0].live:  # prices that arrive while the app closes
            return
        self._end_flashes()
        self._draw(self.monitor.take_prices(message.book, self.clock()))
        self._status()

    def _end_flashes(self) -> None:
        """Flashes that have lasted their time end in the frame that draws new data: no frame of their own."""
        for pane in self.all_panes:
            pane.expire_flashes()

    def _draw(self, outcome: Outcome) -> None:
        """History, totals, values and alerts: what the monitor decided, drawn."""
        if self.totals_pane is not None and outcome.totals is not None:
            self.totals_pane.show_valued(outcome.totals, outcome.worth)
        for pane in self.all_panes:
            pane.show_worth(outcome.worth)
        for drilldown in self.screen_stack:
            if isinstance(drilldown, Drilldown):
                drilldown.show_worth(outcome.worth)
        alerts = self.monitor.alerts
        for pane in self.all_panes:
            pane.flag(alerts.flagged(TOTALS if pane is self.totals_pane else pane.venue_name))
        for event in outcome.events:
            if event.alert.rule.command:
                self._page(event.alert.rule.command, event.alert.to_json())
        self._announce(outcome.events)
        for view in self.screen_stack:
            if isinstance(view, AlertsScreen):
                view.refresh_alerts()

    def _announce(self, events: list[Event]) -> None:
        """One bell for a refresh that fires anything; a notice per alert, or one for many (the view lists them)."""
        fired = [e.alert for e in events if e.fired]
        cleared = [e.alert for e in events if not e.fired]
        if fired:
            self.bell()
        if len(events) > 3:
            self.notify(f"{len(fired)} fired, {len(cleared)} cleared: press a to see them", title="⚑ alerts")
            return
        for alert in fired:
            stale = f" (on stale data, {alert.stale_age:.0f} s old)" if alert.stale_age is not None else ""
            detail = alert.rule.describe(hide=MASK) if self.view.mask else alert.detail  # screen sharing: no figure
            self.notify(f"{alert.target.label()}: {detail}{stale}", title=f"⚑ {alert.rule.name}", severity="error")
        for alert in cleared:
            self.notify(f"{alert.target.label()}: back within its line", title=f"cleared: {alert.rule.name}")

    @work(exit_on_error=False, group="alert-commands")
    async def _page(self, command: str, payload: dict[str, Any]) -> None:
        problem = await run_hook(command, payload)
        if problem is not None:
            self.notify(problem, title="alert command failed", severity="warning", timeout=15)

    @property
    def all_panes(self) -> list[VenuePane]:
        return self.panes + ([self.totals_pane] if self.totals_pane is not None else [])

    def _tick(self) -> None:
        for pane in self.all_panes:
            pane.refresh_header()
            pane.expire_flashes(overdue=True)  # no data came to end them: a frame of their own

    # --- keys -----------------------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_alerts(self) -> None:
        if isinstance(self.screen, AlertsScreen):
            self.pop_screen()
            return
        self.push_screen(AlertsScreen(self.monitor.alerts, len(self.config.alerts)))

    def action_columns(self) -> None:
        """Choose the focused pane's amount columns (for this session; `columns` in the config keeps them)."""
        pane = self._focused_pane()
        if pane is None:
            return
        shown = [c.key for c in pane.columns if c.numeric]
        options = sorted(
            available_columns(pane.kind, pane.valued),
            key=lambda c: shown.index(c.key) if c.key in shown else len(shown),
        )
        choices = [(c.key, c.label, c.key in shown) for c in options if c.numeric]

        def chosen(columns: tuple[str, ...] | None) -> None:
            if columns is not None:
                pane.set_columns(columns)

        self.push_screen(ColumnsScreen(pane.venue_name, choices), chosen)

    def action_toggle_totals(self) -> None:
        if self.totals_pane is None:
            self.notify("totals appear when more than one venue is configured", timeout=4)
            return
        self.totals_pane.display = not self.totals_pane.display
        if not self.totals_pane.display:
            self._focus_pane()

    def action_refresh_now(self) -> None:
        """At once; while paused, once (and still paused after)."""
        self.source.refresh_now()
        what = "reading the server" if self.source.via else "refreshing every venue"
        if self.paused:
            self.notify(f"paused: {what} once now; p resumes", timeout=3)
        else:
            self.notify(f"{what} now", timeout=2)

    def action_pause(self) -> None:
        self.paused = not self.paused
        (self.source.pause if self.paused else self.source.resume)()
        for pane in self.panes:
            pane.paused = self.paused
            pane.refresh_header()
        self._status()

    def action_sort(self) -> None:
        self.view.sort = SORTS[(SORTS.index(self.view.sort) + 1) % len(SORTS)]
        self.view.reverse = False
        self._rerender()

    def action_reverse_sort(self) -> None:
        self.view.reverse = not self.view.reverse
        self._rerender()

    def action_hide_zero(self) -> None:
        self.view.hide_zero = not self.view.hide_zero
        self._rerender()

    def action_mask(self) -> None:
        self.view.mask = not self.view.mask
        self._rerender()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if self.view.filter_text or box.display:
            box.value = ""
            box.display = False
            self.view.filter_text = ""
            self._rerender()
            self._focus_pane()

    def action_maximise(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
            return
        pane = self._focused_pane()
        if pane is not None:
            self.screen.maximize(pane, container=False)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.view.filter_text = event.value.strip()
        self._rerender()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.input.display = bool(event.value.strip())
        self._focus_pane()

    @on(DataTable.RowSelected)
    def _drill_down(self, event: DataTable.RowSelected) -> None:
        pane = next((p for p in self.panes if p.table is event.data_table), None)
        if pane is not None:
            self._open_detail(pane, str(event.row_key.value))

    def action_details(self) -> None:
        """Drill down into the focused pane's cursor row (Enter does the same)."""
        pane = self._focused_pane()
        key = pane.cursor_key() if pane is not None and pane in self.panes else None
        if pane is None or key is None:
            self.notify("details are for a venue's rows: Tab to a venue's pane first", timeout=3)
            return
        self._open_detail(pane, key)

    def _open_detail(self, pane: VenuePane, key: str) -> None:
        row = pane.rows.get(key)
        client = self.source.details(pane.venue_name)
        if row is None or client is None:
            return

        def trend() -> tuple[str, str]:
            return self.monitor.trend(pane.venue_name, row.account_id, row.asset, self.clock())

        if pane.kind == "coinbase-intx":
            screen: Drilldown = IntxDetailScreen(client, pane.venue_name, row, self.config.refresh_seconds, trend)
        else:
            screen = KrakenDetailScreen(client, pane.venue_name, row, self.baseline, trend)
        screen.worth = self.monitor.worth
        self.push_screen(screen)

    def get_system_commands(self, screen: Screen[object]) -> list[SystemCommand]:
        """Ours, and Textual's own but those ours replace (its key panel, its maximise)."""
        theirs = [c for c in super().get_system_commands(screen) if c.title not in REPLACED_COMMANDS]
        return [
            *theirs,
            SystemCommand("Details", "Every field of the selected row, live (Enter)", self.action_details),
            SystemCommand("Refresh now", "Refresh every venue now (r)", self.action_refresh_now),
            SystemCommand("Pause / resume", "Stop or restart refreshing (p)", self.action_pause),
            SystemCommand("Filter", "Filter rows by asset or account (/)", self.action_filter),
            SystemCommand("Cycle sort", "value, account, asset, amount, change (s)", self.action_sort),
            SystemCommand("Reverse sort", "Turn the sort round (S)", self.action_reverse_sort),
            SystemCommand("Columns", "Choose the focused pane's columns (c)", self.action_columns),
            SystemCommand("Hide zero balances", "Toggle rows whose amounts are all zero (h)", self.action_hide_zero),
            SystemCommand("Mask amounts", "Hide every amount, for screen sharing (m)", self.action_mask),
            SystemCommand("Maximise pane", "Show only the focused pane (z)", self.action_maximise),
            SystemCommand("Alerts", "What fired and cleared, and when (a)", self.action_alerts),
            SystemCommand("Totals", "Show or hide the cross-venue totals (t)", self.action_toggle_totals),
            SystemCommand("Help", "Every key balance-tui knows (?)", self.action_help),
        ]

    # --- helpers --------------------------------------------------------------------------------------

    def _rerender(self) -> None:
        for pane in self.all_panes:
            pane.render_rows()
            pane.refresh_header()
        self._status()

    def _status(self) -> None:
        parts = [f"sort: {sort_label(self.view.sort, self.view.reverse)}"]
        prices = prices_status(self.monitor.book, self.clock())
        if prices:
            parts.append(prices)
        if self.view.filter_text:
            parts.append(f"filter: {visible(self.view.filter_text)!r}")
        if self.view.hide_zero:
            parts.append("zero balances hidden")
        if self.view.mask:
            parts.append("amounts masked")
        if self.paused:
            parts.append("PAUSED (p resumes)")
        for status in self.query("#status").results(Static):  # none while the app closes
            status.update(Text(" · ".join(parts)), layout=False)  # one line, always: no layout pass; never markup

    def _focused_pane(self) -> VenuePane | None:
        # the panes' screen, also while the command palette or a drill-down is on top of it
        focused = self.screen_stack[0].focused if self.screen_stack else None
        while focused is not None and not isinstance(focused, VenuePane):
            focused = focused.parent  # type: ignore[assignment]
        return focused if isinstance(focused, VenuePane) else (self.panes[0] if self.panes else None)

    def _focus_pane(self) -> None:
        pane = self._focused_pane()
        if pane is not None:
            pane.query_one(BalanceTable).focus()

    @work(exit_on_error=False, group="terminal")
    async def _watch_terminal(self) -> None:
        """Over SSH a dropped connection can leave the process spinning: exit when the terminal is gone."""
        while True:
            await asyncio.sleep(2.0)
            if not _terminal_alive():
                self.exit(0)
                return


def _terminal_alive() -> bool:
    """False once the controlling terminal is hung up (tcgetpgrp fails on a dead pty); True off a tty."""
    stream = sys.__stdout__
    if stream is None:
        return True
    try:
        fd = stream.fileno()
        if not os.isatty(fd):
            return True
        os.tcgetpgrp(fd)
    except (OSError, ValueError):
        return False
    return True


STOP_SIGNALS = (signal.SIGHUP, signal.SIGTERM)


def run_app(
    config: Config, *, demo: bool = False, source: SnapshotSource | None = None, history: Path | str | None = None
) -> int:
    """`source`: one already built (an engine with its secrets loaded, so that no secret command runs twice,
    or a server to attach to)."""
    app = BalanceApp(config, demo=demo, source=source, history=history)

    def stop(_signum: int, _frame: object) -> None:
        """A dropped connection (SIGHUP) or a `kill` (SIGTERM): leave as `q` does, terminal restored.
        The handler runs between two steps of the event loop; call_soon_threadsafe wakes the loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise SystemExit(0) from None
        loop.call_soon_threadsafe(app.exit, 0)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        result = app.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return int(result or 0)
