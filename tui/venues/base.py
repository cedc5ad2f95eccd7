"""The small protocol every venue client fulfils, so the engine can drive any of them alike."""

from __future__ import annotations

from typing import Protocol

from ..money import Account, Balance


class VenueClient(Protocol):
    kind: str

    async def discover(self) -> list[Account]:
        """Every account (vault, portfolio) the key can see."""

    async def fetch(self, account_id: str) -> list[Balance]:
        """One account's balances."""

    def delay_for(self, calls: int) -> float:
        """Seconds until `calls` requests fit in the venue's rate limit (0 if now)."""

    def note(self) -> str | None:
        """Something the operator should know about this key's traffic (clock skew, clamping), or None."""
