"""The server's viewers of the event stream: one bounded queue each, filled without ever waiting.

The poller hands every batch of lines to `Fanout.send`, which only appends a reference to the same bytes to
each queue: however many viewers there are, and however slowly they read, the poller and the other
viewers never wait. A viewer whose queue is full is dropped (its queue freed at once) and told why, if it
can still be told.

A viewer is sent a heartbeat line whenever nothing else went out to it for `HEARTBEAT` seconds (proxies cut
streams that stay silent, and a viewer learns its connection is alive), and one right after the whole state
it starts with: the state is complete, what follows is live (a viewer that reconnected settles what went
away meanwhile there).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from tui.sinks.watch import encode
from tui.snapshot.model import iso

QUEUE_LINES = 10_000  # lines a viewer may fall behind before it is dropped
HEARTBEAT = 15.0  # seconds of silence to a viewer before it is sent a heartbeat line


def heartbeat() -> bytes:
    """`{"event": "heartbeat", "at": ISO}`: the stream's own line, nothing happened."""
    return encode({"event": "heartbeat", "at": iso(time.time())}).encode()


class Viewer:
    """One reader of the stream: its queue of unsent lines and why it ended (None while it lasts)."""

    def __init__(self, address: str, limit: int, state: bytes) -> None:
        self.address = address
        self.limit = limit
        self._chunks: deque[bytes] = deque([state] if state else [])  # the state does not count: it is owed
        self._lines = 0
        self._wake = asyncio.Event()
        self.ended: str | None = None  # "closing" when the server stops, else why it was dropped
        self.dropped = False
        self.on_end: Callable[[], None] | None = None  # how the connection learns of it while a write waits

    @property
    def queued(self) -> int:
        return self._lines

    def offer(self, chunk: bytes, lines: int) -> bool:
        """Queue a batch; False (and the viewer dropped) when it would pass the bound. A viewer that has read
        everything takes any batch, however large: it is behind on nothing."""
        if self.ended is not None:
            return True
        if self._lines and self._lines + lines > self.limit:
            self._end(f"fell {self._lines + lines} lines behind (at most {self.limit}): read faster", dropped=True)
            return False
        self._chunks.append(chunk)
        self._lines += lines
        self._wake.set()
        return True

    def close(self) -> None:
        self._end("closing", dropped=False)

    def _end(self, reason: str, *, dropped: bool) -> None:
        self.ended, self.dropped = reason, dropped
        self._chunks.clear()
        self._lines = 0
        self._wake.set()
        if self.on_end is not None:
            self.on_end()

    async def next(self, quiet: float | None = None) -> bytes | None:
        """Everything queued, in one piece; a heartbeat line if nothing came for `quiet` seconds; None once the
        viewer has ended."""
        while not self._chunks:
            if self.ended is not None:
                return None
            self._wake.clear()
            try:
                async with asyncio.timeout(quiet):
                    await self._wake.wait()
            except TimeoutError:
                return heartbeat()
        if self.ended is not None:
            return None
        chunk = b"".join(self._chunks)
        self._chunks.clear()
        self._lines = 0
        return chunk

    def last_line(self) -> bytes:
        """What a dropped viewer is told, if it can still be told."""
        return encode({"at": iso(time.time()), "event": "dropped", "reason": self.ended}).encode()


class Fanout:
    def __init__(self, limit: int = QUEUE_LINES, say: Callable[[str], None] = print) -> None:
        self.limit = limit
        self.viewers: set[Viewer] = set()
        self.dropped = 0  # viewers dropped since start
        self._say = say

    def join(self, address: str, state: bytes) -> Viewer:
        """A new viewer, sent the whole state first, then a heartbeat that says the state is complete."""
        viewer = Viewer(address, self.limit, state + heartbeat())
        self.viewers.add(viewer)
        return viewer

    def leave(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)

    def send(self, lines: list[bytes]) -> None:
        """One batch to every viewer: the same bytes, referenced, never copied per viewer."""
        if not lines or not self.viewers:
            return
        chunk = b"".join(lines)
        for viewer in list(self.viewers):
            if not viewer.offer(chunk, len(lines)):
                self.viewers.discard(viewer)
                self.dropped += 1
                self._say(f"viewer {viewer.address} dropped: it {viewer.ended}")

    def close(self) -> None:
        for viewer in list(self.viewers):
            viewer.close()
        self.viewers.clear()
