"""Coinbase International Exchange (INTX): signing, the rate limit, and the calls a monitor makes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import os
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from tui.credentials import Secret, redact, remember_signature
from tui.money import Account, AmountError, Balance, parse_amount
from tui.venues import INTX_AMOUNTS, INTX_ID, INTX_SUMMARY_AMOUNTS, INTX_SUMMARY_FLAGS, http
from tui.venues.base import require_base64_secret
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.ledger import KeyBusy, KeyLedger, ledger_at, ledger_path

if TYPE_CHECKING:
    from tui.venues.intx_summary import PortfolioSummary

KIND = "coinbase-intx"
DEFAULT_BASE_URL = "https://api.international.coinbase.com"
LABELS = ("asset_id", "asset_name", "asset_uuid")
AMOUNTS = INTX_AMOUNTS
FIELDS = LABELS + AMOUNTS
MEANINGS = {  # from the venue's documentation of GET /api/v1/portfolios/{portfolio}/balances/{asset}
    "asset_id": "the unique identifier of the asset",
    "asset_name": "name of the asset",
    "asset_uuid": "the UUID of the asset",
    "quantity": "total amount of the asset in the portfolio",
    "hold": "amount held from trading activity",
    "hold_available_for_collateral": "part of the hold that is eligible as collateral",
    "transfer_hold": "amount held by a pending transfer",
    "collateral_value": "collateral value this balance provides",
    "max_withdraw_amount": "most that can be withdrawn on-chain now, given margin requirements",
    "loan": "total quantity of the asset borrowed by the portfolio",
    "loan_collateral_requirement": "notional collateral required to hold the loan",
    "pledged_collateral_quantity": "amount of the asset pledged as collateral",
    "loan_initial_margin_contribution": "notional this loan adds to the portfolio's initial margin",
    "collateral_backed_overdraft_loan": "amount borrowed automatically to cover USDC deficits",
    "user_requested_loan": "amount borrowed on explicit request",
    "unreconciled_amount": "exchange vs external balance not yet reconciled (external collateral only)",
    "max_undelegate_amount": "most that can be undelegated from the exchange (external collateral only)",
}
PORTFOLIO_DETAILS = (  # what GET /portfolios says of each portfolio besides its id and name (recordings)
    "portfolio_uuid",
    "user_uuid",
    "maker_fee_rate",
    "taker_fee_rate",
    "is_default",
    "is_lsp",
    "trading_lock",
    "withdrawal_lock",
    "borrow_disabled",
    "close_only",
    "forced_liquidation",
    "cross_collateral_enabled",
    "auto_margin_enabled",
    "position_offsets_enabled",
    "pre_launch_trading_enabled",
)
SUMMARY_AMOUNTS = INTX_SUMMARY_AMOUNTS
SUMMARY_FLAGS = INTX_SUMMARY_FLAGS
CLOCK_WINDOW = 5.0
SKEW_WARNING = 2.5  # half the window: warn before requests start failing


def sign(secret_b64: str, timestamp: str, method: str, request_path: str, body: str = "") -> str:
    """CB-ACCESS-SIGN = b64(HMAC-SHA256(b64decode(secret), timestamp + METHOD + path + body))."""
    key = base64.b64decode(secret_b64, validate=True)
    message = f"{timestamp}{method.upper()}{request_path}{body}".encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")


class RequestRate:
    """At most `limit` requests in any `per` seconds as the venue counts them, for one key's callers.

    The venue counts a request when it arrives, which is some time after we send it and before its
    answer reaches us. So a request holds its slot from sending until `per` seconds after its answer:
    however the network jitters, the venue never sees more than `limit` in one window.
    """

    def __init__(self, limit: int = 40, per: float = 1.0, clock: Any = time.monotonic) -> None:
        self.limit = limit
        self.per = per
        self._clock = clock
        self._in_flight = 0
        self._done: deque[float] = deque()
        self.waited = 0.0  # seconds requests have spent waiting for a slot

    def _wait(self) -> float:
        now = self._clock()
        while self._done and now - self._done[0] >= self.per:
            self._done.popleft()
        if self._in_flight + len(self._done) < self.limit:
            return 0.0
        return self._done[0] + self.per - now if self._done else 0.01

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        while (delay := self._wait()) > 0:
            started = self._clock()
            await asyncio.sleep(min(delay, 0.05) if not self._done else delay)
            self.waited += self._clock() - started
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self._done.append(self._clock())


_SLOT_IDS = itertools.count()


class SharedRequestRate(RequestRate):
    """The same rate, counted for every balance-tui process on the key through its ledger: each request
    records when its slot frees (`per` seconds after its answer; while it is on the wire, the longest it can
    take), so a process spends only what the others left. Times are the wall clock, the one every process
    reads alike."""

    PENDING = http.DEADLINE + 1.0  # a request on the wire holds its slot until answered, or this long at most

    def __init__(self, ledger: KeyLedger, url: str, limit: int = 40, per: float = 1.0) -> None:
        super().__init__(limit, per, clock=time.time)
        self.ledger = ledger
        self.url = url

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        mine = f"{os.getpid()}-{next(_SLOT_IDS)}"  # one sequence in the process: two rates on one key never clash
        while (delay := await self._claim(mine)) > 0:
            started = self._clock()
            await asyncio.sleep(delay)
            self.waited += self._clock() - started
        try:
            yield
        finally:
            await self._free(mine, self._clock() + self.per)

    async def _claim(self, mine: str) -> float:
        """0 once `mine` holds a slot; else the seconds until the first taken one frees."""
        try:
            await self.ledger.hold(say_who=False, patience=10.0)
        except KeyBusy:
            return 0.05
        try:
            now: float = self._clock()
            slots = self.taken(now)
            if len(slots) >= self.limit:
                first = min(slots.values()) - now
                return 0.05 if first > self.per else max(0.005, first)  # all on the wire: look again soon
            self.ledger.update_venue(self.url, requests={**slots, mine: now + self.PENDING})
            return 0.0
        finally:
            self.ledger.release()

    async def _free(self, mine: str, until: float) -> None:
        with contextlib.suppress(KeyBusy):
            await self.ledger.hold(say_who=False, patience=10.0)
            try:
                self.ledger.update_venue(self.url, requests={**self.taken(self._clock()), mine: until})
            finally:
                self.ledger.release()

    def taken(self, now: float) -> dict[str, float]:
        """The slots taken now, by whom, until when (those that freed are gone)."""
        taken = self.ledger.venue(self.url).get("requests")
        if not isinstance(taken, dict):
            return {}
        times = {k: float(v) for k, v in taken.items() if isinstance(v, (int, float))}  # ok-float: a time
        return {k: t for k, t in times.items() if t > now}


class IntxClient:
    """Signed GETs to INTX for one key, never more than the venue's 40 requests per second (counted with
    every other balance-tui process on the key, when `shared`)."""

    kind = KIND

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: Secret,
        api_secret: Secret,
        passphrase: Secret,
        *,
        rate: RequestRate | None = None,
        clock: Any = time.time,
        shared: bool = False,
    ) -> None:
        """`shared`: the key's request rate is counted with every balance-tui process on this machine."""
        self._client = client
        self._api_key = api_key
        self._api_secret = api_secret
        self._passphrase = passphrase
        if rate is None and shared:
            rate = SharedRequestRate(ledger_at(ledger_path(api_key)), str(client.base_url))
        self.rate = rate if rate is not None else RequestRate()
        self.ledger = rate.ledger if isinstance(rate, SharedRequestRate) else None
        self._clock = clock
        self.clock_offset: float | None = None
        require_base64_secret(api_secret, "the INTX API key page")

    async def discover(self, *, fresh: bool = False) -> list[Account]:
        return await self.portfolios()  # always asked: nothing is shared between processes here

    async def fetch(self, account_id: str) -> list[Balance]:
        return await self.balances(account_id)

    async def account_summary(self, account_id: str) -> dict[str, Decimal | bool | None]:
        """The portfolio summary's fields, for alert rules on them (collateral, in_liquidation...)."""
        summary = await self.summary(account_id)
        return {**summary.amounts, **summary.flags}

    def delay_for(self, calls: int) -> float:
        return 0.0  # the request rate is paced per request; a refresh never needs to wait as a whole

    def turn(self, *, urgent: bool) -> contextlib.AbstractAsyncContextManager[None]:
        """No queue at INTX: its budget is paced request by request, shared by every process on the key."""
        return contextlib.nullcontext()

    def key_state(self) -> str | None:
        """The key's ledger in a line, for `config check`: its requests of the last second, other pollers."""
        rate = self.rate
        if not isinstance(rate, SharedRequestRate):
            return None
        taken = len(rate.taken(time.time()))
        return " · ".join([f"{taken} of {rate.limit} requests in the last {rate.per:g} s", *rate.ledger.others()])

    def note(self) -> str | None:
        if self.clock_offset is not None and abs(self.clock_offset) > SKEW_WARNING:
            return describe_skew(self.clock_offset)
        return None

    @property
    def rate_limit_waited(self) -> float:
        return self.rate.waited

    async def portfolios(self) -> list[Account]:
        return parse_portfolios(await self._get("/api/v1/portfolios", "portfolios"))

    async def balances(self, portfolio: str) -> list[Balance]:
        payload = await self._get(f"/api/v1/portfolios/{_part(portfolio, 'portfolio')}/balances", "balances")
        if not isinstance(payload, list):
            raise _shape("balances", "a list")
        return [parse_balance(item, "balances") for item in payload]

    async def balance(self, portfolio: str, asset: str) -> Balance:
        """The seed endpoint: one asset's balance with every collateral and loan field."""
        path = f"/api/v1/portfolios/{_part(portfolio, 'portfolio')}/balances/{_part(asset, 'asset')}"
        return parse_balance(await self._get(path, "balance"), "balance")

    async def summary(self, portfolio: str) -> PortfolioSummary:
        from tui.venues.intx_summary import parse_summary  # here: only an alert on a summary field asks

        path = f"/api/v1/portfolios/{_part(portfolio, 'portfolio')}/summary"
        return parse_summary(await self._get(path, "summary"))

    async def _get(self, path: str, where: str) -> Any:
        async with self.rate.slot():
            response = await self._send(path)
        offset = http.server_clock_offset(response)
        if offset is not None:
            self.clock_offset = offset
        if response.status_code >= 400:
            raise self._status_error(response, where)
        return http.decode_json(response)

    async def _send(self, path: str) -> httpx.Response:
        timestamp = str(int(self._clock()))
        signature = sign(self._api_secret.reveal(), timestamp, "GET", path)
        remember_signature(signature)
        request = self._client.build_request(
            "GET",
            path,
            headers={
                "CB-ACCESS-KEY": self._api_key.reveal(),
                "CB-ACCESS-PASSPHRASE": self._passphrase.reveal(),
                "CB-ACCESS-SIGN": signature,
                "CB-ACCESS-TIMESTAMP": timestamp,
                "Accept": "application/json",
            },
        )
        return await http.send(self._client, request)

    def _status_error(self, response: httpx.Response, where: str) -> VenueError:
        status = response.status_code
        text = error_text(response)
        lowered = text.lower()
        if status == 429:
            return VenueError(
                ErrorKind.RATE_LIMIT,
                f"{where}: rate limited by INTX ({text})",
                status=status,
                retry_after=http.retry_after(response),
            )
        if status >= 500:
            return VenueError(
                ErrorKind.SERVER,
                f"{where}: INTX answered HTTP {status} ({text})",
                status=status,
                retry_after=http.retry_after(response),
            )
        if status == 401:
            skew = self.clock_offset
            if "timestamp" in lowered or "expired" in lowered or (skew is not None and abs(skew) > CLOCK_WINDOW):
                off = f"; {describe_skew(skew)}" if skew is not None else ""
                return VenueError(ErrorKind.CLOCK, f"{where}: request timestamp rejected ({text}){off}", status=status)
            if "signature" in lowered:
                return VenueError(
                    ErrorKind.SIGNATURE,
                    f"{where}: signature rejected: check the API secret ({text})",
                    status=status,
                    retryable=False,
                )
            return VenueError(
                ErrorKind.AUTH, f"{where}: key or passphrase not accepted ({text})", status=status, retryable=False
            )
        if status == 403:
            return VenueError(ErrorKind.PERMISSION, f"{where}: the key lacks permission ({text})", status=status)
        if status == 404:
            return VenueError(ErrorKind.NOT_FOUND, f"{where}: not found ({text})", status=status)
        return VenueError(ErrorKind.REQUEST, f"{where}: INTX answered HTTP {status} ({text})", status=status)


