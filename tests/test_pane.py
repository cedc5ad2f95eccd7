"""The pane's in-place update, driven directly with snapshots: what is written, and what is not."""

from __future__ import annotations

import gc
import html
import re
import sys
import textwrap
import time
import tracemalloc
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from rich.protocol import rich_cast
from rich.text import Text
from textual.app import App, ComposeResult

from tests.scenes import until
from tui.money import Balance
from tui.snapshot.model import AccountSnapshot, VenueSnapshot
from tui.ui.panes import VenuePane, View
from tui.ui.rows import Baseline, build_rows
from tui.venues.errors import ErrorKind, VenueError


def _snapshot(*amounts: str) -> VenueSnapshot:
    balances = tuple(
        Balance(f"A{i}", {"balance": Decimal(a), "hold_trade": Decimal("0"), "available": Decimal(a)})
        for i, a in enumerate(amounts)
    )
    return VenueSnapshot("bench", "kraken-custody", (AccountSnapshot("V1", "vault", balances, 0.0),), fetched_at=0.0)


class _Host(App[None]):
    def compose(self) -> ComposeResult:
        yield VenuePane(0, "bench", "kraken-custody", Baseline(), View())


def _balance_cells(pane: VenuePane) -> list[str]:
    return [str(pane.table.get_cell(key, "balance")).strip() for key in pane.rows]


async def test_trailing_zeros_the_venue_adds_are_shown() -> None:
    """1.0 and 1.00 are equal numbers but not the same digits: the screen follows the venue's digits."""
    async with _Host().run_test() as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot("1.0", "20"))
        await pilot.pause()
        pane.show(_snapshot("1.00", "20"))
        await pilot.pause()
        assert _balance_cells(pane) == ["1.00", "20"]


async def test_unchanged_rows_are_not_rewritten_and_changed_ones_are() -> None:
    async with _Host().run_test() as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot("1.5", "2.5", "3.5"))
        await pilot.pause()
        before = dict(pane.rows)
        pane.show(_snapshot("1.5", "2.6", "3.5"))
        await pilot.pause()
        assert pane.rows["V1:A0"] is before["V1:A0"] and pane.rows["V1:A2"] is before["V1:A2"]
        assert pane.rows["V1:A1"] is not before["V1:A1"]
        assert _balance_cells(pane) == ["1.5", "2.6", "3.5"]
        assert str(pane.table.get_cell("V1:A1", "change")).strip() == "+0.1"


async def test_a_wider_number_realigns_the_whole_column() -> None:
    async with _Host().run_test() as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot("1.5", "2.5"))
        await pilot.pause()
        pane.show(_snapshot("1.5", "12345.125"))
        await pilot.pause()
        texts = [str(pane.table.get_cell(key, "balance")) for key in pane.rows]
        assert len({len(t) for t in texts}) == 1
        assert len({t.index(".") for t in texts}) == 1, texts  # decimal points in one column


def screen_lines(app: App[Any]) -> list[str]:
    """What the terminal shows, line by line: the compositor's frame, so a row left undrawn shows stale."""
    svg = app.export_screenshot()
    lines: dict[int, list[str]] = defaultdict(list)
    for line, text in re.findall(r'clip-path="url\(#terminal-(?:[0-9a-z]+-)?line-(\d+)\)">([^<]*)</text>', svg):
        lines[int(line)].append(html.unescape(text).replace("\xa0", " "))
    return ["".join(lines[i]) for i in sorted(lines)]


async def test_words_from_a_venue_in_a_cell_show_as_they_are_not_as_markup() -> None:
    """A cell is not a `str`, which DataTable would read as markup: "[red]x" shows its brackets, styled or not."""
    vault, asset = "[red]Ops[/red] [@click=app.quit]q[/]", "[bold]XBT[/]"
    balance = Balance(asset, {"balance": Decimal("1.5"), "hold_trade": Decimal("0"), "available": Decimal("1.5")})
    snap = VenueSnapshot("bench", "kraken-custody", (AccountSnapshot("V1", vault, (balance,), 0.0),), fetched_at=0.0)
    async with _Host().run_test(size=(200, 20)) as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(snap)
        pane.flag({(f"V1:{asset}", "balance")})  # a styled cell too
        await pilot.pause()
        lines = screen_lines(pilot.app)
        assert any(vault in line and asset in line for line in lines), lines


