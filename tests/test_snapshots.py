"""Snapshot tests of the main views, at a fixed seed, size and clock (the same scenes as screenshots/)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot

from tui.scenes import SCENES, SIZE, Clock, Scene, build_app
from tui.sim import Simulator


@pytest.fixture
def frozen_sim() -> Iterator[Simulator]:
    with Simulator(seed=7) as simulator:
        yield simulator


@pytest.mark.parametrize("scene", SCENES, ids=[s.name for s in SCENES])
def test_view(scene: Scene, frozen_sim: Simulator, snap_compare: Callable[..., bool]) -> None:
    clock = Clock()
    app = build_app(frozen_sim, clock)

    async def act(pilot: Pilot[Any]) -> None:
        await scene.act(pilot, frozen_sim, clock)

    assert snap_compare(app, run_before=act, terminal_size=SIZE)
