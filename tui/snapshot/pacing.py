"""When a polling loop goes: on its schedule, at once when woken, not at all while paused, and once more while
paused when asked (`r` on a paused screen refreshes once and stays paused). Both snapshot sources keep their
loops with it: the engine's refreshers, and a viewer reading a server."""

from __future__ import annotations

import asyncio
import contextlib


class Pacing:
    def __init__(self) -> None:
        self.resumed = asyncio.Event()
        self.resumed.set()
        self.wake = asyncio.Event()
        self._once = False

    @property
    def paused(self) -> bool:
        return not self.resumed.is_set() or self._once

    async def turn(self) -> None:
        """Until the loop may go round: now, or when resumed (or asked for one while paused)."""
        await self.resumed.wait()
        self.wake.clear()

    def went(self) -> None:
        """The loop went round: if that was the one asked for while paused, it is paused again."""
        if self._once:
            self._once = False
            self.resumed.clear()

    async def rest(self, seconds: float) -> None:
        """Until the next turn is due, or the loop is woken."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=seconds)

    def now(self) -> bool:
        """Go round at once; while paused, once (True: it was paused)."""
        paused = not self.resumed.is_set()
        if paused:
            self._once = True
            self.resumed.set()
        self.wake.set()
        return paused

    def pause(self) -> None:
        self._once = False
        self.resumed.clear()

    def resume(self) -> None:
        self._once = False
        self.resumed.set()
        self.wake.set()
