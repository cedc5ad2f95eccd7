"""Who reads `serve` without following its stream: the viewers that poll `/snapshot` (an attached TUI reads
it every second, `web`'s browser sessions are attached TUIs too), counted for `balance_tui_viewers`.

A viewer of ours says who it is in a header, `X-Balance-TUI-Viewer: KIND ID`: KIND is `terminal` or
`browser` (a session of `balance-tui web`), ID a random word its process chose at start. An address and a
User-Agent would not tell viewers apart: four TUIs attached through `ssh -L` all come from 127.0.0.1 with
the same User-Agent (and a new port at each reconnection). A client that sends no such header (curl, a
script) is told apart by its address and User-Agent, the best there is for it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

VIEWER_HEADER = "X-Balance-TUI-Viewer"
SNAPSHOT, BROWSER, STREAM = "snapshot", "browser", "stream"  # the kinds of viewer counted
SEEN_WITHIN = 10.0  # seconds: a client that polled /snapshot this recently is a viewer now
MAX_CLIENTS = 10_000  # clients remembered at most (the oldest forgotten first): a bound, whatever is sent
MAX_ID = 64  # characters of an ID kept


class Audience:
    """The clients seen polling `/snapshot` in the last `within` seconds, by kind."""

    def __init__(
        self, within: float = SEEN_WITHIN, limit: int = MAX_CLIENTS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.within = within
        self.limit = limit
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()  # (kind, who) -> when, oldest first

    def saw(self, header: str | None, address: str, agent: str | None) -> None:
        """A request for `/snapshot`: from a viewer that said who it is in `header`, else from `address` with
        User-Agent `agent`."""
        key = identify(header, address, agent)
        self._seen[key] = self._clock()
        self._seen.move_to_end(key)
        self._forget()

    def counts(self) -> dict[str, int]:
        """How many clients of each kind polled recently: {"snapshot": n, "browser": m}."""
        self._forget()
        counts = {SNAPSHOT: 0, BROWSER: 0}
        for kind, _ in self._seen:
            counts[kind] += 1
        return counts

    def _forget(self) -> None:
        horizon = self._clock() - self.within
        while self._seen and (len(self._seen) > self.limit or next(iter(self._seen.values())) < horizon):
            self._seen.popitem(last=False)


def identify(header: str | None, address: str, agent: str | None) -> tuple[str, str]:
    """(kind, who): a viewer's own word for itself, or its address and User-Agent."""
    kind, _, who = (header or "").strip().partition(" ")
    who = who.strip()[:MAX_ID]
    if kind in ("terminal", BROWSER) and who:
        return (BROWSER if kind == BROWSER else SNAPSHOT), f"id {who}"
    return SNAPSHOT, f"{address} {(agent or '')[:200]}"
