"""The transport both venues share: one TLS context per process, explicit timeouts, and every
transport failure turned into a `VenueError`."""

from __future__ import annotations

import email.utils
import ssl
import time
from functools import cache
from typing import Any

import httpx

from tui.credentials import redact
from tui.money import loads
from tui.venues.errors import ErrorKind, VenueError

TIMEOUT = httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=10.0)
EXCERPT_CHARS = 120


@cache
def tls_context() -> ssl.SSLContext:
    """Building a TLS context costs ~20 ms; every client shares this one."""
    return ssl.create_default_context()


def new_client(base_url: str, *, timeout: httpx.Timeout | None = None) -> httpx.AsyncClient:
    # A plain-http base URL (loopback only: config enforces it) never uses TLS: skip building a context.
    tls: ssl.SSLContext | bool = tls_context() if base_url.startswith("https://") else False
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout or TIMEOUT,
        verify=tls,
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=20, keepalive_expiry=30.0),
        headers={"User-Agent": "balance-tui"},
        follow_redirects=False,
    )


async def send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send and read the whole body; transport failures become `VenueError`."""
    try:
        return await client.send(request)
    except httpx.TimeoutException as exc:
        phase = {
            httpx.ConnectTimeout: "connecting",
            httpx.ReadTimeout: "waiting for the answer",
            httpx.WriteTimeout: "sending",
            httpx.PoolTimeout: "waiting for a free connection",
        }.get(type(exc), "talking to the venue")
        raise VenueError(ErrorKind.TIMEOUT, f"timed out {phase} ({_host(request)})") from None
    except httpx.ConnectError as exc:
        raise VenueError(ErrorKind.UNREACHABLE, f"cannot connect to {_host(request)}: {_reason(exc)}") from None
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise VenueError(ErrorKind.UNREACHABLE, f"connection to {_host(request)} broke: {_reason(exc)}") from None
    except httpx.HTTPError as exc:
        raise VenueError(ErrorKind.UNREACHABLE, f"{_host(request)}: {_reason(exc)}") from None


def decode_json(response: httpx.Response) -> Any:
    """The body as JSON with exact decimals, or a `BAD_RESPONSE` saying what came instead."""
    try:
        return loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise VenueError(
            ErrorKind.BAD_RESPONSE,
            f"answered HTTP {response.status_code} with something that is not JSON: {excerpt(response)}",
            status=response.status_code,
        ) from None


def excerpt(response: httpx.Response) -> str:
    text = response.content[:2000].decode("utf-8", "replace")
    text = " ".join(text.split())
    if not text:
        return "(empty body)"
    text = redact(text)
    return repr(text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…")


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))  # ok-float: a delay in seconds, not an amount
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def server_clock_offset(response: httpx.Response) -> float | None:
    """Server time minus ours, from the `Date` header, if present.

    The header is truncated to whole seconds, so the true server time is on average half a second
    later than it says: centring the estimate keeps its error within ±0.5 s."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() + 0.5 - time.time()


def _host(request: httpx.Request) -> str:
    return request.url.host or "the venue"


def _reason(exc: BaseException) -> str:
    text = redact(str(exc)) or type(exc).__name__
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"
