"""A live balance-tui process polling a key, as its ledger records it: apart from `tui.venues.ledger`, so that
a one-shot (`--once`), which polls nothing, never builds the class (a dataclass costs ~0.5 ms to build, issue 24)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Poller:
    """A live balance-tui process polling the key."""

    pid: int
    role: str
    since: float
    url: str | None

    def describe(self) -> str:
        at = time.strftime("%H:%M", time.localtime(self.since))
        about = f"`{self.role}` (PID {self.pid}, since {at}) already polls this key"
        return about + (f": `--attach {self.url}` shares its answers" if self.url else "")
