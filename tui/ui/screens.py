"""Screens over the panes: the INTX and Kraken drill-downs, and help."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, SelectionList, Static

from tui.engine.prices import PriceBook
from tui.money import align, dollars, fmt, fmt_result, sub
from tui.monitor.alerts import Alerts
from tui.monitor.valuation import Appraisal
from tui.snapshot.model import VenueSnapshot
from tui.ui.panes import ago
from tui.ui.rows import MASK, Baseline, Row, masked
from tui.ui.tables import DeskFooter, MeasuredTable
from tui.untrusted import visible
from tui.venues import intx
from tui.venues.errors import VenueError
from tui.venues.kraken_vault import VaultDetails

SUMMARY_ROWS = (
    ("collateral", "collateral"),
    ("balance", "balance"),
    ("buying_power", "buying power"),
    ("loan_collateral_requirement", "loan collateral requirement"),
    ("borrow", "borrow"),
    ("portfolio_initial_margin", "initial margin"),
    ("portfolio_maintenance_margin", "maintenance margin"),
    ("portfolio_close_out_margin", "close-out margin"),
    ("portfolio_initial_margin_notional", "initial margin notional"),
    ("portfolio_maintenance_margin_notional", "maintenance margin notional"),
    ("unrealized_pnl", "unrealized PnL"),
    ("accrued_interest", "accrued interest"),
)


Trend = Callable[[], tuple[str, str]]


class DetailScreen(Screen[None]):
    """A full screen over the panes (a drill-down, the alerts): Esc or q goes back."""

    BINDINGS = [Binding("escape", "back", "Back"), Binding("q", "back", "Back", show=False)]

    @property
    def drawable(self) -> bool:
        """Its widgets are there to draw into: composed, and not being taken down. A refresh, a reply or a
        timer can land on a screen pushed but not yet composed, or on one whose widgets Textual is removing
        (leaving it, or the app closing): what it brings is kept, not drawn."""
        return bool(self.children) and self.display  # `display` is False while Textual prunes the screen

    def action_back(self) -> None:
        self.app.pop_screen()

    def mask(self, text: str) -> str:
        return masked(text) if getattr(self.app, "view", None) and self.app.view.mask else text  # type: ignore[attr-defined]


class Drilldown(DetailScreen):
    """One balance. `trend` gives its two sparkline lines (this session, last 24 h)."""

    trend: Trend | None = None
    venue: str
    row: Row
    worth: Appraisal | None = None

    def body(self) -> VerticalScroll:
        """Everything but the footer, scrolling as one (↑ ↓ PgUp PgDn, its bar saying where) when the terminal
        is too short to show every field: at 80×24 the INTX fields, worth and summary take three screens."""
        return VerticalScroll(id="detail-body")

    def fields_table(self) -> MeasuredTable[str | Text]:
        """The balance's fields, all of them: the body scrolls, not the table (no cursor to chase)."""
        table = MeasuredTable[str | Text](id="fields", cursor_type="none")
        table.can_focus = False
        return table

    def trend_box(self) -> Static:
        return Static(id="trend", classes="trend")

    def worth_box(self) -> Static:
        return Static(id="worth", classes="worth")

    def show_worth(self, worth: Appraisal | None) -> None:
        """New values: drawn now, or when the screen is (one pushed but not yet mounted keeps them)."""
        self.worth = worth
        self._draw_worth()

    def _draw_worth(self) -> None:
        """What this balance is worth: the rounded value, how it was made, and its exact digits."""
        if not self.drawable:
            return
        worth = self.worth
        box = self.query_one("#worth", Static)
        box.display = worth is not None
        if worth is None:
            return
        found = worth.worth(self.venue, self.row.account_id, self.row.asset)
        book = worth.book
        text = Text(" worth  ", style="bold")
        if found.price is None or found.value is None:
            reason = "no price: the source has no USD market for it" if worth.priced else "prices unknown"
            text.append(f"unpriced ({reason})", style="yellow")
            box.update(text)
            return
        mask = getattr(self.app, "view", None) is not None and self.app.view.mask  # type: ignore[attr-defined]
        stale = "yellow" if worth.stale else ""
        text.append(f"${MASK if mask else dollars(found.value)}", style=f"bold {stale}")
        where = f"{visible(found.price.pair)} on {visible(book.source)}" if found.price.pair and book else "USD is 1"
        fetched = f", {prices_age(book, worth.now)}" if book is not None and found.price.pair else ""
        price = MASK if mask else fmt(found.price.usd)
        text.append(f"  = holding × ${price} ({where}{fetched})", style=stale or "dim")
        if not mask:
            text.append(f"\n exact  {fmt_result(found.value)}", style="dim")
            if found.loan_value:
                text.append(f"  · loan worth {fmt_result(found.loan_value)}", style="dim")
        box.update(text)

    def show_trend(self) -> None:
        if self.trend is None or not self.drawable:
            return
        session, day = self.trend()
        masked_view = getattr(self.app, "view", None) and self.app.view.mask  # type: ignore[attr-defined]
        if masked_view:
            session, day = (line.split("  ")[0] + "  (masked)" for line in (session, day))
        self.query_one("#trend", Static).update(Text(f" {session}\n {day}", style="cyan"))


