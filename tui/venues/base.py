"""The small protocol every venue client fulfils, so the engine can drive any of them alike."""

from __future__ import annotations

import base64
import binascii
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from tui.credentials import Secret
from tui.money import Account, Balance
from tui.venues.errors import ErrorKind, VenueError


class VenueClient(Protocol):
    kind: str

    async def discover(self, *, fresh: bool = False) -> list[Account]:
        """Every account (vault, portfolio) the key can see; `fresh`: asked of the venue now, never taken from
        what another process on the key learnt lately."""

    async def fetch(self, account_id: str) -> list[Balance]:
        """One account's balances."""

    def delay_for(self, calls: int) -> float:
        """Seconds until `calls` requests fit in the venue's rate limit (0 if now)."""

    def note(self) -> str | None:
        """Something the operator should know about this key's traffic (clock skew, clamping), or None."""

    def turn(self, *, urgent: bool) -> AbstractAsyncContextManager[None]:
        """The calls made inside take one place in the key's queue across processes (`urgent`: someone waits
        for them, as for `--once`), where the venue needs one; elsewhere, nothing."""


def require_base64_secret(secret: Secret, where: str) -> None:
    """Both venues' secrets are base64; a mangled one fails here, saying where to copy it from again."""
    try:
        base64.b64decode(secret.reveal(), validate=True)
    except (binascii.Error, ValueError):
        raise VenueError(
            ErrorKind.SIGNATURE,
            f"the API secret is not valid base64: copy it again from {where}",
            retryable=False,
        ) from None
