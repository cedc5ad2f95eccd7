"""A venue's pane: a header line (state, when it last answered, round trip; ages and the next refresh only when
something is wrong, so a calm header never ticks) over a table updated in place."""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from rich.console import Console
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static
from textual.widgets._data_table import CellDoesNotExist, ColumnKey, RowKey

from tui.money import Shape, dollars, pad, shape_of
from tui.monitor.totals import STALE_AFTER_PERIODS
from tui.monitor.valuation import Appraisal
from tui.snapshot.model import VenueSnapshot
from tui.ui.rows import MASK, Baseline, Row, build_rows, columns_for, masked
from tui.ui.tables import MeasuredTable
from tui.untrusted import visible

FLASH_SECONDS = 3.0  # a move flashes at least this long; it ends with the next data drawn anyway (one frame for
# both), or, with none by then, at twice this long on the second's tick (a frame of its own)
SHRINK_SLACK = 12  # a two-line header goes back to one only with this many cells to spare: an age or a
# round trip gaining a digit must not make it jump (each change of height is a layout of the whole screen)
ROW_REFRESH_LIMIT = 16  # beyond this many changed rows, one repaint costs less than a region per row


class Cell:
    """A cell as the table holds it: its text and style, made a rich `Text` only when DataTable measures or
    draws it. At 2,000 rows a `Text` per cell (with its lists of parts and spans) cost megabytes for cells
    mostly off screen. Not a `str`, which DataTable would read as markup: words from a venue show literally."""

    __slots__ = ("style", "text")

    def __init__(self, text: str, style: str = "") -> None:
        self.text = text
        self.style = style

    def __rich__(self) -> Text:
        cell = Text(self.text)  # numeric texts come padded to the column's width: left keeps the padding
        if self.style:
            cell.stylize(self.style)
        return cell

    def __bool__(self) -> bool:  # an empty cell is drawn as DataTable's empty text, as an empty `Text` was
        return bool(self.text)

    def __str__(self) -> str:
        return self.text


class KeyedCell(Cell):
    """The first cell of a row, carrying the row's key so `DataTable.sort` can follow our order."""

    __slots__ = ("row_key",)

    def __init__(self, text: str, row_key: str) -> None:
        super().__init__(text)
        self.row_key = row_key


