"""Deterministic frames of the TUI: a fixed seed, a frozen simulator and frozen clocks.

One definition serves the snapshot tests and `scripts/screenshots` (the README's images), so what is
tested is what is shown. Only demo keys and simulated money ever appear in these frames.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual.notifications import SeverityLevel
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable

from tui.config import parse
from tui.sim import Simulator
from tui.ui.app import BalanceApp
from tui.ui.demo import DEMO_RULES
from tui.ui.screens import AlertsScreen, HelpScreen, IntxDetailScreen, KrakenDetailScreen

SEED = 7
SIZE = (120, 40)
EPOCH = 1795276800.0  # 2026-11-21T16:00:00Z


class Clock:
    """A wall clock that only moves when told to."""

    def __init__(self, now: float = EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


RULES = DEMO_RULES  # the scenes show the demo as a newcomer sees it


TOAST_SECONDS = 24 * 3600.0


class SceneApp(BalanceApp):
    """The app, with notices (toasts) that stay until the frame is taken.

    A toast goes after its timeout (5 s by default) of real time: a scene that takes longer on a slow machine
    would otherwise be drawn with or without it.
    """

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        super().notify(message, title=title, severity=severity, timeout=TOAST_SECONDS, markup=markup)


def build_app(sim: Simulator, clock: Clock) -> BalanceApp:
    return SceneApp(
        parse(sim.config_text(5) + RULES),
        demo=True,
        clock=clock,
        monotonic=lambda: 0.0,
        jitter=random.Random(SEED),
        history=":memory:",
    )


async def until(
    pilot: Pilot[int], condition: Callable[[], object], timeout: float = 30.0, why: Callable[[], object] | None = None
) -> None:
    """Poll until `condition` holds; `timeout` is a safety net only, never a measure of speed. `why` says,
    when the net is reached, what the scene looked like instead."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            seen = f": {why()}" if why is not None else ""
            raise TimeoutError(f"the scene did not reach its state in time{seen}")
        await pilot.pause(0.05)


def _width(cell: object) -> int:
    text = cell if isinstance(cell, Text) else Text.from_markup(str(cell))
    return max((cell_len(line) for line in text.plain.split("\n")), default=0)


def tables_fit(screen: Screen[object]) -> bool:
    """Every column of every table on the screen is as wide as its widest cell.

    A table widens its columns for new values only when it is next idle: on a loaded machine a frame
    taken a moment after the values arrive shows them cut to the old width."""
    for table in screen.query(DataTable):
        for key, column in table.columns.items():
            if column.content_width < max((_width(cell) for cell in table.get_column(key)), default=0):
                return False
    return True


async def drawn(pilot: Pilot[int], screen: type[Screen[object]] = Screen) -> None:
    """Wait until `screen` is on top with every table as wide as its values, then until the app is idle."""
    await until(
        pilot,
        lambda: isinstance(pilot.app.screen, screen) and tables_fit(pilot.app.screen),
        why=lambda: f"screen {type(pilot.app.screen).__name__}, tables fit {tables_fit(pilot.app.screen)}",
    )
    await pilot.pause()


def pricing(app: BalanceApp) -> Callable[[], str]:
    """What the price source has done so far: for a wait on values that did not come."""

    def state() -> str:
        prices = getattr(app.source, "prices", None)
        if prices is None:
            return "no price source"
        book, held = prices.book, app.source.held()  # type: ignore[attr-defined]
        return f"prices fetched_at={book.fetched_at} error={book.error} failures={prices.failures} held={held}"

    return state


async def settled(pilot: Pilot[int]) -> BalanceApp:
    """Both panes filled by exactly one refresh each and valued, then nothing moves while the frame is taken.

    Each refresher is paused as soon as its first refresh is under way, so a slow machine cannot slip a
    second refresh (and the rate limiter's state after it) into the frame.
    """
    app = pilot.app
    assert isinstance(app, BalanceApp)
    refreshers = app.source.refreshers
    await until(pilot, lambda: all(r.refreshing or r.snapshot().fetched_at is not None for r in refreshers))
    for refresher in refreshers:
        refresher.pause()
    await until(pilot, lambda: all(p.rows and p.snapshot and not p.snapshot.refreshing for p in app.panes))
    await until(pilot, lambda: all(p.worth is not None and p.worth.priced for p in app.all_panes), why=pricing(app))
    await drawn(pilot)
    return app