class IntxDetailScreen(Drilldown):
    """All 17 fields of one INTX balance, live through the seed endpoint, beside the portfolio summary."""

    def __init__(self, client: Any, venue: str, row: Row, refresh_seconds: float, trend: Trend | None = None) -> None:
        super().__init__(classes="detail")
        self.trend = trend
        self.client = client
        self.venue = venue
        self.row = row
        self.refresh_seconds = refresh_seconds
        self.opened: dict[str, Decimal | None] = {}
        self.fetched_at: float | None = None
        self.error: VenueError | None = None

    def compose(self) -> ComposeResult:
        with self.body():
            yield from self._parts()
        yield DeskFooter()

    def _parts(self) -> ComposeResult:
        yield Static(id="detail-title", classes="detail-title")
        yield self.trend_box()
        yield self.worth_box()
        fields = self.fields_table()
        fields.add_column("field", key="field")
        fields.add_column(Text("value", justify="right"), key="value")
        fields.add_column(Text("change since opened", justify="right"), key="change")
        fields.add_column("meaning", key="meaning")
        for name in intx.FIELDS:
            fields.add_row(name, Text("…", justify="right"), Text(""), intx.MEANINGS[name], key=name)
        yield fields
        with Vertical(id="summary-box"):
            yield Static("portfolio summary (GET …/summary)", classes="box-title")
            summary = MeasuredTable[str | Text](id="summary", cursor_type="none", show_header=False)
            summary.can_focus = False
            for column in ("name0", "value0", "name1", "value1"):
                summary.add_column(column, key=column)
            for row, pair in enumerate(_pairs(SUMMARY_ITEMS)):
                cells: list[str | Text] = []
                for _, label in pair:
                    cells += [label, Text("…", justify="right")]
                summary.add_row(*cells, *([""] * (4 - len(cells))), key=f"row{row}")
            yield summary

    def on_mount(self) -> None:
        self._title()
        self.show_trend()
        self._draw_worth()
        self.run_worker(self._poll(), exclusive=True, exit_on_error=False, group="detail")
        self.set_interval(1.0, self._title)
        self.set_interval(5.0, self.show_trend)

    async def _poll(self) -> None:
        while True:
            try:
                balance, summary = await asyncio.gather(
                    self.client.balance(self.row.account_id, self.row.asset), self.client.summary(self.row.account_id)
                )
            except VenueError as exc:
                self.error = exc
            else:
                self.error = None
                self.fetched_at = self.app.clock()  # type: ignore[attr-defined]
                self._show(balance.as_record(), summary.as_record())
            self._title()
            await asyncio.sleep(self.refresh_seconds)

    def _show(self, record: dict[str, str | None], summary: dict[str, str | bool | None]) -> None:
        if not self.drawable:
            return
        fields = self.query_one("#fields", DataTable)
        amounts = dict(
            zip(intx.AMOUNTS, align([record.get(n) or "" for n in intx.AMOUNTS], len("not reported")), strict=True)
        )
        width = max([len(t) for t in amounts.values()] + [len(visible(record.get(n) or "")) for n in intx.LABELS])
        texts = [(amounts.get(n) or visible(record.get(n) or "")).rjust(width) for n in intx.FIELDS]
        changes = []
        for name in intx.FIELDS:
            value = record.get(name)
            if name in intx.AMOUNTS:
                amount = Decimal(value) if value is not None else None
                first = self.opened.setdefault(name, amount)
                change = sub(amount, first) if amount is not None and first is not None else None
                changes.append("" if change is None else ("+" if change > 0 else "") + fmt(change))
            else:
                changes.append("")
        changes = align(changes, len("change since opened"))
        for i, name in enumerate(intx.FIELDS):
            value = record.get(name)
            shown = texts[i] if value is not None else "not reported".rjust(len(texts[i]))
            if name in intx.AMOUNTS and value is not None:
                shown = self.mask(shown)
            fields.update_cell(name, "value", Text(shown, style="" if value is not None else "dim"), update_width=True)
            moved = changes[i].strip()
            style = "green" if moved.startswith("+") else ("red" if moved.startswith("-") else "")
            shown_change = self.mask(changes[i]) if moved else changes[i]
            fields.update_cell(name, "change", Text(shown_change, style=style), update_width=True)
        table = self.query_one("#summary", DataTable)
        aligned = align([_text(summary.get(k)) or "—" for k, _ in SUMMARY_ROWS])
        liquidation = summary.get("in_liquidation")
        flag = "YES" if liquidation else ("no" if liquidation is False else "—")
        cells = [self.mask(t) if t.strip() != "—" else t for t in aligned] + [flag.rjust(len(aligned[0]))]
        for i, text in enumerate(cells):
            style = "bold reverse red" if i == len(SUMMARY_ROWS) and liquidation else ""
            table.update_cell(f"row{i // 2}", f"value{i % 2}", Text(text, style=style), update_width=True)

    def _title(self) -> None:
        if not self.drawable:
            return
        text = Text()
        row = self.row
        text.append(f" {visible(row.asset)} ", style="bold reverse")
        text.append(f" in portfolio {visible(row.account)} ({visible(row.account_id)}) · {visible(self.venue)}\n")
        if self.error is not None:
            text.append(f" ● failing: {visible(self.error.message)}", style="bold red")
        elif self.fetched_at is not None:
            age = self.app.clock() - self.fetched_at  # type: ignore[attr-defined]
            text.append(f" ● live · updated {age:.0f} s ago", style="green")
        else:
            text.append(" ◌ loading…", style="cyan")
        text.append("  GET …/balances/{asset} and …/summary every " + f"{self.refresh_seconds:g} s", style="dim")
        self.query_one("#detail-title", Static).update(text)


