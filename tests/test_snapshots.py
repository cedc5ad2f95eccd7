"""Snapshot tests of the main views, at a fixed seed, size and clock (the same scenes as screenshots/)."""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.scenes import SCENES, Clock, Scene, build_app
from tui.sim import Simulator
from tui.ui.app import BalanceApp

STORED = Path(__file__).parent / "__snapshots__" / "test_snapshots"
_TEXT = re.compile(r'<text class="([^"]*)"[^>]*clip-path="url\(#terminal-(?:[0-9a-z]+-)?line-(\d+)\)">([^<]*)</text>')


@pytest.fixture
def frozen_sim() -> Iterator[Simulator]:
    with Simulator(seed=7) as simulator:
        yield simulator


@pytest.mark.parametrize("scene", SCENES, ids=[s.name for s in SCENES])
def test_view(scene: Scene, frozen_sim: Simulator, snap_compare: Callable[..., bool]) -> None:
    clock = Clock()
    app = build_app(frozen_sim, clock)
    seen: dict[str, str] = {}

    async def act(pilot: Pilot[Any]) -> None:
        await scene.act(pilot, frozen_sim, clock)
        seen["svg"] = pilot.app.export_screenshot()
        seen["state"] = _state(pilot.app)

    matched = snap_compare(app, run_before=act, terminal_size=scene.size)
    assert matched, _explain(STORED / f"test_view[{scene.name}].svg", seen)


def _state(app: Any) -> str:
    if not isinstance(app, BalanceApp):
        return ""
    parts = []
    for pane in app.panes:
        snap = pane.snapshot
        parts.append(
            f"{pane.venue_name}: cursor {pane.table.cursor_row}, rows {len(pane.rows)}, "
            f"refreshing {snap.refreshing if snap else None}, failures {snap.failures if snap else None}"
        )
    return "; ".join(parts)


def _lines(svg: str) -> list[str]:
    """The screen's text and style classes, line by line, from a Textual SVG."""
    lines: dict[int, list[str]] = defaultdict(list)
    for style, line, text in _TEXT.findall(svg):
        lines[int(line)].append(f"{html.unescape(text)}⟨{re.sub(r'terminal-[0-9]+-', 'terminal-', style)}⟩")
    return ["".join(lines[i]) for i in sorted(lines)]


def _explain(stored: Path, seen: dict[str, str]) -> str:
    """What differs, in the CI log itself: the HTML report is left behind on a machine nobody can see."""
    if not stored.exists() or "svg" not in seen:
        return "no stored snapshot or no frame to compare"
    before, after = _lines(stored.read_text()), _lines(seen["svg"])
    pairs = enumerate(zip(before, after, strict=False))
    diff = [f"line {i}:\n  stored {b}\n  actual {a}" for i, (b, a) in pairs if b != a]
    if len(before) != len(after):
        diff.append(f"{len(before)} lines stored, {len(after)} now")
    return (
        "frame differs (text⟨style⟩ per line; styles are renumbered per frame)\n"
        + "\n".join(diff[:12])
        + (f"\nstate at the frame: {seen.get('state', '')}")
    )