async def redraw(pilot: Pilot[int], app: BalanceApp) -> None:
    """Draw every header now (after moving the clock) instead of racing the app's one-second timer."""
    for pane in app.all_panes:
        pane.refresh_header()
    await drawn(pilot)


async def overview(pilot: Pilot[int], sim: Simulator, clock: Clock) -> None:
    app = await settled(pilot)
    clock.advance(2)
    await pilot.press("j", "j")
    await redraw(pilot, app)


async def intx_detail(pilot: Pilot[int], sim: Simulator, clock: Clock) -> None:
    await settled(pilot)
    await pilot.press("tab", "j", "j", "j", "enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, IntxDetailScreen) and pilot.app.screen.fetched_at)
    await drawn(pilot)


async def kraken_detail(pilot: Pilot[int], sim: Simulator, clock: Clock) -> None:
    await settled(pilot)
    await pilot.press("j", "enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, KrakenDetailScreen) and "%" in pilot.app.screen.share)
    await drawn(pilot)


async def failing(pilot: Pilot[int], sim: Simulator, clock: Clock) -> None:
    app = await settled(pilot)
    clock.advance(42)
    sim.faults.set("http-5xx", venue="kraken")
    for index in range(len(app.panes)):
        await _one_refresh(pilot, app, index)
    await redraw(pilot, app)


async def _one_refresh(pilot: Pilot[int], app: BalanceApp, index: int) -> None:
    """Let one paused venue refresh exactly once, and wait until its pane shows the result."""
    refresher, pane = app.source.refreshers[index], app.panes[index]
    before = pane.snapshot

    def done() -> bool:
        return pane.snapshot is not before and pane.snapshot is not None and not pane.snapshot.refreshing

    refresher.resume()
    refresher.refresh_now()
    await until(pilot, done)
    refresher.pause()
    await drawn(pilot)


async def totals(pilot: Pilot[int], sim: Simulator, clock: Clock) -> None:
    app = await settled(pilot)
    assert app.totals_pane is not None
    app.totals_pane.table.focus()
    await pilot.press("z")
    clock.advance(2)
    await redraw(pilot, app)


async def alerts(pilot: Pilot[int], sim: Simulator, clock: Clock) -> None:
    """Three alerts fire on the first refresh; 95 s later a deposit clears one of them."""
    app = await settled(pilot)
    clock.advance(95)
    last = list(sim.market.portfolios)[-1]
    sim.market.set_intx(last, "USDC", max_withdraw_amount="2500000")
    await _one_refresh(pilot, app, 1)
    await pilot.press("a")
    await drawn(pilot, AlertsScreen)


async def help_screen(pilot: Pilot[int], sim: Simulator, clock: Clock) -> None:
    await settled(pilot)
    await pilot.press("question_mark")
    await drawn(pilot, HelpScreen)


@dataclass(frozen=True)
class Scene:
    name: str
    act: Callable[[Pilot[int], Simulator, Clock], Awaitable[None]]
    size: tuple[int, int] = SIZE


SCENES = (
    Scene("overview", overview),
    Scene("intx-detail", intx_detail),
    Scene("kraken-detail", kraken_detail),
    Scene("failing-venue", failing),
    Scene("totals", totals),
    Scene("alerts", alerts),
    Scene("help", help_screen),
    Scene("small-terminal", overview, size=(80, 24)),
    Scene("small-intx-detail", intx_detail, size=(80, 24)),
)


async def save(scene: Scene, directory: Path) -> Path:
    """Run one scene against a fresh simulator and write its SVG."""
    with Simulator(seed=SEED) as sim:
        clock = Clock()
        app = build_app(sim, clock)
        async with app.run_test(size=scene.size) as pilot:
            await scene.act(pilot, sim, clock)
            path = app.save_screenshot(f"{scene.name}.svg", str(directory))
    return Path(path)
