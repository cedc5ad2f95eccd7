"""A `serve` seen from a viewer: its release and contract, its snapshot, its event stream and drill-downs,
over HTTP(S) with the desk's token. Every failure is an `AttachError` in operator words.

Every read is bounded, in size and in time, whatever the server does: an answer larger than
`Limits.answer_bytes` or an /events line longer than `Limits.line_bytes` is a protocol error, not memory
spent; a connection must open within 3 s, an answer may pause at most 10 s between bytes, and the whole
answer must be in within `Limits.deadline` (a server dripping a byte every few seconds never trips a
per-read timeout). The /events stream may stay quiet between lines, but a server sends a heartbeat whenever
nothing else went out for 15 s: a stream that says nothing for `Limits.silence` (45 s) is a dead connection
(a half-open one after a network change, say), given up so that the viewer reconnects.

Every request says which viewer it comes from (`X-Balance-TUI-Viewer: KIND ID`, tui/sinks/audience.py), so
that the server can count its viewers: KIND is `browser` in a session of `balance-tui web` (it sets
$BALANCE_TUI_VIEWER), `terminal` otherwise; ID is this process's, chosen at random at start."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from tui.credentials import Secret, redact
from tui.money import AmountError, Balance, parse_amount
from tui.sinks.audience import BROWSER, VIEWER_HEADER
from tui.snapshot.contract import CONTRACT, ContractError, from_contract
from tui.snapshot.model import Snapshot
from tui.tls import client_context, tls_failure, unverified
from tui.untrusted import visible
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.intx import parse_balance
from tui.venues.intx_summary import PortfolioSummary, parse_summary
from tui.venues.kraken_vault import VaultAsset, VaultDetails

TIMEOUT = httpx.Timeout(connect=3.0, read=10.0, write=5.0, pool=5.0)  # read: the longest pause between bytes
SILENCE = 45.0  # seconds an /events stream may say nothing (the server's heartbeat comes every 15 s)
DETAIL_TIMEOUT = httpx.Timeout(connect=3.0, read=45.0, write=5.0, pool=5.0)  # the server may wait out a rate limit
# A /snapshot of 100,000 balances, all of INTX's larger kind, measured 76 MB (bench/hostile.py): 100 MB holds
# it with room, and reading a hostile answer stops there (about 115 MB of memory at most).
ANSWER_BYTES = 100_000_000
# The longest /events line is the prices line: about 3 MB for 100,000 distinct priced assets.
LINE_BYTES = 8_000_000
DEADLINE = 30.0  # seconds for a whole answer, first byte to last
DETAIL_DEADLINE = 60.0  # a drill-down's: the server may wait out a venue's rate limit first (45 s)
VIEWER_KIND = "BALANCE_TUI_VIEWER"  # "browser" in the sessions `web` starts
VIEWER_ID = secrets.token_hex(8)  # this process, one viewer however many clients it makes


@dataclass(frozen=True, slots=True)
class Limits:
    """How much a viewer reads, and for how long, before it calls the server broken."""

    answer_bytes: int = ANSWER_BYTES
    line_bytes: int = LINE_BYTES
    deadline: float = DEADLINE
    detail_deadline: float = DETAIL_DEADLINE
    silence: float = SILENCE


class AttachError(Exception):
    """The server cannot be used: unreachable, refusing the token, or speaking another contract.
    `usage`: a mistake to fix (URL, token, versions), not a passing failure."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


def release() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("balance-tui")
    except PackageNotFoundError:
        return "unknown"


def viewer_kind() -> str:
    """What this viewer says it is: a browser session of `web`, or a terminal."""
    return BROWSER if os.environ.get(VIEWER_KIND, "").strip() == BROWSER else "terminal"