def _cell_bytes(pane: VenuePane, snapshot: VenueSnapshot) -> float:
    """What showing `snapshot` leaves allocated by the pane and by rich's `Text`, per cell shown."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        pane.show(snapshot)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    mine = ("tui/ui/panes.py", "rich/text.py")
    kept = sum(s.size_diff for s in after.compare_to(before, "filename") if s.traceback[0].filename.endswith(mine))
    return kept / (len(pane.rows) * len(pane.columns))


async def test_a_pane_holds_each_cell_as_one_small_object() -> None:
    """At 2,000 rows the cells are most of the TUI's memory. A cell is its text (made by the money module) and one
    object of two or three references: 48-56 bytes. A rich `Text` per cell (over 200 bytes with its lists of parts
    and spans) or a second copy of every cell's text in the pane (a dict entry and a key: over 100) does not fit."""
    amounts = [f"{i}.{i % 7}5" for i in range(1000)]
    async with _Host().run_test() as pilot:
        pane = pilot.app.query_one(VenuePane)
        await pilot.pause()
        assert _cell_bytes(pane, _snapshot(*amounts)) <= 80
        await pilot.pause()
        assert [str(pane.table.get_cell(f"V1:A{i}", "balance")).strip() for i in (0, 1, 999)] == [
            "0.05",
            "1.15",
            "999.55",
        ]  # the cells hold the venue's digits


def test_a_row_holds_its_amounts_in_one_tuple_and_no_dict() -> None:
    """A row is its key, names and one tuple of amounts (their digits are made when asked: the cells keep them).
    What building 1,000 rows keeps, per row, is no more than those pieces: a dict of values or of texts per row
    (184 bytes each for five amounts) does not fit."""
    balances = tuple(
        Balance(f"A{i}", {"balance": Decimal(f"{i}.5"), "hold_trade": Decimal("0"), "available": Decimal(f"{i}.25")})
        for i in range(1000)
    )
    snap = VenueSnapshot("bench", "kraken-custody", (AccountSnapshot("V1", "vault", balances, 0.0),), fetched_at=0.0)
    baseline = Baseline()
    build_rows(snap, baseline)  # the first sight of each amount (the change's baseline) is kept by the baseline
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        rows = build_rows(snap, baseline)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    kept = sum(s.size_diff for s in after.compare_to(before, "filename") if s.traceback[0].filename.endswith("rows.py"))
    amounts = (Decimal(1),) * 5  # balance, hold, available, value, change
    pieces = 96 + sys.getsizeof(amounts) + sys.getsizeof(rows[0].key) + 8  # the row (8 references), its
    # amounts, its key, its place in the list
    assert kept / len(rows) <= pieces + 16, (kept / len(rows), pieces)
    assert [rows[i].text(c) for i in (0, 1) for c in ("balance", "available")] == ["0.5", "0.25", "1.5", "1.25"]


async def test_the_drawn_table_shows_every_update_and_no_stale_cell() -> None:
    """Cells are written without flushing the whole table's render cache: what is drawn must follow."""
    async with _Host().run_test(size=(120, 20)) as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot("1.5", "2.5", "3.5"))
        await pilot.pause()
        assert any("2.5" in line for line in screen_lines(pane.app))
        for value in ("2.7", "2.9", "2.5"):
            pane.show(_snapshot("1.5", value, "3.5"))
            await pilot.pause()
            drawn = screen_lines(pane.app)
            row = next(line for line in drawn if " A1 " in line)
            assert f" {value} " in row, drawn
        pane._flashes = {k: (0.0, d) for k, (_, d) in pane._flashes.items()}  # every flash over now
        pane.expire_flashes()
        await pilot.pause()
        row = next(line for line in screen_lines(pane.app) if " A1 " in line)
        assert " 2.5 " in row and "+0" not in row


