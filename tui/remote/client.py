"""A `serve` seen from a viewer: its release and contract, its snapshot, its event stream and drill-downs,
over HTTP with the desk's token. Every failure is an `AttachError` in operator words."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from tui.credentials import Secret, redact
from tui.money import AmountError, Balance, parse_amount
from tui.snapshot.contract import CONTRACT, ContractError, from_contract
from tui.snapshot.model import Snapshot
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.intx import PortfolioSummary, parse_balance, parse_summary
from tui.venues.kraken import VaultAsset, VaultDetails

TIMEOUT = httpx.Timeout(connect=3.0, read=10.0, write=5.0, pool=5.0)
STREAM_TIMEOUT = httpx.Timeout(connect=3.0, read=None, write=5.0, pool=5.0)  # a quiet stream is not a dead one
DETAIL_TIMEOUT = httpx.Timeout(connect=3.0, read=45.0, write=5.0, pool=5.0)  # the server may wait out a rate limit


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


def check_url(url: str) -> str | None:
    """None if `url` can name a server: http(s)://host[:port], nothing after."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL of a balance-tui server (e.g. http://127.0.0.1:8765)"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return f"{url!r} must be just scheme, host and port: the paths are balance-tui's"
    return None


class ServerClient:
    def __init__(self, url: str, token: Secret | None = None) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        self.via = parts.netloc
        headers = {"Accept": "application/json", "User-Agent": f"balance-tui/{release()}"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token.reveal()}"
        self._http = httpx.AsyncClient(base_url=self.url, timeout=TIMEOUT, headers=headers, follow_redirects=False)

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
        """The server's event stream, line by line, until it ends or fails (AttachError)."""
        try:
            async with self._http.stream("GET", "/events", timeout=STREAM_TIMEOUT) as response:
                self._refused(response)
                async for line in response.aiter_lines():
                    if line.strip():
                        yield line
        except httpx.HTTPError as exc:
            raise AttachError(self._unreachable(exc)) from None

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
        try:
            response = await self._http.get(path, params=params, timeout=DETAIL_TIMEOUT if detail else TIMEOUT)
        except httpx.HTTPError as exc:
            raise AttachError(self._unreachable(exc)) from None
        self._refused(response)
        try:
            data = json.loads(response.content)
        except ValueError:
            raise AttachError(
                f"{self.url}{path} answered something that is not JSON: is this a balance-tui server?"
            ) from None
        if detail and response.status_code == 502 and isinstance(data, dict):  # the venue failed the server's call
            kind = data.get("error_kind")
            error_kind = ErrorKind(kind) if kind in {k.value for k in ErrorKind} else ErrorKind.VENUE
            raise VenueError(error_kind, str(data.get("error") or "the venue failed"))
        if response.status_code >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise AttachError(f"{self.url}{path}: HTTP {response.status_code}: {message or 'refused'}")
        return data

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
            f"the server at {self.url} speaks contract {contract} (release {release_ or '?'}); this "
            f"viewer speaks contract {CONTRACT} (release {release()}): run the same release on both",
            usage=True,
        )

    def _unreachable(self, exc: httpx.HTTPError) -> str:
        reason = redact(str(exc)) or type(exc).__name__
        return f"cannot reach the balance-tui server at {self.url}: {reason[:120]}"
