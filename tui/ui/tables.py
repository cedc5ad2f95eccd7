"""A DataTable that redraws what it drew before it measured its cells (textual#3533), and whose ←/→ go a
column at a time (DataTable's go a cell of width: a wide table's last columns were out of reach); and a
footer that fits the terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from textual import events
from textual.widgets import DataTable, Footer
from textual.widgets._data_table import CellKey, RowKey

CellType = TypeVar("CellType")


class MeasuredTable(DataTable[CellType]):
    """DataTable measures new and widened cells when it is next idle, but a frame drawn before that caches
    the cells cut to the old column widths, under a key that does not hold the width: on a busy machine a
    total stayed drawn as "3212", and a detail screen's values as their first five characters, until the
    cell changed again. New widths retire those renders."""

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