class BalanceTable(MeasuredTable[Cell]):
    FILLS_ITS_BOX = True  # height 1fr in its pane, the pane 1fr in the screen (app.tcss)
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]
    CELL_SCREENFULS = 10  # rendered cells kept: this many screenfuls of the table (at least MIN_CELLS); 4 cost
    # ~0.2 % of a core more in the idle benchmark (a refresh re-renders rows whose unchanged cells then miss)
    MIN_CELLS = 1000

    def on_resize(self) -> None:
        """DataTable keeps 10,000 rendered cells, keyed by its update count (bumped by every sort and
        resize): each re-sort (prices moving the order) strands a screenful, which lingers until evicted, so
        a monitor open for hours fills the cache — megabytes per table for nothing. What a resize leaves is
        dead (its count moved on); emptying it also lets the cache grow to its new size again."""
        cache = getattr(self, "_cell_render_cache", None)
        if cache is None or not hasattr(cache, "maxsize"):
            return
        cache.clear()
        cache.maxsize = max(self.MIN_CELLS, self.CELL_SCREENFULS * self.size.height * max(1, len(self.columns)))

    def write_cells(self, cells: list[tuple[str, str, Cell]]) -> None:
        """Write cells in place (same widths), throwing away the cached renders of their rows only
        and redrawing only those rows.

        `update_cell` bumps a table-wide counter that discards every cached cell (textual#1483), so a
        refresh that moves 1% of the cells re-renders all visible ones: most of an idle monitor's CPU.
        This relies on DataTable's private caches (Textual is pinned to a minor version; tests render
        the table after an update to prove no stale cell is shown) and falls back to `update_cell`.
        """
        try:
            data, renderables, cell_cache, row_cache, line_cache = (
                self._data,
                self._row_renderable_cache,
                self._cell_render_cache,
                self._row_render_cache,
                self._line_cache,
            )
        except AttributeError:
            for row, column, value in cells:
                self.update_cell(row, column, value)
            return
        rows: set[RowKey] = set()
        touched: set[tuple[RowKey, ColumnKey]] = set()
        for row, column, value in cells:
            row_key, column_key = RowKey(row), ColumnKey(column)
            data[row_key][column_key] = value
            rows.add(row_key)
            touched.add((row_key, column_key))
        indexes = {self._row_locations.get(row) for row in rows}
        for renderable_key in [k for k in renderables.keys() if k[1] in indexes]:  # noqa: SIM118 (not iterable)
            renderables.discard(renderable_key)
        for cell_key in [k for k in cell_cache.keys() if (k[0], k[1]) in touched]:  # noqa: SIM118 (not iterable)
            cell_cache.discard(cell_key)
        for line_key in [k for k in row_cache.keys() if k[0] in rows]:  # noqa: SIM118 (not iterable)
            row_cache.discard(line_key)
        for line in [k for k in line_cache.keys() if self._row_on_line(k[0]) in rows]:  # noqa: SIM118 (not iterable)
            line_cache.discard(line)
        if len(indexes) > ROW_REFRESH_LIMIT:
            self.refresh()  # one repaint of what is visible: unchanged rows come from the cache
            return
        window, offset = self.window_region, self.scroll_offset
        regions = [self._get_row_region(i) for i in indexes if i is not None]  # rows the table holds: valid
        shown = [region.translate(-offset) for region in regions if window.overlaps(region)]
        if shown:
            self.refresh(*shown)  # as `refresh_row` for each, in one request: one repaint's bookkeeping, not one a row

    def keep_on_line(self, row: int, line: int) -> None:
        """Scroll so that row `row` sits `line` lines below the top of the view: rows added or removed
        above it do not shift what the operator is reading."""
        target = max(0, row - line)
        if target == round(self.scroll_y):
            return
        self.scroll_to(y=target, animate=False, immediate=True)
        if getattr(self, "_require_update_dimensions", False):  # added rows count once DataTable measures them
            self.call_after_refresh(self.scroll_to, y=target, animate=False, immediate=True)

    def shown(self, row: str, column: str) -> Cell | None:
        """The cell the table holds (None if it holds no such cell): the pane keeps no copy of its text."""
        try:
            return self.get_cell(row, column)
        except CellDoesNotExist:
            return None

    def _row_on_line(self, y: int) -> RowKey | None:
        try:
            return self._get_offsets(y)[0]
        except (LookupError, IndexError):
            return None


@dataclass
class View:
    """How every pane filters and shows its rows (owned by the app, shared by the panes)."""

    filter_text: str = ""
    hide_zero: bool = False
    sort: str = "value"
    reverse: bool = False  # the sort turned round (S)
    mask: bool = False