async def test_rows_changed_together_in_a_scrolled_table_are_each_redrawn() -> None:
    """A refresh that changes several rows asks for one repaint of all their lines, where they are on screen
    now: the table scrolled, the lines drawn are the rows' lines less the scroll, every one of them."""
    amounts = [f"{i}.5" for i in range(40)]
    async with _Host().run_test(size=(120, 14)) as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot(*amounts))
        await pilot.pause()
        pane.table.scroll_to(y=20, animate=False)
        await until(pilot, lambda: pane.table.scroll_y == 20 and any(" A28 " in s for s in screen_lines(pane.app)))
        for last in ("7", "9"):  # the first moves widen the change column (a full repaint); the second do not
            changed = list(amounts)
            for i in (28, 30, 34):  # the rows sort by name: these are on screen, below the top
                changed[i] = f"{i}.{last}"
            pane.show(_snapshot(*changed))
            await until(pilot, lambda: str(pane.table.get_cell("V1:A34", "balance")).strip() == changed[34])  # noqa: B023
            await pilot.pause()
        drawn = screen_lines(pane.app)
        for i in (28, 30, 34):
            row = next((line for line in drawn if f" A{i} " in line), None)
            assert row is not None and f" {i}.9 " in row, (i, drawn)


async def test_a_number_wider_than_its_column_widens_the_column() -> None:
    async with _Host().run_test(size=(160, 20)) as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot("1.5", "2.5"))
        await pilot.pause()
        pane.show(_snapshot("1.5", "123456789012345678.125"))
        await pilot.pause()
        assert any("123456789012345678.125" in line for line in screen_lines(pane.app)), screen_lines(pane.app)


async def test_a_changed_cell_flashes_its_direction_for_a_few_seconds_then_goes_plain() -> None:
    def style(pane: VenuePane, row: str) -> str:
        cell = rich_cast(pane.table.get_cell(row, "balance"))  # as the table draws it
        return " ".join(str(span.style) for span in cell.spans)

    async with _Host().run_test() as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot("1.5", "2.5", "3.5"))
        await pilot.pause()
        pane.show(_snapshot("1.6", "2.4", "3.5"))
        await pilot.pause()
        assert "reverse green" in style(pane, "V1:A0")
        assert "reverse red" in style(pane, "V1:A1")
        assert style(pane, "V1:A2") == ""
        pane.expire_flashes()  # not yet: a flash lasts FLASH_SECONDS
        assert "reverse green" in style(pane, "V1:A0")
        pane._flashes = {k: (0.0, d) for k, (_, d) in pane._flashes.items()}
        pane.expire_flashes()
        assert "reverse" not in style(pane, "V1:A0") and "reverse" not in style(pane, "V1:A1")
        assert str(pane.table.get_cell("V1:A0", "change")).strip() == "+0.1"  # the change since start stays


async def test_rows_drawn_before_the_table_measured_them_are_drawn_again_at_full_width() -> None:
    """DataTable measures new rows when it is next idle; a frame drawn before that (a busy moment) cached
    the cells cut to the old column width, and nothing redrew them: a total showed as "3212"."""
    async with _Host().run_test(size=(120, 20)) as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot("1.5"))
        await pilot.pause()
        pane.show(_snapshot("1.5", "12345678.125"))
        for y in range(4):
            pane.table.render_line(y)  # a frame before the idle pass that measures the new row
        await pilot.pause()
        await pilot.pause()
        drawn = screen_lines(pane.app)
        assert any("12345678.125" in line for line in drawn), drawn
        assert any("       1.5" in line for line in drawn), drawn


def _header(*pieces: tuple[str, str | None]) -> tuple[Text, dict[str, tuple[int, int]]]:
    """A header from (words, part) pieces, and where each part is (worked out here, not by the pane)."""
    text, parts, at = Text(), {}, 0
    for words, part in pieces:
        text.append(words, style="red" if "⚑" in words else "")
        if part is not None:
            parts[part] = (at, at + len(words))
        at += len(words)
    return text, parts