def check_url(url: str) -> str | None:
    """None if `url` can name a server: http(s)://host[:port], nothing after."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL of a balance-tui server (e.g. http://127.0.0.1:8765)"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return f"{url!r} must be just scheme, host and port: the paths are balance-tui's"
    return None


class ServerClient:
    def __init__(self, url: str, token: Secret | None = None, limits: Limits | None = None) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        self.via = parts.netloc
        self.limits = limits or Limits()
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": "identity",  # what is counted is what arrives: no decompression bomb
            "User-Agent": f"balance-tui/{release()}",
            VIEWER_HEADER: f"{viewer_kind()} {VIEWER_ID}",
        }
        if token is not None:
            headers["Authorization"] = f"Bearer {token.reveal()}"
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=TIMEOUT,
            headers=headers,
            follow_redirects=False,
            verify=client_context(),  # one context for every client of the process: its CA store loads once
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def check(self) -> dict[str, Any]:
        """The server's health; refuses a server of another contract, naming both releases."""
        health = await self._json("/healthz")
        if not isinstance(health, dict):
            raise AttachError(f"{self.url}/healthz: not a balance-tui server's answer", usage=True)
        if health.get("contract") != CONTRACT:
            raise self._other_contract(health.get("contract"), health.get("release"))
        return health

    async def snapshot(self) -> Snapshot:
        try:
            return from_contract(await self._json("/snapshot"))
        except ContractError as exc:
            raise AttachError(f"{self.url}/snapshot: {exc}", usage=True) from None

    async def lines(self) -> AsyncIterator[str]:
        """The server's event stream, line by line, until it ends or fails (AttachError). The stream may be
        quiet between lines, but not silent for `silence` seconds (the server's heartbeats fill the gaps); its
        answer must start within the deadline, and a line longer than `line_bytes` ends it: a line that never
        ends must not grow without bound."""
        timeout = httpx.Timeout(connect=3.0, read=self.limits.silence, write=5.0, pool=5.0)
        request = self._http.build_request("GET", "/events", timeout=timeout)
        try:
            async with asyncio.timeout(self.limits.deadline):
                response = await self._http.send(request, stream=True)
        except TimeoutError:
            raise self._too_slow("/events") from None
        except httpx.HTTPError as exc:
            raise self._failed(exc) from None
        try:
            self._refused(response)
            self._plain(response, "/events")
            async for line in self._split(response):
                if line.strip():
                    yield line
        except httpx.ReadTimeout:
            raise AttachError(
                f"{self.url}/events said nothing for {self.limits.silence:g} s (a server sends a heartbeat every "
                "15 s): the connection is dead"
            ) from None
        except httpx.HTTPError as exc:
            raise self._failed(exc) from None
        finally:
            await response.aclose()

    async def _split(self, response: httpx.Response) -> AsyncIterator[str]:
        """The body's lines, each at most `line_bytes` long (an AttachError past it)."""
        bound = self.limits.line_bytes
        pending = bytearray()
        async for chunk in response.aiter_raw():
            *whole, rest = chunk.split(b"\n")
            for part in whole:
                pending += part
                if len(pending) > bound:
                    raise self._line_too_long()
                yield pending.decode("utf-8", "replace").rstrip("\r")
                pending = bytearray()
            pending += rest
            if len(pending) > bound:
                raise self._line_too_long()
        if pending.strip():
            yield pending.decode("utf-8", "replace").rstrip("\r")

    async def intx_detail(self, venue: str, account: str, asset: str) -> tuple[Balance, PortfolioSummary]:
        data = await self._json("/detail/intx", {"venue": venue, "account": account, "asset": asset}, detail=True)
        return parse_balance(data.get("balance"), "balance"), parse_summary(data.get("summary"))

    async def vault(self, venue: str, account: str) -> VaultDetails:
        data = await self._json("/detail/kraken", {"venue": venue, "account": account}, detail=True)
        try:
            assets = {
                name: VaultAsset(
                    name,
                    *(
                        parse_amount(item.get(k))
                        for k in ("usd_price", "quantity", "usd_value", "available_quantity", "available_usd_value")
                    ),
                )
                for name, item in (data.get("assets") or {}).items()
            }
            return VaultDetails(
                assets,
                parse_amount(data.get("balance_fiat")),
                parse_amount(data.get("available_balance_fiat")),
                data.get("status") if isinstance(data.get("status"), str) else None,
            )
        except (AmountError, AttributeError, TypeError) as exc:
            raise VenueError(ErrorKind.BAD_RESPONSE, f"vault details from the server: {exc}") from None

    async def _json(self, path: str, params: dict[str, str] | None = None, *, detail: bool = False) -> Any:
        """The JSON a path answers; with `detail`, a venue's failure on the server's call is a VenueError."""
        deadline = self.limits.detail_deadline if detail else self.limits.deadline
        try:
            async with asyncio.timeout(deadline):
                status, body = await self._get(path, params, DETAIL_TIMEOUT if detail else TIMEOUT)
        except TimeoutError:
            raise self._too_slow(path, deadline) from None
        try:
            data = json.loads(body)
        except ValueError:
            raise AttachError(
                f"{self.url}{path} answered something that is not JSON: is this a balance-tui server?"
            ) from None
        if detail and status == 502 and isinstance(data, dict):  # the venue failed the server's call
            kind = data.get("error_kind")
            error_kind = ErrorKind(kind) if kind in {k.value for k in ErrorKind} else ErrorKind.VENUE
            raise VenueError(error_kind, _outside(data.get("error") or "the venue failed", 300))
        if status >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise AttachError(f"{self.url}{path}: HTTP {status}: {_outside(message or 'refused', 300)}")
        return data

    async def _get(self, path: str, params: dict[str, str] | None, timeout: httpx.Timeout) -> tuple[int, bytearray]:
        """The status and body of GET `path`, read to at most `answer_bytes`."""
        request = self._http.build_request("GET", path, params=params, timeout=timeout)
        try:
            response = await self._http.send(request, stream=True)
            try:
                self._refused(response)
                self._plain(response, path)
                bound = self.limits.answer_bytes
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > bound:
                    raise self._too_big(path, int(declared))
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > bound:
                        raise self._too_big(path, None)
                return response.status_code, body
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise self._failed(exc) from None

    def _plain(self, response: httpx.Response, path: str) -> None:
        """An answer compressed although the viewer asked for none is refused: its size says nothing of what
        it would become."""
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise AttachError(
                f"{self.url}{path}: answered compressed ({_outside(encoding, 40)}), which this viewer did not ask "
                "for: is this a balance-tui server, or a proxy in the way?"
            )

    def _refused(self, response: httpx.Response) -> None:
        """Every answer is checked, not only the first: a desk upgrades the server while viewers run."""
        if response.status_code == 401:
            raise AttachError(
                f"the server at {self.url} refused this viewer's token: pass --token-file (or set "
                "BALANCE_TUI_TOKEN) with the server's token",
                usage=True,
            )
        theirs = response.headers.get("X-Balance-TUI-Contract")
        if theirs is not None and theirs != str(CONTRACT):
            raise self._other_contract(theirs, response.headers.get("X-Balance-TUI-Release"))

    def _other_contract(self, contract: object, release_: object) -> AttachError:
        return AttachError(
            f"the server at {self.url} speaks contract {_outside(contract, 20)} (release "
            f"{_outside(release_ or '?', 40)}); this viewer speaks contract {CONTRACT} (release {release()}): run "
            "the same release on both",
            usage=True,
        )

    def _too_big(self, path: str, declared: int | None) -> AttachError:
        size = f"announced {declared / 1e6:,.0f} MB" if declared is not None else "went on past that"
        return AttachError(
            f"{self.url}{path}: the answer is larger than {self.limits.answer_bytes / 1e6:,.0f} MB, the most a "
            f"viewer reads (it {size}; a balance-tui server's for 100,000 balances is about 76 MB): is this a "
            "balance-tui server?"
        )

    def _line_too_long(self) -> AttachError:
        return AttachError(
            f"{self.url}/events: a line longer than {self.limits.line_bytes / 1e6:,.0f} MB, the most a viewer reads "
            "(a balance-tui server's lines are a few KB): not a balance-tui server's stream"
        )

    def _too_slow(self, path: str, deadline: float | None = None) -> AttachError:
        seconds = deadline if deadline is not None else self.limits.deadline
        return AttachError(
            f"{self.url}{path}: no whole answer within {seconds:g} s (it came too slowly, or not at all): is the "
            "server or the network overloaded?"
        )

    def _failed(self, exc: httpx.HTTPError) -> AttachError:
        """What an HTTP failure means for the operator. A certificate the viewer cannot verify is a usage
        error: trying again will not help, --ca-file may."""
        bad_cert = unverified(exc)
        if bad_cert is not None:
            why = _outside(bad_cert.verify_message or bad_cert.reason or "not trusted", 120)
            return AttachError(
                f"the server at {self.url} presents a certificate this viewer cannot verify ({why}): if the "
                "desk's own CA signed it, pass that CA's certificate with --ca-file FILE; if the name differs, "
                "attach by the name in the certificate",
                usage=True,
            )
        if isinstance(exc, httpx.ConnectTimeout):
            reason = "no connection within 3 s"
        elif isinstance(exc, httpx.ReadTimeout):
            reason = "it stopped sending for 10 s in the middle of an answer"
        else:
            reason = _outside(str(exc).rstrip("."), 120) or type(exc).__name__
        hint = ""
        if self.url.startswith("https:") and tls_failure(exc) is not None:
            hint = " (does it speak HTTPS? a server without --tls-cert is attached as http://)"
        elif self.url.startswith("http:") and isinstance(exc, httpx.RemoteProtocolError):
            hint = " (if it speaks HTTPS, attach to https://)"
        return AttachError(f"cannot reach the balance-tui server at {self.url}: {reason}{hint}")


def _outside(text: object, limit: int) -> str:
    """Text a server sent, fit for a message: no secret, nothing that steers a terminal, not too long."""
    shown = visible(redact(str(text)))
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