class VenuePane(Vertical):
    """One venue. `show()` takes a snapshot and writes only what changed."""

    ALLOW_MAXIMIZE = True

    def __init__(
        self,
        index: int,
        name: str,
        kind: str,
        baseline: Baseline,
        view: View,
        now: Callable[[], float] = time.time,
        valued: bool = True,
        columns: tuple[str, ...] | None = None,
    ) -> None:
        """`valued`: there is a price source, so the pane has a value column and its header a worth.
        `columns`: the amount columns to show, in order (the config's `columns`; None: the kind's default)."""
        super().__init__(id=f"pane-{index}", classes="pane")
        self.index = index
        self.venue_name = name
        self.kind = kind
        self.valued = valued
        self.chosen = columns
        self.columns = columns_for(kind, valued, columns)
        self.worth: Appraisal | None = None
        self.via: str | None = None  # the server this pane's data comes through, when attached
        self.baseline = baseline
        self.view = view
        self.snapshot: VenueSnapshot | None = None
        self.rows: dict[str, Row] = {}
        self._flashes: dict[tuple[str, str], tuple[float, str]] = {}
        self._widths: dict[str, int] = {}
        self._shapes: dict[str, Shape] = {}
        self._view: tuple[object, ...] = ()
        self._order: list[str] = []
        self.flagged: set[tuple[str, str]] = set()
        self.paused = False
        self.now = now
        self._header = Static(Text(visible(name)), classes="pane-header", id=f"header-{index}")
        self._header_shown: tuple[Text, int] | None = None
        self._header_still: tuple[object, ...] | None = None  # what the calm header last built depends on
        self._table = BalanceTable(id=f"table-{index}", cursor_type="row", zebra_stripes=False)
        self._add_columns()

    def _add_columns(self) -> None:
        table = self._table
        for column in self.columns:
            table.add_column(Text(column.label, justify="right" if column.numeric else "left"), key=column.key)
            self._widths[column.key] = len(column.label)
        table.fixed_columns = next(  # the names stay put on ←/→
            (i for i, column in enumerate(self.columns) if column.numeric), len(self.columns)
        )

    def set_columns(self, chosen: tuple[str, ...] | None) -> None:
        """Show these amount columns, in this order (None: the kind's default); a column an alert marks stays."""
        self.chosen = chosen
        self._show_columns()

    def _show_columns(self) -> None:
        """The columns chosen, and any an active alert marks: the table is built again when they differ."""
        columns = columns_for(self.kind, self.valued, self.chosen, (column for _, column in self.flagged))
        if columns == self.columns:
            return
        self.columns = columns
        self._table.clear(columns=True)
        self.rows, self._widths, self._shapes, self._order = {}, {}, {}, []
        self._add_columns()
        if self.live:
            self.render_rows()

    def compose(self) -> ComposeResult:
        yield self._header
        yield self._table

    @property
    def table(self) -> BalanceTable:
        return self._table

    @property
    def live(self) -> bool:
        """False once the app is tearing the pane down: late snapshots are then ignored, not an error."""
        return self._table.is_attached and self._header.is_attached

    def cursor_key(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # the cursor can point past the last row while rows are being removed
            return None

    def selected_row(self) -> Row | None:
        key = self.cursor_key()
        return self.rows.get(key) if key else None

    # --- data ---------------------------------------------------------------------------------------

    def show_worth(self, worth: Appraisal | None) -> None:
        """New values (new prices, or a venue's new balances valued): the value cells and the header."""
        if worth is self.worth or not self.live:
            return
        self.worth = worth
        if self.snapshot is not None:
            self.render_rows()
        self.refresh_header()

    def show_valued(self, snapshot: VenueSnapshot, worth: Appraisal | None) -> None:
        """A venue's answer (not a refreshing snapshot: those draw no rows) and the values the monitor made of
        it, drawn in one pass: `show` then `show_worth` built and compared every row twice."""
        if self.live:
            self.worth = worth
            self.show(snapshot)

    def show(self, snapshot: VenueSnapshot) -> None:
        if not self.live:
            return
        self.snapshot = snapshot
        self.set_class(snapshot.failures > 0 or snapshot.error is not None, "-failing")
        if snapshot.refreshing and self.rows:
            return  # only the header would change: its next tick says "refreshing" if it still is by then
        self.render_rows()
        self.refresh_header()

    def render_rows(self) -> None:
        """Write what changed since the last render: new rows, removed rows, and cells whose text moved.

        Unchanged rows are reused by `build_rows` and skipped here, unless a column's layout changed
        (a wider number, the mask toggled), which re-pads that column in every row.
        """
        if self.snapshot is None or not self.live:
            return
        view = self.view
        rows = build_rows(
            self.snapshot,
            self.baseline,
            filter_text=view.filter_text,
            hide_zero=view.hide_zero,
            sort=view.sort,
            reverse=view.reverse,
            previous=self.rows,
            worth=self.worth,
            columns=self.columns,
        )
        table = self.table
        keep = self.cursor_key() if table.cursor_row > 0 else None  # on the first row, it stays at the top
        line = table.cursor_row - round(table.scroll_y)  # where the cursor row sits on screen
        wanted = {r.key for r in rows}
        relayout = self._relayout(rows, removed=any(k not in wanted for k in self.rows))
        with self.app.batch_update():
            for key in [k for k in self.rows if k not in wanted]:
                table.remove_row(key)
                self.rows.pop(key)
            now = time.monotonic()
            added = False
            writes: list[tuple[str, str, Cell]] = []
            for row in rows:
                old = self.rows.get(row.key)
                if old is None:
                    cells = [self._cell(row, c.key, self._text(row, c.key), now) for c in self.columns]
                    table.add_row(*cells, key=row.key)
                    added = True
                elif old is not row or relayout:
                    self._update_row(row, old, now, writes)
                self.rows[row.key] = row
            table.write_cells(writes)
            order = [r.key for r in rows]
            if added or order != self._order:
                position = {key: i for i, key in enumerate(order)}
                table.sort(key=lambda values: position.get(getattr(values[0], "row_key", ""), 0))
            self._order = order
            if keep is not None and keep in self.rows and table.get_row_index(keep) != table.cursor_row:
                index = table.get_row_index(keep)
                table.move_cursor(row=index, animate=False, scroll=False)
                table.keep_on_line(index, line)

    def _relayout(self, rows: list[Row], removed: bool) -> bool:
        """Update each numeric column's shape; True when every row must be re-padded.

        Shapes only grow between renders (a narrower number keeps its column's width), so only rows that
        changed need measuring; they are recomputed from scratch when rows leave or the view changes.
        """
        view = (self.view.filter_text, self.view.hide_zero, self.view.sort, self.view.reverse, self.view.mask)
        numeric = [c for c in self.columns if c.numeric]
        if removed or view != self._view or not self._shapes:
            shapes = {c.key: shape_of((r.text(c.key) for r in rows), len(c.label)) for c in numeric}
        else:
            fresh = [r for r in rows if self.rows.get(r.key) is not r]
            shapes = {c.key: shape_of((r.text(c.key) for r in fresh), grow=self._shapes[c.key]) for c in numeric}
        relayout = shapes != self._shapes or view[-1:] != self._view[-1:]  # the mask re-texts every row
        self._shapes, self._view = shapes, view
        return relayout

    def _text(self, row: Row, column: str) -> str:
        shape = self._shapes.get(column)
        if shape is None:
            return row.text(column)
        text = pad(row.text(column), shape)
        return masked(text) if self.view.mask else text

    def _update_row(self, row: Row, old: Row, now: float, writes: list[tuple[str, str, Cell]]) -> None:
        """Queue the row's changed cells on `writes`; a cell wider than its column is written at once."""
        for column in self.columns:
            text = self._text(row, column.key)
            shown = self.table.shown(row.key, column.key)
            if shown is not None and shown.text == text:
                continue
            before, after = old.value(column.key), row.value(column.key)
            # a move flashes; a value appearing (prices arrived) or going (prices lost) does not
            moved = column.numeric and column.key != "change" and None not in (before, after) and before != after
            if moved:
                direction = "up" if (after or 0) > (before or 0) else "down"
                self._flashes[(row.key, column.key)] = (now + FLASH_SECONDS, direction)
            grow = len(text) > self._widths.get(column.key, 0)
            cell = self._cell(row, column.key, text, now)
            if grow:
                self.table.update_cell(row.key, column.key, cell, update_width=True)
            else:
                writes.append((row.key, column.key, cell))

    def _cell(self, row: Row, column: str, text: str, now: float) -> Cell:
        self._widths[column] = max(self._widths.get(column, 0), len(text))
        if column == self.columns[0].key:
            return KeyedCell(text, row.key)
        flash = self._flashes.get((row.key, column))
        if (row.key, column) in self.flagged:
            return Cell(text, "bold white on dark_red")
        if flash is not None and flash[0] > now:
            return Cell(text, "bold reverse green" if flash[1] == "up" else "bold reverse red")
        change = row.value("change") if column == "change" and not self.view.mask else None
        if change:
            return Cell(text, "green" if change > 0 else "red")
        return Cell(text)

    def flag(self, cells: set[tuple[str, str]]) -> None:
        """Mark the cells an active alert is about (row key, column); unmark the rest."""
        if cells == self.flagged:
            return
        changed = cells ^ self.flagged
        self.flagged = set(cells)
        before = self.columns
        self._show_columns()
        if self.columns != before:  # built again, flags and all
            self.refresh_header()
            return
        now = time.monotonic()
        writes = []
        for row_key, column in changed:
            row, shown = self.rows.get(row_key), self.table.shown(row_key, column)
            if row is not None and shown is not None:
                writes.append((row_key, column, self._cell(row, column, shown.text, now)))
        if self.live:
            self.table.write_cells(writes)
            self.refresh_header()

    def expire_flashes(self, overdue: bool = False) -> None:
        """Cells whose flash is over go back to plain text: when new data comes, in the frame that draws it;
        `overdue` (the second's tick), only those over for FLASH_SECONDS more, which no data came to end."""
        if not self.live:
            return
        now = time.monotonic()
        cutoff = now - (FLASH_SECONDS if overdue else 0.0)
        done = [k for k, (until, _) in self._flashes.items() if until <= cutoff]
        if not done:
            return
        writes = []
        for key in done:
            self._flashes.pop(key)
            row_key, column = key
            row, shown = self.rows.get(row_key), self.table.shown(row_key, column)
            if row is not None and shown is not None:
                writes.append((row_key, column, self._cell(row, column, shown.text, now)))
        self.table.write_cells(writes)

    # --- header -------------------------------------------------------------------------------------

    def refresh_header(self) -> None:
        """Redraw the header, if its text changed. A layout pass (which redraws every table) only when its
        height must change: a header that is shorter while a refresh runs keeps its height until it ends."""
        if not self.live:
            return
        now = self.now()
        still = self._still_header(now)
        if still is not None and still == self._header_still:
            return  # a calm header, nothing it shows changed: the second's tick builds nothing
        self._header_still = still
        text, parts = header_text(self.venue_name, self.snapshot, self.paused, len(self.rows), now)
        text.append_text(worth_text(self.worth, self.venue_name, self.kind, now, self.view.mask))
        if self.via:
            text.append(f"  via {visible(self.via)}", style="bold cyan")
        alerts = len({key for key, _ in self.flagged})
        if alerts:
            flag, hint = f"  ⚑ {alerts} alert{'s' if alerts != 1 else ''}", " (a lists them)"
            parts["hint"] = (len(text.plain) + len(flag), len(text.plain) + len(flag) + len(hint))
            text.append(flag + hint, style="bold white on dark_red")
        width = self._header.content_region.width
        if width <= 0:  # hidden, or not laid out yet: showing it lays it out, so no layout pass for this
            self._header.update(text, layout=False)
            self._header_shown = None
            return
        height = self._header.size.height
        text = fit_header(text, width, tall=height > 1, parts=parts)
        if (text, width) == self._header_shown:  # a second passed and nothing in the header says so
            return
        self._header_shown = (text, width)
        lines = min(2, sum(max(1, -(-line.cell_len // width)) for line in text.split("\n")))
        refreshing = self.snapshot is not None and self.snapshot.refreshing
        self._header.update(text, layout=lines > height or (lines < height and not refreshing))

    def _still_header(self, now: float) -> tuple[object, ...] | None:
        """All a calm header shows depends on, when no part of it ticks (no age, no countdown, prices not stale);
        None when one does. The tick does not build a header whose inputs are the same as at the last build:
        staleness beginning (a new standing) still changes them the moment it begins."""
        snap, worth = self.snapshot, self.worth
        if snap is not None and not standing(snap, self.paused, now)[2]:
            return None
        if worth is not None and worth.book is not None and worth.book.stale(now):
            return None
        alerts = len({key for key, _ in self.flagged})
        region = self._header.content_region
        return (snap, self.paused, len(self.rows), worth, self.view.mask, self.via, alerts, region.width, region.height)


Parts = dict[str, tuple[int, int]]  # where in a header each part it may leave out is: (start, end)


def header_text(name: str, snap: VenueSnapshot | None, paused: bool, shown: int, now: float) -> tuple[Text, Parts]:
    """A venue's header, and where in it are the parts `fit_header` may leave out."""
    text, parts = Text(), Parts()
    text.append(f" {visible(name)} ", style="bold reverse")
    if snap is None:
        text.append("  connecting…", style="italic")
        return text, parts
    if snap.kind == "totals":
        assets = sum(len(a.balances) for a in snap.accounts)
        text.append(f"  {assets} asset{'s' if assets != 1 else ''} across every venue")
    else:
        words = "vault" if snap.kind == "kraken-custody" else "portfolio"
        text.append(f"  {len(snap.accounts)} {words}{'s' if len(snap.accounts) != 1 else ''}")
    text.append("  ")
    error = snap.first_error()
    age, stale, calm = standing(snap, paused, now)
    if snap.error is not None or (snap.failures > 0 and error is not None):
        text.append("● failing", style="bold red")
        text.append(f": {visible(error.message) if error else 'no data'}", style="red")
        if age is not None:
            text.append(f"  stale for {ago(age)}", style="yellow")
    elif paused:
        text.append("‖ paused", style="bold yellow")
    elif snap.refreshing:
        text.append("◌ refreshing", style="bold cyan")
        if stale:
            text.append(f"  stale for {ago(age or 0)}", style="yellow")  # a slow venue: the data is old
    elif error is not None:
        failing = [a.name for a in snap.accounts if a.error is not None]  # the venue answered: error is failing[0]'s
        more = f" (+{len(failing) - 1} more)" if len(failing) > 1 else ""
        text.append("◐ partial", style="bold yellow")
        text.append(f": {visible(failing[0])}: {visible(error.message)}{more}", style="yellow")
    elif stale:
        text.append(f"● stale for {ago(age or 0)}", style="bold yellow")
    else:
        text.append("● live", style="bold green")
    if calm and snap.fetched_at is not None:  # a time of day does not tick: no frame a second for nothing
        text.append(f"  at {clock(snap.fetched_at)}", style="dim")
    elif age is not None:  # the data's age matters now: it ticks
        text.append(f"  updated {ago(age)} ago", style="dim")
    if snap.next_refresh_at is not None and not paused and not snap.refreshing and not calm:
        _append_part(text, parts, "next", f"  next in {ago(math.ceil(max(0.0, snap.next_refresh_at - now)))}", "dim")
    if snap.round_trip is not None:
        _append_part(text, parts, "rtt", f"  rtt {snap.round_trip * 1000:.0f} ms", "dim")
    if snap.note:
        text.append(f"  ⚠ {visible(snap.note)}", style="yellow")
    total = sum(len(a.balances) for a in snap.accounts)
    if shown != total:
        text.append(f"  showing {shown} of {total}", style="italic")
    return text, parts


def standing(snap: VenueSnapshot, paused: bool, now: float) -> tuple[float | None, bool, bool]:
    """The data's age, whether it is stale, and whether the header is calm (shows a time of day, nothing ticks)."""
    age = snap.age(now)
    period = snap.period or 0.0
    stale = age is not None and period > 0 and age > STALE_AFTER_PERIODS * period
    calm = (paused or not snap.refreshing) and not stale and snap.first_error() is None and snap.failures == 0
    return age, stale, calm


def _append_part(text: Text, parts: Parts, part: str, words: str, style: str) -> None:
    parts[part] = (len(text.plain), len(text.plain) + len(words))
    text.append(words, style=style)


def worth_text(worth: Appraisal | None, venue: str, kind: str, now: float, mask: bool) -> Text:
    """What a pane's holdings are worth, for its header: a venue's total, or the firm's gross, loans and
    net on the totals pane; yellow with the prices' age when they are stale."""
    text = Text()
    if worth is None or not worth.priced or worth.book is None:
        return text
    stale = worth.book.stale(now)  # the header ticks: the prices age between two appraisals
    style = "bold yellow" if stale else "bold"

    def money(amount: Decimal) -> str:
        return "$" + (MASK if mask else dollars(amount))

    if kind == "totals":
        firm = worth.firm
        text.append(f"  {money(firm.gross)} gross", style=style)
        if firm.loans:
            text.append(f" − {money(firm.loans)} loans = {money(firm.net)} net", style=style)
        if worth.unpriced:
            text.append(f"  {len(worth.unpriced)} unpriced", style="yellow")
    elif venue in worth.venues:
        sums = worth.venues[venue]
        text.append(f"  worth {money(sums.gross)}", style=style)
        if sums.loans:
            text.append(f" (loans {money(sums.loans)})", style=style)
    if stale:
        text.append(f" at prices {ago(worth.book.age(now) or 0)} old", style="yellow")
    return text


LEAST_NEEDED = ("rtt", "next", "hint")  # what a header too long for two lines leaves out, first to last: the
# round trip, the next refresh, the alerts key's hint; the venue's state, its worth and the alert flag never


def fit_header(text: Text, width: int, tall: bool, parts: Parts | None = None) -> Text:
    """`fold_header`, leaving out the fewest of `parts` (what matters least) so that the header breaks
    between two parts into two lines; failing that, the fewest so that it wraps word by word into two,
    nothing cut off. Parts are found where they were written, not by their words: an error may say "rtt"."""
    folded = fold_header(text, width, tall)
    if "\n" in folded.plain or folded.cell_len <= width:
        return folded
    parts = dict(parts or {})
    shorter = [folded]
    for part in LEAST_NEEDED:
        text = _without(text, parts, part)
        shorter.append(fold_header(text, width, tall))
        if "\n" in shorter[-1].plain or shorter[-1].cell_len <= width:
            return shorter[-1]
    return next((f for f in shorter if len(f.wrap(_MEASURE, width)) <= 2), shorter[-1])


_MEASURE = Console(file=io.StringIO())  # measures how a header wraps word by word; prints nothing


def _without(text: Text, parts: Parts, part: str) -> Text:
    """`text` without `part`; `parts` then says where the others are in what is left."""
    if part not in parts:
        return text
    start, end = parts.pop(part)
    for other, (a, b) in parts.items():
        if a >= end:
            parts[other] = (a - (end - start), b - (end - start))
    return text[:start] + text[end:]


def fold_header(text: Text, width: int, tall: bool) -> Text:
    """`fold` for a header; one already two lines `tall` stays two unless it fits with SHRINK_SLACK cells to
    spare, still broken between two parts when it can be."""
    if not tall:
        return fold(text, width)
    folded = fold(text, width - SHRINK_SLACK)
    return folded if "\n" in folded.plain or folded.cell_len <= width else fold(text, width)


def fold(text: Text, width: int) -> Text:
    """A header too wide for one line breaks between two of its parts (two spaces apart), not inside one,
    when the rest then fits on the second line; otherwise it wraps word by word, so nothing is cut off."""
    if text.cell_len <= width:
        return text
    cut = text.plain.rfind("  ", 0, width + 1)
    if cut <= 0 or text.cell_len - cut - 2 > width:
        return text
    head, tail = text.divide([cut])
    head.append("\n")
    head.append_text(tail[2:])
    return head


def clock(at: float) -> str:
    """A time of day as the operator reads it: their local time when TZ says which, else UTC, saying so."""
    if os.environ.get("TZ"):
        return time.strftime("%H:%M:%S", time.localtime(at))
    return time.strftime("%H:%M:%S UTC", time.gmtime(at))


def ago(seconds: float) -> str:
    """A duration as an operator reads it: 42 s, 3 min 5 s, 2 h 10 min."""
    seconds = int(max(0.0, seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