class KrakenDetailScreen(Drilldown):
    """One Kraken custody asset: balance, hold, available, its share of the vault, change since start."""

    def __init__(self, client: Any, venue: str, row: Row, baseline: Baseline, trend: Trend | None = None) -> None:
        super().__init__(classes="detail")
        self.trend = trend
        self.client = client
        self.venue = venue
        self.row = row
        self.baseline = baseline
        self.share: str = "…"

    def compose(self) -> ComposeResult:
        with self.body():
            yield from self._parts()
        yield DeskFooter()

    def _parts(self) -> ComposeResult:
        yield Static(id="detail-title", classes="detail-title")
        yield self.trend_box()
        yield self.worth_box()
        table = self.fields_table()
        table.add_column("field", key="field")
        table.add_column(Text("value", justify="right"), key="value")
        table.add_column("meaning", key="meaning")
        for key, label, meaning in (
            ("balance", "balance", "total balance of the asset in the vault"),
            ("hold_trade", "hold (trade)", "amount held for trading"),
            ("available", "available", "balance − hold (trade)"),
            ("share", "share of vault", "this asset's USD value / the vault's (GetCustodyVault)"),
            ("first", "balance at start", "the first balance seen this session"),
            ("change", "change since start", "balance now − balance at start"),
        ):
            table.add_row(label, Text("…", justify="right"), meaning, key=key)
        yield table

    def on_mount(self) -> None:
        self._render_values()
        self.show_trend()
        self._draw_worth()
        self.run_worker(self._vault_share(), exclusive=True, exit_on_error=False, group="detail")

    async def _vault_share(self) -> None:
        try:
            vault = await self.client.vault(self.row.account_id)
        except VenueError as exc:
            self.share = visible(f"unavailable: {exc.message}"[:60])
        else:
            self.share = vault_share(vault, self.row.asset)
        self._render_values()

    def update_from(self, snapshot: VenueSnapshot) -> None:
        """The app hands over each new snapshot of this venue (no watchers: textual #6666)."""
        for account in snapshot.accounts:
            if account.id == self.row.account_id:
                for balance in account.balances:
                    if balance.asset == self.row.asset:
                        self.row = Row(
                            self.row.key,
                            account.id,
                            account.name,
                            balance.asset,
                            {
                                **{k: balance.amount(k) for k in ("balance", "hold_trade", "available")},
                                "change": self.row.values.get("change"),
                            },
                        )
        self.snapshot = snapshot
        self._render_values()  # or, on a screen not yet composed, when it is (from self.row)
        self.show_trend()

    def _render_values(self) -> None:
        if not self.drawable:
            return
        values = self.row.values
        first = self.baseline.first(self.venue, self.row.key)
        balance = values.get("balance")
        change = sub(balance, first) if balance is not None and first is not None else None
        texts = align(
            [
                fmt(values.get("balance")),
                fmt(values.get("hold_trade")),
                fmt(values.get("available")),
                fmt(first),
                ("+" if change and change > 0 else "") + fmt(change),
            ],
            len("value"),
        )
        table = self.query_one("#fields", DataTable)
        for key, text in zip(("balance", "hold_trade", "available", "first", "change"), texts, strict=True):
            table.update_cell(
                key, "value", Text(self.mask(text) if text.strip() else "—".rjust(len(text))), update_width=True
            )
        share = self.mask(self.share) if self.share[:1].isdigit() else self.share  # a figure, not "unavailable"
        table.update_cell("share", "value", Text(share, justify="right"), update_width=True)
        title = Text()
        row = self.row
        title.append(f" {visible(row.asset)} ", style="bold reverse")
        title.append(f" in vault {visible(row.account)} ({visible(row.account_id)}) · {visible(self.venue)}")
        self.query_one("#detail-title", Static).update(title)