def describe_skew(offset: float) -> str:
    """Operator words for a clock offset (venue time minus ours)."""
    direction = "behind" if offset > 0 else "ahead of"
    return f"this machine's clock is {abs(offset):.0f} s {direction} the venue's: check NTP (chrony/timedatectl)"


def error_text(response: httpx.Response) -> str:
    """The first of message / title / error / detail in a JSON error body, else an excerpt of the text."""
    try:
        payload = http.decode_json(response)
    except VenueError:
        payload = None
    if isinstance(payload, Mapping):
        for key in ("message", "title", "error", "detail"):
            value = payload.get(key)
            if isinstance(value, str) and value.strip():
                text = " ".join(redact(value).split())
                return text[:160]
    return http.excerpt(response)


def parse_portfolios(payload: Any) -> list[Account]:
    """GET /portfolios: each portfolio by its portfolio_id (else its UUID), with what else it says of itself."""
    if not isinstance(payload, list):
        raise _shape("portfolios", "a list")
    accounts = []
    for item in payload:
        ids = (item.get("portfolio_id"), item.get("portfolio_uuid")) if isinstance(item, Mapping) else ()
        pid = next((label for label in map(_label, ids) if label), None)
        if pid is None:
            raise _shape("portfolios", "a list of portfolios with ids")
        details = {
            k: str(item[k]).lower() if isinstance(item[k], bool) else str(item[k])
            for k in PORTFOLIO_DETAILS
            if isinstance(item.get(k), (str, bool, int, Decimal))
        }
        accounts.append(Account(pid, str(item.get("name") or pid), details))
    return accounts