def test_a_header_too_long_for_two_lines_leaves_out_what_matters_least() -> None:
    """At 80 columns the INTX header with an alert needed three lines and its second was cut: "⚑ 1 alert (a
    lists". The round trip goes first, then the next refresh, then the key's hint; never the state or the flag."""
    from tui.ui.panes import fit_header

    line_one = " Coinbase INTX   3 portfolios  ● live  updated 2 s ago"
    worth, flag = "worth $32,871,194.91 (loans $395,124.58)", "⚑ 1 alert (a lists them)"
    full, parts = _header(
        (line_one, None),
        ("  next in 3 s", "next"),
        ("  rtt 0 ms", "rtt"),
        (f"  {worth}  ⚑ 1 alert", None),
        (" (a lists them)", "hint"),
    )

    def fit(width: int) -> str:
        return fit_header(full, width, tall=False, parts=parts).plain

    assert fit(200) == full.plain  # room for all of it: nothing left out
    assert fit(100) == full.plain.replace("rtt 0 ms  ", "rtt 0 ms\n", 1)
    # widths worked out by hand from the parts' lengths: 54 up to "ago", 13 "  next in 3 s", 10 "  rtt 0 ms", 40 worth
    assert fit(76) == f"{line_one}  next in 3 s\nrtt 0 ms  {worth}  {flag}"
    assert fit(70) == f"{line_one}  next in 3 s\n{worth}  {flag}"
    assert fit(66) == f"{line_one}\n{worth}  {flag}"
    assert fit(62) == f"{line_one}\n{worth}  ⚑ 1 alert"
    assert fit(52) == f"{line_one}  {worth}  ⚑ 1 alert"  # all it can leave out
    # no break between parts gives two lines: the fewest left out that wrap word by word into two, here none
    failing, marks = _header((" Kraken   ● failing: " + "x" * 30 + " " + "y" * 30, None), ("  rtt 9 ms", "rtt"))
    assert fit_header(failing, 60, tall=False, parts=marks).plain == failing.plain
    assert len(textwrap.wrap(failing.plain, 60)) == 2
    short, marks = _header(("● live", None), ("  rtt 0 ms", "rtt"), ("  ⚑ 1 alert", None))
    styled = fit_header(short, 12, False, parts=marks)
    assert styled.plain == "● live\n⚑ 1 alert" and [(s.start, s.end, str(s.style)) for s in styled.spans] == [
        (7, 16, "red")
    ]


def test_a_header_leaves_out_its_own_parts_never_words_of_an_error() -> None:
    """An error message may say "  rtt " too: the real round trip is what goes."""
    from tui.ui.panes import fit_header, header_text

    error = VenueError(ErrorKind.SERVER, "upstream said  rtt 40 ms  next in 3 s", retryable=True)
    snap = replace(_snapshot("1"), error=error, failures=1, round_trip=0.04, next_refresh_at=5.0)
    text, parts = header_text("Kraken", snap, paused=False, shown=1, now=2.0)
    assert text.plain.count("rtt 40 ms") == 2 and text.plain.count("next in 3 s") == 2  # the error's, and the real
    fitted = fit_header(text, 60, tall=False, parts=parts).plain
    assert "upstream said  rtt 40 ms  next in 3 s" in fitted.replace("\n", "  ")
    assert fitted.count("rtt 40 ms") == 1 and fitted.endswith("updated 2 s ago  next in 3 s")  # only rtt went


def test_a_tall_header_stays_tall_near_its_width_and_still_breaks_between_parts() -> None:
    from rich.text import Text

    from tui.ui.panes import fold_header

    near = Text("X" * 40 + "  " + "Y" * 43)  # 85 cells at width 90: one line, but only 5 to spare
    assert "\n" not in fold_header(near, 90, tall=False).plain
    assert fold_header(near, 90, tall=True).plain == "X" * 40 + "\n" + "Y" * 43  # no jump back and forth
    assert "\n" not in fold_header(Text("Z" * 70), 90, tall=True).plain  # 20 to spare: back to one line
    # 156 cells: no break leaves a tail within 78, so it breaks where one fits within 90, between two parts
    long = Text("  ".join(["A" * 40, "B" * 40, "C" * 40, "D" * 30]))
    assert fold_header(long, 90, tall=True).plain == "A" * 40 + "  " + "B" * 40 + "\n" + "C" * 40 + "  " + "D" * 30