def vault_share(vault: VaultDetails, asset: str) -> str:
    """This asset's share of the vault's USD value, from GetCustodyVault's total_balance values."""
    share = vault.share(asset)
    if share is None:
        return "not reported"
    mine, total = share
    percent = mine * 100 / total  # a display percentage: the default 28 digits are plenty
    return f"{percent:.2f} % of ${total:,.2f}"


SUMMARY_ITEMS = (*SUMMARY_ROWS, ("in_liquidation", "in liquidation"))


def _pairs(items: tuple[tuple[str, str], ...]) -> list[tuple[tuple[str, str], ...]]:
    return [items[i : i + 2] for i in range(0, len(items), 2)]


def _text(value: str | bool | None) -> str:
    return "" if value is None or isinstance(value, bool) else str(value)


def prices_age(book: PriceBook, now: float) -> str:
    """When the prices were fetched, as a time of day: it does not need redrawing every second."""
    if book.fetched_at is None:
        return "never fetched"
    return "at " + datetime.fromtimestamp(book.fetched_at, UTC).strftime("%H:%M:%S UTC")


def prices_status(book: PriceBook | None, now: float) -> str:
    """The price source in one place (the status line): where prices come from and since when, or why
    they fail and how old the values are."""
    if book is None:
        return ""
    if book.fetched_at is None and book.error is None:
        return f"prices: {book.source}, fetching…"
    if book.error is not None:
        since = f"values from prices fetched {prices_age(book, now)}" if book.fetched_at else "no values yet"
        return f"prices failing ({since}): {visible(book.error.message)}"
    return f"prices: {book.source}, fetched {prices_age(book, now)}"