def parse_balance(item: Any, where: str) -> Balance:
    if not isinstance(item, Mapping):
        raise _shape(where, "a balance object")
    labels = {name: _label(item.get(name)) for name in LABELS}
    asset = labels["asset_name"] or labels["asset_uuid"] or labels["asset_id"]
    if not asset:
        raise _shape(where, "a balance naming its asset")
    try:
        amounts = {name: parse_amount(item.get(name)) for name in AMOUNTS}
    except AmountError as exc:
        raise VenueError(ErrorKind.BAD_RESPONSE, f"{where}: {asset[:20]}: {exc}") from None
    return Balance(asset, amounts, labels)


def _label(value: object) -> str | None:
    """A label as text, interned: the asset's id, name and uuid recur in every portfolio and every answer, and
    2,000 balances held 6,000 copies of a few hundred strings (issue 24, RSS)."""
    if value is None or isinstance(value, bool):
        return None
    return sys.intern(str(value)) if isinstance(value, (str, int, Decimal)) else None


def _part(value: str, what: str) -> str:
    if not INTX_ID.fullmatch(value):
        raise VenueError(ErrorKind.REQUEST, f"{value[:40]!r} is not a valid INTX {what} id", retryable=False)
    return quote(value, safe="")


def _shape(where: str, expected: str) -> VenueError:
    return VenueError(ErrorKind.BAD_RESPONSE, f"{where}: INTX's answer is not {expected}")
