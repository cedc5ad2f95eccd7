"""The one error type every venue call can fail with."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from enum import StrEnum
from typing import TypeVar

from tui.credentials import redact

T = TypeVar("T")


class ErrorKind(StrEnum):
    AUTH = "auth"  # the key or passphrase is not accepted
    SIGNATURE = "signature"  # the signature did not verify: the secret is wrong
    NONCE = "nonce"  # Kraken nonce out of order: another program uses this key
    CLOCK = "clock"  # INTX timestamp outside the window: the clock is off
    PERMISSION = "permission"  # the key lacks a permission
    RATE_LIMIT = "rate-limit"
    LOCKOUT = "lockout"  # Kraken temporary lockout: stay away for its stated time
    UNREACHABLE = "unreachable"  # DNS, refused, reset, TLS
    TIMEOUT = "timeout"
    SERVER = "server"  # 5xx
    BAD_RESPONSE = "bad-response"  # not JSON, or not the shape the venue documents
    NOT_FOUND = "not-found"
    REQUEST = "request"  # the venue refused our arguments (bad vault id, unknown asset)
    VENUE = "venue"  # any other error the venue reported


_RETRYABLE = {
    ErrorKind.NONCE,
    ErrorKind.CLOCK,
    ErrorKind.RATE_LIMIT,
    ErrorKind.LOCKOUT,
    ErrorKind.UNREACHABLE,
    ErrorKind.TIMEOUT,
    ErrorKind.SERVER,
    ErrorKind.BAD_RESPONSE,
    ErrorKind.VENUE,
}


class VenueError(Exception):
    """A failed venue call: what kind, a short human message, whether to retry, and when.

    The message never holds a secret or a signature: builders pass venue text through `redact`.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.status = status
        self.retryable = kind in _RETRYABLE if retryable is None else retryable

    def __repr__(self) -> str:
        return f"VenueError({self.kind.value!r}, {self.message!r}, retry_after={self.retry_after!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VenueError) and (self.kind, self.message, self.retry_after) == (
            other.kind,
            other.message,
            other.retry_after,
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.message))


async def guarded(awaitable: Awaitable[T]) -> T:
    """Await a venue call; anything but a `VenueError` escaping a client is a bug, reported as a value."""
    try:
        return await awaitable
    except (VenueError, asyncio.CancelledError):
        raise
    except Exception as exc:  # a client bug must not take the monitor down
        raise VenueError(ErrorKind.VENUE, redact(f"internal error: {type(exc).__name__}: {exc}")[:200]) from None
