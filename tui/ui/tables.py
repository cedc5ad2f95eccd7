"""A DataTable that redraws what it drew before it measured its cells (textual#3533), draws a plain cell and
puts a data row's line together itself (as DataTable would, without Rich's renderables or walking its ancestors'
styles for each line: most of an idle monitor's drawing), scrolls instead of laying out the screen when a column
of a table that fills its box gains a digit, and whose ←/→ go a column at a time (DataTable's go a cell of width:
a wide table's last columns were out of reach); and a footer that fits the terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from rich.cells import cell_len
from rich.protocol import rich_cast
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual._types import SegmentLines
from textual.color import Color
from textual.coordinate import Coordinate
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import DataTable, Footer
from textual.widgets._data_table import CellKey, RowKey

PLAIN_JUSTIFY = (None, "default", "left")  # a cell that fits is drawn as it is, padded on its right
FIXED = Style.from_meta({"fixed": True})

CellType = TypeVar("CellType")


class MeasuredTable(DataTable[CellType]):
    """DataTable measures new and widened cells when it is next idle, but a frame drawn before that caches
    the cells cut to the old column widths, under a key that does not hold the width: on a busy machine a
    total stayed drawn as "3212", and a detail screen's values as their first five characters, until the
    cell changed again. New widths retire those renders."""

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)
    FILLS_ITS_BOX = False  # True where nothing's size follows the table's content: see _watch_virtual_size

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._component_styles_seen: dict[tuple[str, Style], Style] = {}

    def _watch_virtual_size(self, size: Size) -> None:
        """A column gaining a digit changes the table's virtual size, a layout reactive: the whole screen was laid
        out again (~22 ms, 10 % of an idle monitor's main thread). A table that fills a box nothing sizes by its
        content (a pane's: FILLS_ITS_BOX, height 1fr in 1fr containers) only scrolls differently: its scrollbars
        are updated as a layout would (`ScrollView._size_updated`), and a scrollbar that appears or goes away
        still asks for the layout it needs. Any other table (height or width auto, or in a grid of auto rows) is
        laid out as DataTable's is."""
        if not self.FILLS_ITS_BOX or self.styles.auto_dimensions:
            self.refresh(layout=True)
            return
        self._scrollbar_changes.clear()
        self._scroll_update(size)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        self._redraw_if_widths_change(super()._update_dimensions, new_rows)

    def _update_column_widths(self, updated_cells: set[CellKey]) -> None:
        self._redraw_if_widths_change(super()._update_column_widths, updated_cells)

    def _redraw_if_widths_change(self, measure: Callable[[Any], None], argument: Any) -> None:
        widths = [column.content_width for column in self.columns.values()]
        measure(argument)
        if widths != [column.content_width for column in self.columns.values()]:
            self._update_count += 1  # part of every render cache key
            self.refresh()

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        """A data cell that is (or makes itself, as the panes' Cell does) one line of unstyled-base text fitting
        its column is drawn here, as DataTable would draw it (a test holds the two equal, character by character
        and style by style) but without Rich's padding, wrapping and line-splitting renderables: ~9 µs a cell
        instead of ~60, and a refresh redraws each cell that moved. Any other cell (headers, labels, markup,
        wrapping, a text wider than its column before the table measured it) is DataTable's."""
        lines = self._plain_cell(row_index, column_index, base_style, width, cursor, hover)
        if lines is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        return lines

    def _plain_cell(
        self, row_index: int, column_index: int, base_style: Style, width: int, cursor: bool, hover: bool
    ) -> list[list[Segment]] | None:
        if row_index < 0 or column_index < 0:
            return None
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return None
        row = self.rows.get(row_key)
        if row is None or row.height != 1:
            return None
        key = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )  # DataTable's own key, so that its invalidation (and write_cells') holds for these cells too
        cached = self._cell_render_cache.get(key)
        if cached is not None:
            return cached
        cell = rich_cast(self._data[row_key].get(column_key))  # a cell that makes itself a Text (panes' Cell)
        if not isinstance(cell, Text) or cell.style or cell.justify not in PLAIN_JUSTIFY:
            return None
        plain, padding = cell.plain, self.cell_padding
        room = width - 2 * padding - cell_len(plain)
        if room < 0 or not (plain.isascii() and plain.isprintable()):  # Rich strips control codes, expands tabs,
            return None  # breaks lines, measures emoji and their modifiers its own way: its renderer draws those
        if self.app.console_options.justify not in PLAIN_JUSTIFY:
            return None
        console = self.app.console
        component, post = self._get_styles_to_render_cell(
            False,
            False,
            row_index < self.fixed_rows or column_index < self.fixed_columns,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        pre = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component
        edge = pre + post
        line = [Segment(" " * padding, edge)] if padding else []
        for segment in cell.render(console, end=""):
            line.append(Segment(segment.text, pre + segment.style + post if segment.style else edge))
        if room + padding:
            line.append(Segment(" " * (room + padding), edge))
        lines = [line]
        self._cell_render_cache[key] = lines
        return lines

    def _render_line_in_row(
        self,
        row_key: RowKey,
        line_no: int,
        base_style: Style,
        cursor_location: Coordinate,
        hover_location: Coordinate,
    ) -> tuple[SegmentLines, SegmentLines]:
        """A data row one line high, without row labels, is put together here as DataTable does it (a test holds
        the two equal) but with the columns listed and measured once, and the fixed cells' and stripes' styles
        worked out once per style update instead of walking the widget's ancestors twice for every line: a line
        cost ~150 µs, and an idle monitor redraws a few hundred a minute. Any other line is DataTable's."""
        row_index = self._row_locations.get(row_key)
        row = self.rows.get(row_key)
        if row_index is None or row is None or row.height != 1 or line_no or self._should_render_row_labels:
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        cursor_type, show_cursor = self.cursor_type, self.show_cursor
        key = (
            row_key,
            line_no,
            base_style,
            cursor_location,
            hover_location,
            cursor_type,
            show_cursor,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )  # DataTable's own key and cache
        cached = self._row_render_cache.get(key)
        if cached is not None:
            return cached

        def lit(location: Coordinate, column_index: int) -> bool:
            if cursor_type == "row":
                return location.row == row_index
            if cursor_type == "cell":
                return location.row == row_index and location.column == column_index
            return cursor_type == "column" and location.column == column_index

        widths = [column.get_render_width(self) for column in self.ordered_columns]
        fixed = self.fixed_columns
        render_cell = self._render_cell
        fixed_row: SegmentLines = []
        if fixed:
            fixed_style = self._component_style("datatable--fixed", base_style) + FIXED
            fixed_row = [
                render_cell(
                    row_index,
                    index,
                    fixed_style,
                    widths[index],
                    lit(cursor_location, index),
                    lit(hover_location, index),
                )[0]
                for index in range(min(fixed, len(widths)))
            ]
        if row_index < self.fixed_rows:
            row_style = self._component_style("datatable--fixed", base_style)
        elif self.zebra_stripes:
            row_style = self._component_style(
                "datatable--odd-row" if row_index % 2 else "datatable--even-row", base_style
            )
        else:
            row_style = base_style
        scrollable_row: SegmentLines = [
            render_cell(row_index, index, row_style, width, lit(cursor_location, index), lit(hover_location, index))[0]
            for index, width in enumerate(widths)
        ]
        remaining_space = max(0, self.size.width - sum(widths[fixed:]))
        if cursor_type == "row":
            extend_style, _ = self._get_styles_to_render_cell(
                False,
                False,
                False,
                hover_location.row == row_index,
                cursor_location.row == row_index,
                show_cursor,
                self._show_hover_cursor,
                False,
                False,
            )
            extend_style = row_style + extend_style
        elif row_style.bgcolor is not None:
            faded = Color.from_rich_color(row_style.bgcolor).blend(self.background_colors[1], factor=0.25)
            extend_style = Style.from_color(color=row_style.color, bgcolor=faded.rich_color)
        else:
            extend_style = Style.from_color(row_style.color, row_style.bgcolor)
        extend_style += Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        scrollable_row.append([Segment(" " * remaining_space, extend_style)])
        pair = (fixed_row, scrollable_row)
        self._row_render_cache[key] = pair
        return pair

    def _component_style(self, name: str, base_style: Style) -> Style:
        """A component's Rich style, as `get_component_styles(name).rich_style` gives it, kept until the styles
        are next applied (a focus, a hover, a theme) while the widget's own style (its ancestors' backgrounds),
        which DataTable keys the rows it draws with, stays the same."""
        seen = self._component_styles_seen
        key = (name, base_style)
        style = seen.get(key)
        if style is None:
            if len(seen) > 32:
                seen.clear()
            style = seen[key] = self.get_component_styles(name).rich_style
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._component_styles_seen = {}

    def action_cursor_right(self) -> None:
        if self.cursor_type in ("cell", "column"):
            super().action_cursor_right()
            return
        later = [x for x in self._column_stops() if x > self.scroll_x + 0.5]
        self.scroll_to(x=min(later[0], self.max_scroll_x) if later else self.max_scroll_x, animate=False)

    def action_cursor_left(self) -> None:
        if self.cursor_type in ("cell", "column"):
            super().action_cursor_left()
            return
        earlier = [x for x in self._column_stops() if x < self.scroll_x - 0.5]
        self.scroll_to(x=earlier[-1] if earlier else 0, animate=False)

    def _column_stops(self) -> list[int]:
        """The horizontal scroll offsets that put a column's first cell just after the fixed columns."""
        widths = [column.get_render_width(self) for column in self.ordered_columns]
        fixed = sum(widths[: self.fixed_columns])
        stops, x = {0}, 0
        for index, width in enumerate(widths):
            if index >= self.fixed_columns:
                stops.add(max(0, x - fixed))
            x += width
        return sorted(stops)


class DeskFooter(Footer):
    """The keys, fitting the terminal: below 100 columns the command palette's own key gives its room to ours
    (help lists Ctrl+P), or the last of them is cut ("m Ma" at 80)."""

    def on_resize(self, event: events.Resize) -> None:
        self.show_command_palette = event.size.width >= 100
