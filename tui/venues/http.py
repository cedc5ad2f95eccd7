"""The transport both venues share: one TLS context per process, explicit timeouts, and every
transport failure turned into a `VenueError`."""

from __future__ import annotations

import asyncio
import email.utils
import re
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from functools import cache
from typing import Any

import httpx

from tui.credentials import redact
from tui.money import loads
from tui.venues.errors import ErrorKind, VenueError

TIMEOUT = httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=10.0)
CONNECTIONS = 20  # to one venue at once (an INTX fan-out sends one request per portfolio together)
KEEPALIVE_SECONDS = 30.0
HEADERS = {"User-Agent": "balance-tui"}
EXCERPT_CHARS = 120
_WORD = re.compile(rb"\S+")
MAX_BODY = 32_000_000  # one answer, decoded: Kraken's every-pair Ticker and AssetPairs are about 1 MB each
DEADLINE = 30.0  # seconds for a whole answer, from sending the request to its last byte


@cache
def tls_context() -> ssl.SSLContext:
    """Building a TLS context costs ~20 ms; every client shares this one."""
    return ssl.create_default_context()


def new_client(base_url: str, *, timeout: httpx.Timeout | None = None) -> ApiClient:
    # A plain-http base URL (loopback only: config enforces it) never uses TLS: skip building a context.
    tls: ssl.SSLContext | bool = tls_context() if base_url.startswith("https://") else False
    # httpx applies the environment's proxies only to its own pool (a lone no_proxy names none): with a
    # proxy it keeps that pool, with these limits; otherwise our pool of one-connection transports
    proxied = bool(set(urllib.request.getproxies()) - {"no"})
    return ApiClient(
        base_url=base_url,
        timeout=timeout or TIMEOUT,
        verify=tls,
        limits=httpx.Limits(
            max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS, keepalive_expiry=KEEPALIVE_SECONDS
        ),
        transport=None if proxied else Connections(tls),
        headers=HEADERS,
        follow_redirects=False,
    )


