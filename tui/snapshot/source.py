"""Where snapshots come from: the local engine polling the venues itself, or a `serve` it is attached to.

Both give the same things to whoever draws or prints them, so nothing above this knows which it has.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, Self

from tui.engine.prices import PriceBook
from tui.snapshot.model import Snapshot, VenueSnapshot


class SnapshotSource(Protocol):
    via: str | None  # "127.0.0.1:8765" when attached to a server; None when polling the venues itself

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def once(self) -> Snapshot:
        """Every venue now (and what it is worth), once."""

    async def run(self, on_venue: Callable[[VenueSnapshot], Any], on_prices: Callable[[PriceBook], Any]) -> None:
        """Until cancelled: each venue's snapshots (including the "refreshing" one that starts a refresh) and
        each new price book, as they come."""

    def refresh_now(self) -> None:
        """Refresh every venue (or read the server again) at once."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def details(self, venue: str) -> Any | None:
        """What a drill-down asks for one asset's live detail (`balance`, `summary`, `vault`), or None."""
