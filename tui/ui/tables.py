"""A DataTable that redraws what it drew before it measured its cells (textual#3533)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from textual.widgets import DataTable
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