class ApiClient(httpx.AsyncClient):
    """An AsyncClient for a venue's stateless, signed API: it keeps no cookies, and resolves each path
    against the base URL once.

    httpx parses every answer for cookies to keep (building urllib request and response stand-ins even
    when there are none): ~12 % of a Kraken call's CPU, to keep what a CDN sets and send it back for
    nothing. Merging a relative path with the base URL re-parses both at every request: ~7 %."""

    PATHS = 256  # resolved paths kept: a few methods, times the vaults or portfolios named in them

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._urls: dict[str, httpx.URL] = {}
        self._jar = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("a venue client keeps no cookies")

    @property
    def base_url(self) -> httpx.URL:
        return super().base_url

    @base_url.setter
    def base_url(self, url: httpx.URL | str) -> None:
        httpx.AsyncClient.base_url.fset(self, url)  # type: ignore[attr-defined]
        self._urls = {}  # resolved against the old base

    def build_request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Request:
        if isinstance(url, str):
            resolved = self._urls.get(url)
            if resolved is None:
                if len(self._urls) >= self.PATHS:
                    self._urls.clear()
                resolved = self._urls[url] = self._resolve(httpx.URL(url))
            url = resolved
        return super().build_request(method, url, **kwargs)

    def _resolve(self, url: httpx.URL) -> httpx.URL:
        """As httpx merges a URL with the base: a relative path is appended to the base's path."""
        if not url.is_relative_url:
            return url
        return self.base_url.copy_with(raw_path=self.base_url.raw_path + url.raw_path.lstrip(b"/"))


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class Connections(httpx.AsyncBaseTransport):
    """Up to CONNECTIONS keep-alive connections to one venue, each in a transport of its own.

    httpcore's pool does work quadratic in its connections at every request's start and end (it counts
    every connection for each idle one, and polls each idle socket): with the 20 connections of an INTX
    fan-out that was about 40 % of a refresh's CPU. A pool of one-connection transports, handed out from a
    stack, costs the same per request however many there are. A transport is busy until its answer's body
    is read or closed; one whose request or body did not finish cleanly (an error, a cancellation) is
    closed and replaced, never handed out again in a state httpcore may not have tidied up."""

    def __init__(self, tls: ssl.SSLContext | bool) -> None:
        self._ssl = httpx.create_ssl_context(verify=tls)  # once, not once per connection
        self._idle: list[httpx.AsyncHTTPTransport] = []
        self._all: set[httpx.AsyncHTTPTransport] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._free = asyncio.BoundedSemaphore(CONNECTIONS)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._free.locked():  # every connection busy: wait, as long as the pool timeout allows
            try:
                async with asyncio.timeout(request.extensions.get("timeout", {}).get("pool")):
                    await self._free.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no free connection", request=request) from None
        else:
            await self._free.acquire()
        transport: httpx.AsyncHTTPTransport | None = None
        released = False

        def release(clean: bool) -> None:
            nonlocal released
            if released:
                return
            released = True
            if transport is not None:
                if clean:
                    self._idle.append(transport)
                else:
                    self._retire(transport)
            self._free.release()

        try:
            transport = self._idle.pop() if self._idle else self._new()
            response = await transport.handle_async_request(request)
        except BaseException:
            release(clean=False)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Releasing(response.stream, release)
        return response

    def _new(self) -> httpx.AsyncHTTPTransport:
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=KEEPALIVE_SECONDS)
        transport = httpx.AsyncHTTPTransport(verify=self._ssl, limits=one)
        self._all.add(transport)
        return transport

    def _retire(self, transport: httpx.AsyncHTTPTransport) -> None:
        self._all.discard(transport)
        task = asyncio.get_running_loop().create_task(transport.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        closing = [transport.aclose() for transport in self._all]
        await asyncio.gather(*closing, *self._closing, return_exceptions=True)
        self._all.clear()
        self._idle.clear()


class _Releasing(httpx.AsyncByteStream):
    """An answer's body that hands its connection back when closed: for reuse only if it was read to the end."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[bool], None]) -> None:
        self._stream = stream
        self._release = release
        self._complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk
        self._complete = True

    async def aclose(self) -> None:
        clean = False
        try:
            await self._stream.aclose()
            clean = self._complete
        finally:
            self._release(clean)


class TooLarge(Exception):
    """An answer past the size a reader takes: `declared` is what its Content-Length said, if it said."""

    def __init__(self, declared: int | None) -> None:
        super().__init__(declared)
        self.declared = declared


async def read_bounded(response: httpx.Response, limit: int) -> bytearray:
    """A streamed answer's body, decoded, read to at most `limit` bytes (TooLarge past it): what a venue or a
    server sends is never memory spent beyond the bound, however large it says or makes itself (a
    compressed answer is counted as it unpacks)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(int(declared))
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise TooLarge(None)
    return body


async def send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send and read the whole body, at most MAX_BODY bytes within DEADLINE seconds (a venue dripping a byte
    every few seconds never trips the timeout between reads); every failure becomes a `VenueError`."""
    try:
        async with asyncio.timeout(DEADLINE):
            streamed = await client.send(request, stream=True)
            try:
                body = await read_bounded(streamed, MAX_BODY)
            finally:
                await streamed.aclose()
        headers = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(streamed.status_code, headers=headers, content=bytes(body), request=request)
    except TimeoutError:
        raise VenueError(ErrorKind.TIMEOUT, f"no whole answer within {DEADLINE:g} s ({_host(request)})") from None
    except TooLarge:
        raise VenueError(
            ErrorKind.BAD_RESPONSE,
            f"answered more than {MAX_BODY // 1_000_000} MB ({_host(request)}): no answer of the venue's API is "
            "near that; is base_url pointing at the venue?",
        ) from None
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
    """The body's first words, whitespace collapsed, for an error. Redacted before it is shortened: a key the
    venue quotes back, cut in two by a shortening, would no longer be recognised and half of it shown. So
    whole words are taken (a secret has no whitespace in it) until there are enough, however much whitespace
    comes before them, and only then redacted and cut."""
    words: list[bytes] = []
    length = 0
    for word in _WORD.finditer(response.content):
        words.append(word.group())
        length += len(words[-1]) + 1
        if length > EXCERPT_CHARS:
            break
    text = redact(b" ".join(words).decode("utf-8", "replace"))
    if not text:
        return "(empty body)"
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