async def test_a_hidden_panes_header_never_asks_for_a_layout() -> None:
    """A hidden pane (the totals on a short terminal) has no width: its header ticks every second, and
    a layout of the whole screen each time would be most of an idle monitor's CPU."""
    async with _Host().run_test() as pilot:
        pane = pilot.app.query_one(VenuePane)
        pane.show(_snapshot("1"))
        await pilot.pause()
        pane.display = False
        await pilot.pause()
        header = pane.query_one(".pane-header")
        assert header.content_region.width == 0
        layouts: list[bool] = []
        original = header.refresh

        def refresh(*regions: object, layout: bool = False, **options: object) -> object:
            layouts.append(layout)
            return original(*regions, layout=layout, **options)  # type: ignore[arg-type]

        header.refresh = refresh  # type: ignore[method-assign]
        for amount in ("2", "3"):
            pane.show(_snapshot(amount))
            pane.refresh_header()
        assert layouts and not any(layouts)


async def test_a_table_open_for_hours_keeps_only_a_few_screenfuls_of_rendered_rows() -> None:
    """DataTable keys the cells it renders by the sort's generation: every re-sort strands a screenful. What
    it keeps must stay in proportion to the screen, not to how long it has been open."""

    class ByAmount(App[None]):
        def compose(self) -> ComposeResult:
            yield VenuePane(0, "bench", "kraken-custody", Baseline(), View(sort="amount"))

    async with ByAmount().run_test(size=(120, 40)) as pilot:
        pane = pilot.app.query_one(VenuePane)
        table = pane.table
        for step in range(50):  # the order changes at every refresh: the biggest balance moves down
            pane.show(_snapshot(*(str((i + step) % 30 + 1) for i in range(30))))
            await pilot.pause()
        cells = table.size.height * len(pane.columns)  # a screenful
        assert len(table._cell_render_cache) <= 12 * cells, (len(table._cell_render_cache), cells)
        await pilot.resize_terminal(120, 12)  # a smaller terminal: a smaller bound, and nothing kept for nothing
        await pilot.pause()
        assert len(table._cell_render_cache) <= max(1000, 12 * table.size.height * len(pane.columns))
        top = next(line for line in screen_lines(pane.app) if re.search(r" A\d+ ", line))
        assert " 30 " in top  # and the table still draws: the biggest balance first


def test_a_calm_header_does_not_tick_and_a_troubled_one_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live or paused, a header says when the venue answered (a time of day): the same text a minute later, so
    no frame is drawn for it. Stale, failing or refreshing, the data's age is what matters, and it ticks."""
    from tui.ui.panes import header_text

    monkeypatch.delenv("TZ", raising=False)
    live = replace(_snapshot("1"), fetched_at=1795276800.0, period=5.0, next_refresh_at=1795276805.0)
    for paused in (False, True):
        first, _ = header_text("Kraken", live, paused=paused, shown=1, now=1795276801.0)
        later, _ = header_text("Kraken", live, paused=paused, shown=1, now=1795276811.0)
        assert first.plain == later.plain and "at 16:00:00 UTC" in first.plain, first.plain
    assert "next in" not in first.plain and " ago" not in first.plain
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # the operator's own time, when TZ says which
    time.tzset()
    try:
        assert "at 01:00:00" in header_text("Kraken", live, paused=False, shown=1, now=1795276801.0)[0].plain
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    failing = replace(live, error=VenueError(ErrorKind.SERVER, "down", retryable=True), failures=1)
    stale = replace(live, period=1.0)
    for troubled in (failing, stale, replace(live, refreshing=True, period=1.0)):
        first, _ = header_text("Kraken", troubled, paused=False, shown=1, now=1795276830.0)
        later, _ = header_text("Kraken", troubled, paused=False, shown=1, now=1795276840.0)
        assert first.plain != later.plain and "updated 30 s ago" in first.plain, first.plain
