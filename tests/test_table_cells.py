"""A table cell is drawn as DataTable draws it: MeasuredTable draws a plain one-line cell itself (issue 24: the
idle TUI's CPU is mostly cells redrawn after a refresh), and any text, styled anyhow, under the cursor or not,
must come out character for character and style for style as DataTable's own renderer gives it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from tui.ui.panes import BalanceTable, Cell, KeyedCell
from tui.ui.tables import MeasuredTable
from tui.untrusted import visible

STYLES = ["bold reverse green", "bold reverse red", "bold white on dark_red", "green", "red", "italic", "dim"]
ROWS, COLUMNS = 4, 3


class _Host(App[None]):
    def compose(self) -> ComposeResult:
        table = BalanceTable(cursor_type="row")
        for column in range(COLUMNS):
            table.add_column(Text(f"c{column}", justify="right"), key=f"c{column}")
        for row in range(ROWS):
            table.add_row(*(Text("") for _ in range(COLUMNS)), key=f"r{row}")
        table.fixed_columns = 1
        yield table


def _drawn(lines: list[list[Segment]]) -> list[list[tuple[str, Style | None]]]:
    """Each line as (character, style) pairs: where one renderer cuts its segments does not matter."""
    return [[(ch, segment.style) for segment in line for ch in segment.text] for line in lines]


@st.composite
def cells(draw: st.DrawFn) -> Text | Cell:
    anything = st.characters(exclude_categories=("Cs",))
    names = st.characters(categories=("L", "N", "P", "S"), include_characters=" ")  # what names are
    amounts = st.sampled_from("0123456789.,-$% ")  # what most cells are
    raw = draw(st.text(draw(st.sampled_from([anything, names, amounts])), max_size=24))
    text = visible(raw) if draw(st.booleans()) else raw
    kind = draw(st.sampled_from(["cell", "keyed", "text"]))
    if kind != "text":  # as the panes hold them: a text and at most one style over all of it
        cell = KeyedCell(text, "r0") if kind == "keyed" else Cell(text, draw(st.sampled_from(["", *STYLES])))
        return cell
    cell = Text(text)
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, len(text)))
        cell.stylize(draw(st.sampled_from(STYLES)), start, end)
    if draw(st.booleans()):
        cell.stylize(draw(st.sampled_from(STYLES)))  # a whole cell, as a flash or an alert marks it
    cell.justify = draw(st.sampled_from([None, "default", "left", "right", "center"]))
    if draw(st.integers(0, 9)) == 0:
        cell.style = draw(st.sampled_from(STYLES))
    return cell


async def test_a_cell_is_drawn_as_datatable_draws_it(monkeypatch: pytest.MonkeyPatch) -> None:
    theirs_drawn = DataTable._render_cell
    handed: list[int] = []

    def handed_over(*args: Any, **kwargs: Any) -> list[list[Segment]]:
        handed.append(1)
        return theirs_drawn(*args, **kwargs)

    monkeypatch.setattr(DataTable, "_render_cell", handed_over)
    app = _Host()
    async with app.run_test(size=(120, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(MeasuredTable)
        drawn_here = {Text: 0, Cell: 0}

        @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            cell=cells(),
            row=st.integers(0, ROWS - 1),
            column=st.integers(0, COLUMNS - 1),
            spare=st.integers(-3, 6),
            cursor=st.booleans(),
            hover=st.booleans(),
            background=st.sampled_from([None, "on grey11", "white on blue"]),
        )
        @example(Cell("\x1f"), 0, 0, 0, False, False, None)  # a control code Rich drops
        @example(Cell("a\tb"), 1, 1, 8, False, False, None)  # a tab Rich expands
        @example(Text("a\nb"), 1, 2, 2, False, False, None)  # a line Rich breaks
        @example(KeyedCell("\U0001f3fb", "r0"), 0, 0, 0, False, False, None)  # an emoji modifier Rich measures as 0
        @example(Cell("é"), 2, 1, 1, True, False, None)
        def same(
            cell: Text | Cell, row: int, column: int, spare: int, cursor: bool, hover: bool, background: str | None
        ) -> None:
            table._data[table._row_locations.get_key(row)][table._column_locations.get_key(column)] = cell
            table._row_renderable_cache.clear()  # DataTable's renderer reads the cells through this cache
            base = table.rich_style + (Style.parse(background) if background else Style())
            width = max(1, Text(str(cell)).cell_len + 2 + spare)
            table._cell_render_cache.clear()
            theirs = theirs_drawn(table, row, column, base, width, cursor, hover)
            table._cell_render_cache.clear()
            handed.clear()
            ours = table._render_cell(row, column, base, width, cursor, hover)
            assert _drawn(ours) == _drawn(theirs)
            drawn_here[Text if isinstance(cell, Text) else Cell] += not handed

        same()
        assert drawn_here[Text] > 10 and drawn_here[Cell] > 50, f"plain cells must be drawn by our path: {drawn_here}"


class _Rows(App[None]):
    CSS = "DataTable > .datatable--fixed { background: $primary 20%; text-style: italic; }"

    def compose(self) -> ComposeResult:
        table = BalanceTable(cursor_type="row")
        for column in range(5):
            table.add_column(f"c{column}", key=f"c{column}")
        for row in range(6):
            table.add_row(*(Cell(f"{row}.{column}" * (column + 1)) for column in range(5)), key=f"r{row}")
        yield table


async def test_a_row_is_put_together_as_datatable_puts_it_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """MeasuredTable puts a data row's line together itself (the columns measured once, the fixed cells' and
    stripes' styles kept between lines): for any cursor, hover, fixed columns and rows, stripes, padding and
    focus, the line is DataTable's, segment for segment."""
    theirs_put = DataTable._render_line_in_row
    handed: list[int] = []

    def handed_over(*args: Any, **kwargs: Any) -> Any:
        handed.append(1)
        return theirs_put(*args, **kwargs)

    monkeypatch.setattr(DataTable, "_render_line_in_row", handed_over)
    app = _Rows()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(MeasuredTable)
        put_here = [0]

        moves = st.lists(
            st.tuples(
                st.integers(0, 5),
                st.tuples(st.integers(0, 6), st.integers(0, 5)),
                st.tuples(st.integers(-1, 6), st.integers(-1, 5)),
                st.sampled_from([None, "on grey11", "white on blue"]),
            ),
            min_size=1,
            max_size=6,
        )  # the row drawn, the cursor, the hover and the base style: what changes between frames

        @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            cursor_type=st.sampled_from(["row", "cell", "column", "none"]),
            show_cursor=st.booleans(),
            show_hover=st.booleans(),
            fixed=st.tuples(st.integers(0, 6), st.integers(0, 3)),
            zebra=st.booleans(),
            padding=st.integers(0, 2),
            frames=moves,
        )
        def same(
            cursor_type: Any,
            show_cursor: bool,
            show_hover: bool,
            fixed: tuple[int, int],
            zebra: bool,
            padding: int,
            frames: list[tuple[int, tuple[int, int], tuple[int, int], str | None]],
        ) -> None:
            table.cursor_type, table.show_cursor, table._show_hover_cursor = cursor_type, show_cursor, show_hover
            table.fixed_columns, table.fixed_rows = fixed
            table.zebra_stripes, table.cell_padding = zebra, padding
            for row, cursor, hover, background in frames:
                base = table.rich_style + (Style.parse(background) if background else Style())
                key = table._row_locations.get_key(row)
                args = (key, 0, base, Coordinate(*cursor), Coordinate(*hover))
                kept, table._row_render_cache = table._row_render_cache, LRUCache(100)
                theirs = theirs_put(table, *args)  # from nothing, with a cache of its own
                table._row_render_cache = kept  # ours with what earlier frames left: no stale row may be reused
                handed.clear()
                ours = table._render_line_in_row(*args)
                assert [_drawn(part) for part in ours] == [_drawn(part) for part in theirs]
                put_here[0] += not handed

        table.focus()
        await pilot.pause()
        same()
        table.blur()
        await pilot.pause()
        same()
        before = table.rich_style
        app.screen.styles.text_style = "underline"  # an ancestor's style: the widget's own style changes
        await pilot.pause()
        assert table.rich_style != before
        same()
        app.stylesheet.add_source(  # the components' own styles change, and nothing else
            "DataTable > .datatable--fixed { color: red; } DataTable > .datatable--even-row { background: green; }"
        )
        app.refresh_css()
        await pilot.pause()
        assert table.get_component_styles("datatable--fixed").rich_style.color == Style.parse("#ff0000").color
        same()
        assert put_here[0] > 1000, f"data rows must be put together by our path: {put_here}"