HELP = """\
[b]Moving[/b]
  ↑ ↓  j k        row up / down              g  G        first / last row
  ← →             a column left / right      z           maximise the pane (again: restore)
  Tab  Shift+Tab  next / previous pane        Enter       drill down into the row
  Esc             back                        PgUp PgDn   a page (help, drill-downs)

[b]Data[/b]
  r   refresh every venue now (paused: once)  p   pause / resume refreshing
  /   filter by asset or account (Esc clears) h   hide / show zero balances
  s   cycle sort: value (biggest first, the   S   turn the sort round
      default), account, asset, amount, change
  c   choose the focused pane's columns       m   mask every amount (screen sharing)

[b]Else[/b]
  a   alerts: what fired and cleared, and when    t   show / hide the totals pane
  ?   this help        Ctrl+P  command palette        q  Ctrl+C   quit

[b]The pane header[/b]
  ● live   ◌ refreshing   ◐ partial (some account failed)   ● failing: cause   ‖ paused
  "at 14:03:05" is when the venue last answered (local time with TZ set, else UTC); "stale for N"
  is the age of the data on screen when refreshes fail: it is kept, dimmed.
  A changed amount flashes green (up) or red (down) for 3 s;
  "change since start" keeps the difference from the first value seen.
  ⚑ marks a pane with active alerts; the cell an alert is about is white on red,
  and its column is shown whatever columns are chosen.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):  # a short terminal scrolls it, its bar showing where
            yield Static("[b]balance-tui[/b] — keys", classes="box-title")
            yield Static(HELP)
            yield Static("[dim]Esc closes · ↑ ↓ PgUp PgDn scroll[/dim]")

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class ColumnsScreen(ModalScreen[tuple[str, ...] | None]):
    """The focused pane's amount columns: Space ticks or unticks one, Enter keeps the choice, Esc leaves it as
    it was. The names always show; a column an alert marks shows whatever is ticked."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("enter", "keep", "Keep", priority=True)]

    def __init__(self, venue: str, columns: list[tuple[str, str, bool]]) -> None:
        """`columns`: (key, label, shown now), in the order they would show."""
        super().__init__()
        self.venue = venue
        self.columns = columns

    def compose(self) -> ComposeResult:
        with Vertical(id="columns"):
            yield Static(Text(f"columns of {visible(self.venue)}", style="bold"), classes="box-title")
            yield SelectionList[str](*((label, key, shown) for key, label, shown in self.columns), id="column-list")
            yield Static("[dim]Space ticks · Enter keeps · Esc leaves as it was[/dim]")

    def action_keep(self) -> None:
        chosen = self.query_one(SelectionList).selected
        self.dismiss(tuple(key for key, _, _ in self.columns if key in chosen))

    def action_cancel(self) -> None:
        self.dismiss(None)


class AlertsScreen(DetailScreen):
    """Every alert this session, newest first: firing ones on top, with when they fired and cleared."""

    BINDINGS = [*DetailScreen.BINDINGS, Binding("a", "back", "Back", show=False)]

    def __init__(self, alerts: Alerts, rules: int) -> None:
        super().__init__(classes="detail")
        self.alerts = alerts
        self.rules = rules

    def compose(self) -> ComposeResult:
        yield Static(id="alerts-title", classes="detail-title")
        table = MeasuredTable[str | Text](id="alerts", cursor_type="row")
        for key, label in (
            ("state", "state"),
            ("fired", "fired"),
            ("cleared", "cleared"),
            ("rule", "rule"),
            ("detail", "what crossed"),
            ("where", "where"),
        ):
            table.add_column(label, key=key)
        yield table
        yield DeskFooter()

    def on_mount(self) -> None:
        self.refresh_alerts()

    def refresh_alerts(self) -> None:
        """Redraw from the alert log (the app calls this after each refresh while the view is open)."""
        if not self.drawable:
            return
        table = self.query_one("#alerts", DataTable)
        table.clear()
        active = list(self.alerts.active.values())
        cleared = [a for a in reversed(self.alerts.log) if not a.active]
        for i, alert in enumerate([*sorted(active, key=lambda a: -a.fired_at), *cleared]):
            if alert.active:
                state = Text("FIRING", style="bold white on dark_red")
                if alert.stale_age is not None:
                    state.append(f" stale data {ago(alert.stale_age)} old", style="bold yellow")
            else:
                state = Text("cleared", style="green")
            table.add_row(
                state,
                _clock(alert.fired_at),
                _clock(alert.cleared_at) if alert.cleared_at is not None else "",
                Text(visible(alert.rule.name)),
                Text(visible(alert.detail if not self.app.view.mask else alert.rule.describe(hide=MASK))),  # type: ignore[attr-defined]
                Text(visible(alert.target.label())),
                key=str(i),
            )
        title = self.query_one("#alerts-title", Static)
        if not self.rules:
            title.update(" [b]Alerts[/b]  no rules configured: add [[alert]] tables to the config (see the README)")
        else:
            title.update(
                f" [b]Alerts[/b]  {len(active)} firing · {len(cleared)} cleared this session · {self.rules} rules"
            )


def _clock(ts: float) -> str:
    """UTC, as every other time balance-tui prints (JSON, history): one clock across a team's terminals."""
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%SZ")
