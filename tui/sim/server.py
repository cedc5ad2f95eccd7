"""The simulator's HTTP server: Kraken custody under /0/private/, INTX under /api/v1/, on 127.0.0.1.

Each request is checked the way the venue checks it (key, signature, nonce or timestamp, passphrase,
rate limit), then answered from the market, unless a fault says otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import decimal
import json
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tui.sim.faults import KRAKEN_ONLY, FaultBoard, FaultKind
from tui.sim.market import USD_MARKETS, Market
from tui.sim.verify import intx_signature_ok, kraken_signature_ok

_WIDE = decimal.Context(prec=200)
_VAULT_ID = re.compile(r"^V[A-Z2-7]{12}[ACEGIKMOQSUWY246]$")
HANG_SECONDS = 120.0


def dumps(obj: Any) -> bytes:
    """JSON with Decimals written as the exact numbers they hold (no float on the way)."""
    return _encode(obj).encode("utf-8")


def _encode(obj: Any) -> str:
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_encode(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(_encode(v) for v in obj) + "]"
    return json.dumps(obj)


def _wire_amount(value: Decimal, as_number: bool) -> Decimal | str:
    """An amount as the venues send it: a decimal string (real traffic), or a JSON number when asked."""
    return value if as_number else format(value, "f")


@dataclass
class KrakenKey:
    secret: str
    last_nonce: int = 0
    seen: set[int] = field(default_factory=set)
    counter: int = 0
    counter_expiry: float = 0.0
    locked_until: float = 0.0  # a temporary lockout: every call of the key refused until then (wall clock)


@dataclass
class IntxKey:
    secret: str
    passphrase: str
    sent: deque[float] = field(default_factory=deque)


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _kraken_error(key: str, message: str, *, null_message: bool = False) -> Reply:
    """Kraken answers errors with HTTP 200; custody endpoints use objects, under `error` or `errors`.

    The custody schema requires `severity`, `errorClass` and `type` and lets `errorMessage` be null. It
    gives no example of `type`: we send the message's first words in CamelCase ("InvalidNonce"), a guess.
    With `null_message` the message is null, as the schema allows: only the class and type say what failed.
    """
    cls, _, text = message.partition(":")
    kind = text.split(":")[0].title().replace(" ", "")
    item = {"severity": "E", "errorClass": cls, "type": kind, "errorMessage": None if null_message else text}
    return Reply(200, dumps({key: [item], "result": None}))


_SIGNED_HEADERS = ("API-Key", "API-Sign", "CB-ACCESS-KEY", "CB-ACCESS-SIGN", "CB-ACCESS-PASSPHRASE")


def _echo(venue: str, headers: Any) -> Reply:
    """A refusal that quotes the request's credentials back: what a client must never pass on unredacted."""
    quoted = " ".join(f"{name}={headers[name]}" for name in _SIGNED_HEADERS if headers.get(name))
    if venue == "kraken":
        return Reply(200, dumps({"error": [f"EGeneral:Invalid arguments: {quoted}"], "result": None}))
    return Reply(400, dumps({"message": f"request refused: {quoted}"}))


def _pair(altname: str, base: str, quote: str) -> dict[str, Any]:
    """An AssetPairs entry with the fields the live venue sends (values plausible, not Kraken's)."""
    return {
        "altname": altname,
        "wsname": f"{altname[:-3]}/{altname[-3:]}",
        "aclass_base": "currency",
        "base": base,
        "aclass_quote": "currency",
        "quote": quote,
        "lot": "unit",
        "cost_decimals": 5,
        "pair_decimals": 5,
        "lot_decimals": 8,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": [[0, 0.4], [10000, 0.35]],
        "fees_maker": [[0, 0.25], [10000, 0.2]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": "0.0001",
        "costmin": "0.5",
        "tick_size": "0.00001",
        "status": "online",
    }


EUR_PER_USD = Decimal("0.92")  # the XBT/EUR market's price, from XBT/USD's: a plausible rate, nothing more
FIAT = {"ZUSD": "USD", "ZEUR": "EUR"}


def _server_time(now: float) -> dict[str, Any]:
    """Time's result, as the docs' example writes it: {"unixtime": 1688669448, "rfc1123": "Thu, 06 Jul 23 ..."}."""
    stamp = datetime.fromtimestamp(int(now), tz=UTC)
    return {"unixtime": int(now), "rfc1123": stamp.strftime("%a, %d %b %y %H:%M:%S +0000")}


def _system_status(now: float) -> dict[str, Any]:
    """SystemStatus's result, as the docs' example: online, the time, no maintenance or emergency announced."""
    stamp = datetime.fromtimestamp(int(now), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"status": "online", "timestamp": stamp, "upcoming_maintenance": [], "emergency": []}


def _ticker_entry(price: Decimal) -> dict[str, Any]:
    """A Ticker entry: every figure a string as Kraken sends them, `c` = [last trade price, its volume]."""
    last = format(price.quantize(Decimal("0.00001")), "f")
    spread = format((price * Decimal("0.0001")).quantize(Decimal("0.00001")), "f")
    ask = format((price + Decimal(spread)).quantize(Decimal("0.00001")), "f")
    bid = format((price - Decimal(spread)).quantize(Decimal("0.00001")), "f")
    return {
        "a": [ask, "1", "1.000"],
        "b": [bid, "2", "2.000"],
        "c": [last, "0.01000000"],
        "v": ["120.50000000", "1520.25000000"],
        "p": [last, last],
        "t": [1500, 21000],
        "l": [bid, bid],
        "h": [ask, ask],
        "o": last,
    }


def kraken_error_key(method: str) -> str:
    """`error` on GetCustodyBalance (its OpenAPI schema), `errors` on the vault calls (the docs' examples)."""
    return "error" if method == "GetCustodyBalance" else "errors"


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def _text4(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.0001")), "f")


TOO_MANY_REQUESTS = "EGeneral:Too many requests"
LOCKOUT = "EGeneral:Temporary lockout"
LOCKOUT_SECONDS = 15 * 60.0  # "about 15 minutes"


def _intx_error(status: int, body: dict[str, Any]) -> Reply:
    return Reply(status, dumps(body))


INTX_PUBLIC = frozenset({"assets", "instruments"})  # INTX's market data: answered without a key


def _trimmed(value: Decimal) -> str:
    """An amount as the recorded summary writes its strings: no trailing zeros, "0" for nothing ("997.5")."""
    return format(value.normalize(_WIDE), "f") if value else "0"


def _number(value: Decimal, places: int | None = None) -> Decimal:
    """A JSON number as the recorded summary writes them: 0 for nothing, else trimmed, or with `places`
    decimals where the recording has them (0.2000000000000000)."""
    if not value:
        return Decimal(0)
    return value.quantize(Decimal(1).scaleb(-places)) if places is not None else Decimal(_trimmed(value))


def _asset_obj(name: str, asset_id: str, asset_uuid: str) -> dict[str, Any]:
    """One item of GET /assets, with the fields of the recorded item of its kind (USDC, or any other asset)."""
    obj: dict[str, Any] = {
        "asset_id": asset_id,
        "asset_uuid": asset_uuid,
        "asset_name": name,
        "status": "ACTIVE",
        "collateral_weight": Decimal("1.0") if name == "USDC" else Decimal("0.9"),
        "supported_networks_enabled": name != "USDC",
    }
    if name == "USDC":
        return obj | {
            "min_borrow_qty": "10",
            "max_borrow_qty": "1000000",
            "loan_collateral_requirement_multiplier": Decimal("1.0"),
            "ecosystem_collateral_limit_breached": False,
            "loan_initial_margin": "0.1",
            "max_loan_leverage": "3",
        }
    return obj | {
        "min_borrow_qty": "0",
        "max_borrow_qty": "0",
        "loan_collateral_requirement_multiplier": Decimal("0.0"),
        "account_collateral_limit": "0",
        "ecosystem_collateral_limit_breached": False,
    }


def _instrument_obj(
    seed: int, n: int, name: str, kind: str, base: tuple[str, str], quote: tuple[str, str], price: Decimal
) -> dict[str, Any]:
    """One item of GET /instruments, with the fields of the recorded instrument of its type (SPOT or PERP) in
    their order; prices on the instrument's tick, written trimmed ("101761.64", "100000") as recorded."""
    spot = kind == "SPOT"
    tick = Decimal("0.01") if spot else Decimal("0.1")
    number = 149264167780483072 + (seed % 1000) * 10**9 + n * 2 + spot
    at = datetime.fromtimestamp(1795276800 + n, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def on_tick(value: Decimal) -> str:
        return _trimmed(value.quantize(tick))

    quote_obj: dict[str, Any] = {}
    if not spot:
        quote_obj |= {"best_bid_price": on_tick(price * Decimal("0.9995")), "best_bid_size": "0.0005"}
        quote_obj |= {"best_ask_price": on_tick(price * Decimal("1.0005")), "best_ask_size": "0.0001"}
    else:
        quote_obj |= {"best_bid_size": "0", "best_ask_size": "0"}
    quote_obj |= {
        "trade_price": on_tick(price),
        "trade_qty": "3" if spot else "0.0005",
        "index_price": on_tick(price),
        "mark_price": on_tick(price),
        "settlement_price": on_tick(price),
        "limit_up": on_tick(price * Decimal("1.05")),
        "limit_down": on_tick(price * Decimal("0.95")),
    }
    if not spot:
        quote_obj["predicted_funding"] = "0.000031"
    quote_obj["timestamp"] = at
    return {
        "instrument_id": str(number),
        "instrument_uuid": str(uuid.UUID(int=random.Random(number).getrandbits(128), version=4)),
        "symbol": f"{name}-USDC" if spot else f"{name}-PERP",
        "type": kind,
        "mode": "STANDARD",
        "base_asset_id": base[0],
        "base_asset_uuid": base[1],
        "base_asset_name": name,
        "quote_asset_id": quote[0],
        "quote_asset_uuid": quote[1],
        "quote_asset_name": "USDC",
        "base_increment": "0.00001" if spot else "0.0001",
        "quote_increment": str(tick),
        "price_band_percent": Decimal("0.02") if spot else Decimal("0.05"),
        "market_order_percent": Decimal("0.0075") if spot else Decimal("0.01"),
        "qty_24hr": "2596.0012",
        "notional_24hr": "256513568.462852",
        "avg_daily_qty": "1292.10431",
        "avg_daily_notional": "130064835.78660826",
        "avg_30day_notional": "3901945073.598248",
        "avg_30day_qty": "38763.1293",
        "previous_day_qty": "2596.0012",
        "open_interest": "0" if spot else "899.6503",
        "position_limit_qty": "0" if spot else "2388.5974",
        "position_limit_adq_pct": Decimal("0.0") if spot else Decimal("1.0"),
        "position_notional_limit": "5000000" if spot else "120000000",
        "open_interest_notional_limit": "26000000" if spot else "300000000",
        "replacement_cost": "0" if spot else "0.19",
        "base_imf": Decimal("1.0") if spot else Decimal("0.1"),
        "min_notional_value": "10",
        "funding_interval": "0" if spot else "3600000000000",
        "trading_state": "TRADING",
        "quote": quote_obj,
        "default_imf": Decimal("1.0") if spot else Decimal("0.2"),
        "base_asset_multiplier": "1.0",
        "underlying_type": "SPOT",
    }


class VenueState:
    """Keys, counters, knobs and statistics; shared by every handler thread."""

    def __init__(self, market: Market, faults: FaultBoard) -> None:
        self.market = market
        self.faults = faults
        self.lock = threading.Lock()
        self.kraken_keys: dict[str, KrakenKey] = {}
        self.intx_keys: dict[str, IntxKey] = {}
        self.kraken_rate_limit = True
        self.kraken_nonce_window = 0
        self.intx_rate_limit = 40
        self.intx_numbers = False
        self.kraken_numbers = False
        self.kraken_null_messages = False
        self.kraken_page_cap = 1000  # the most vaults one ListCustodyVaults page holds, whatever was asked
        self.clock: Callable[[], float] = time.time
        self.stats: Counter[tuple[str, str, str]] = Counter()
        self.kraken_nonce_log: list[int] = []
        self.signatures: deque[str] = deque(maxlen=1000)  # every API-Sign / CB-ACCESS-SIGN presented
        self.stopping = threading.Event()

    def count(self, venue: str, endpoint: str, verdict: str) -> None:
        with self.lock:
            self.stats[(venue, endpoint, verdict)] += 1

    # --- Kraken -------------------------------------------------------------------------------

    def kraken(self, method: str, uri_path: str, query: str, headers: Any, body: bytes) -> Reply:
        key_name = headers.get("API-Key", "")
        key = self.kraken_keys.get(key_name)
        if key is None:
            return self._kraken_refuse(method, "bad-key", "EAPI:Invalid key")
        if self.clock() < key.locked_until:
            return self._kraken_refuse(method, "locked-out", LOCKOUT)
        try:
            payload = json.loads(body, parse_float=Decimal)
        except ValueError:
            return self._kraken_refuse(method, "bad-request", "EGeneral:Invalid arguments:body")
        nonce = payload.get("nonce") if isinstance(payload, dict) else None
        # The custody schema types the nonce as an int64. What the venue does with a nonce sent as a JSON
        # string (python-kraken-sdk sends one) is not documented: we refuse it, as the schema suggests.
        if type(nonce) is not int:
            return self._kraken_refuse(method, "bad-nonce", "EAPI:Invalid nonce")
        if not kraken_signature_ok(key.secret, uri_path, str(nonce), body, headers.get("API-Sign", "")):
            return self._kraken_refuse(method, "bad-signature", "EAPI:Invalid signature")
        now = time.monotonic()
        with self.lock:
            fresh = nonce > key.last_nonce or (
                self.kraken_nonce_window > 0
                and nonce > key.last_nonce - self.kraken_nonce_window
                and nonce not in key.seen
            )
            if not fresh:
                verdict = "bad-nonce"
            else:
                key.seen.add(nonce)
                if len(key.seen) > 4096:
                    key.seen = {n for n in key.seen if n > key.last_nonce - self.kraken_nonce_window}
                key.last_nonce = max(key.last_nonce, nonce)
                self.kraken_nonce_log.append(nonce)
                verdict = "ok"
                if self.kraken_rate_limit:
                    if now >= key.counter_expiry:
                        key.counter = 0
                    key.counter_expiry = now + 10.0
                    if key.counter >= 10:
                        verdict = "rate-limited"
                    else:
                        key.counter += 1
        if verdict == "bad-nonce":
            return self._kraken_refuse(method, verdict, "EAPI:Invalid nonce")
        if verdict == "rate-limited":
            return self._kraken_refuse(method, verdict, "EAPI:Rate limit exceeded")
        return self._kraken_answer(method, payload, query)

    def throttle(self, venue: str, method: str, kind: FaultKind, value: object, api_key: str) -> Reply:
        """One of Kraken's throttles, in the form the endpoint's errors take. A lockout starts the key's lockout
        (an unknown key has none to start), which outlives the fault: the venue keeps it for its time."""
        seconds = float(value) if isinstance(value, (int, float)) else None
        if kind is FaultKind.TOO_MANY_REQUESTS:
            message = TOO_MANY_REQUESTS
        elif kind is FaultKind.THROTTLED:
            message = f"EService:Throttled: {int(self.clock() + (60.0 if seconds is None else seconds))}"
        else:
            message = LOCKOUT
            key = self.kraken_keys.get(api_key) if venue == "kraken" else None
            if key is not None:
                with self.lock:
                    key.locked_until = self.clock() + (LOCKOUT_SECONDS if seconds is None else seconds)
        if venue == "prices":
            return Reply(200, dumps({"error": [message]}))
        return _kraken_error(kraken_error_key(method), message, null_message=self.kraken_null_messages)

    def _kraken_amount(self, value: Decimal) -> Decimal | str:
        """Decimal strings, as the custody docs give them; JSON numbers when asked (seen on other endpoints)."""
        return _wire_amount(value, self.kraken_numbers)

    def _k(self, method: str, verdict: str, reply: Reply) -> Reply:
        self.count("kraken", method, verdict)
        return reply

    def _kraken_refuse(self, method: str, verdict: str, message: str) -> Reply:
        reply = _kraken_error(kraken_error_key(method), message, null_message=self.kraken_null_messages)
        return self._k(method, verdict, reply)

    def _kraken_answer(self, method: str, payload: dict[str, Any], query: str) -> Reply:
        market = self.market
        extra: dict[str, Any] = {}
        with market.lock:
            if method == "GetCustodyBalance":
                vault = market.vaults.get(str(payload.get("vault_id", "")))
                if vault is None or not _VAULT_ID.match(vault.id):
                    return self._kraken_refuse(method, "bad-request", "EGeneral:Invalid arguments:vault_id")
                result: Any = {
                    asset: {name: self._kraken_amount(value) for name, value in h.items()}
                    for asset, h in vault.holdings.items()
                }
            elif method == "ListCustodyVaults":
                page = self._vault_page(payload.get("pagination"))
                if page is None:
                    return self._kraken_refuse(method, "bad-request", "EGeneral:Invalid arguments:pagination")
                offset, limit = page
                everything = list(market.vaults.values())
                result = [self._vault_obj(v) for v in everything[offset : offset + limit]]
                # The docs' example answers one vault with "start": 1: we take `start` to count from 1.
                extra = {"start": offset + 1, "total": len(everything)}
            elif method == "GetCustodyVault":
                vault = market.vaults.get((parse_qs(query).get("id") or [""])[0])
                if vault is None:
                    return self._kraken_refuse(method, "bad-request", "EGeneral:Invalid arguments:id")
                result = self._vault_obj(vault, details=self._asset_details(vault))
            else:
                return self._kraken_refuse(method, "unknown-method", "EGeneral:Unknown method")
        self.count("kraken", method, "ok")
        if method == "ListCustodyVaults":  # the docs' example puts `result` first, `start`/`total` last
            return Reply(200, dumps({"result": result, kraken_error_key(method): [], **extra}))
        return Reply(200, dumps({kraken_error_key(method): [], "result": result}))

    def _vault_page(self, pagination: Any) -> tuple[int, int] | None:
        """(offset, limit) from `pagination: {limit 1..1000, offset}`; None when it is malformed.

        Without pagination the page size is not documented; we answer up to `kraken_page_cap` vaults.
        """
        if pagination is None:
            return 0, self.kraken_page_cap
        if not isinstance(pagination, dict):
            return None
        offset, limit = pagination.get("offset", 0), pagination.get("limit", self.kraken_page_cap)
        if type(offset) is not int or type(limit) is not int or offset < 0 or not 1 <= limit <= 1000:
            return None
        return offset, min(limit, self.kraken_page_cap)

    def _vault_obj(self, vault: Any, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A vault as the docs' examples show one: in ListCustodyVaults with `otc_enabled`, in GetCustodyVault
        with its `asset_details` after `count_assets` and no `otc_enabled`."""
        total, available = self._vault_values(vault)
        obj = {
            "id": vault.id,
            "name": vault.name,
            "description": f"{vault.name} (simulated)",
            "created_at": str(vault.created_at),
            "updated_at": str(vault.created_at),
            "balance_fiat": _text4(total),
            "balance_diff": "0",
            "available_balance_fiat": _text4(available),
            "count_assets": len(vault.holdings),
            "status": vault.status,
            "iiban": "AA88 N84G " + vault.id[1:5] + " " + vault.id[5:9],
            "deposit_lock_rekeying_only": False,
        }
        if details is None:
            obj["otc_enabled"] = False
            return obj
        order = list(obj)
        order.insert(order.index("count_assets") + 1, "asset_details")
        return {key: details if key == "asset_details" else obj[key] for key in order}

    def _vault_values(self, vault: Any) -> tuple[Decimal, Decimal]:
        total = available = Decimal(0)
        for asset, h in vault.holdings.items():
            price = self._kraken_price(asset)
            total += h["balance"] * price
            available += (h["balance"] - h["hold_trade"]) * price
        return total, available

    def _kraken_price(self, asset: str) -> Decimal:
        return self.market.kraken_price(asset)

    def _asset_details(self, vault: Any) -> list[dict[str, Any]]:
        """GetCustodyVault's `asset_details`, shaped as the docs' example (values in USD to the cent)."""
        details = []
        for asset, h in vault.holdings.items():
            price = self._kraken_price(asset)
            available = h["balance"] - h["hold_trade"]
            details.append(
                {
                    "asset": asset,
                    "current_usd_price": self._kraken_amount(price),
                    "available_balance": {
                        "current_usd_value": self._kraken_amount(_cents(available * price)),
                        "quantity": self._kraken_amount(available),
                    },
                    "total_balance": {
                        "current_usd_value": self._kraken_amount(_cents(h["balance"] * price)),
                        "quantity": self._kraken_amount(h["balance"]),
                    },
                }
            )
        return details

    # --- Kraken's public market data -------------------------------------------------------------

    def public(self, method: str, query: str, skew: float = 0.0) -> Reply:
        """Assets, AssetPairs, Ticker, Time and SystemStatus as Kraken serves them (no key; per-IP limits are
        not modelled), shaped as the docs' examples and the recordings (tests/recordings/README.txt)."""
        if method == "Assets":
            reply = Reply(200, dumps({"error": [], "result": self._assets()}))
        elif method == "AssetPairs":
            reply = Reply(200, dumps({"error": [], "result": self._asset_pairs()}))
        elif method == "Ticker":
            reply = self._ticker((parse_qs(query).get("pair") or [""])[0])
        elif method == "Time":
            reply = Reply(200, dumps({"error": [], "result": _server_time(self.clock() + skew)}))
        elif method == "SystemStatus":
            reply = Reply(200, dumps({"error": [], "result": _system_status(self.clock() + skew)}))
        else:
            reply = Reply(200, dumps({"error": ["EGeneral:Unknown method"]}))
        self.count("prices", method, "ok" if reply.status == 200 and b'"error":[]' in reply.body else "refused")
        return reply

    def _markets(self) -> dict[str, tuple[str, str, str, Decimal]]:
        """Every pair the venue lists: name -> (altname, base, quote, last trade). The USD markets of the assets
        with one, and, as on the real venue, markets quoted in something else that a USD pricer passes over.
        Ticker quotes every one of them: a listed pair is never refused."""
        with self.market.lock:
            prices = dict(self.market.prices)
        markets: dict[str, tuple[str, str, str, Decimal]] = {}
        for asset, price in prices.items():
            name, base, altname = USD_MARKETS.get(asset) or (f"{asset}USD", asset, f"{asset}USD")
            markets[name] = (altname, base, "ZUSD", price)
        if "XBT" in prices:
            xbt = prices["XBT"]
            if "ETH" in prices and xbt:
                markets["XETHXXBT"] = ("ETHXBT", "XETH", "XXBT", prices["ETH"] / xbt)
            markets["XXBTZEUR"] = ("XBTEUR", "XXBT", "ZEUR", xbt * EUR_PER_USD)
        return markets

    def _asset_pairs(self) -> dict[str, Any]:
        return {name: _pair(altname, base, quote) for name, (altname, base, quote, _) in self._markets().items()}

    def _assets(self) -> dict[str, Any]:
        """Every asset the listed pairs name, keyed by Kraken's spot code (XXBT, ZUSD...) with its custody
        spelling as `altname`, as the docs' example of Get Asset Info shows them."""
        assets: dict[str, Any] = {}
        for altname, base, quote, _ in self._markets().values():
            for code in (base, quote):
                assets.setdefault(code, self._asset_info(code, altname if code == base else None))
        return dict(sorted(assets.items()))

    def _asset_info(self, code: str, altname: str | None) -> dict[str, Any]:
        if code in FIAT:
            name, decimals, shown = FIAT[code], 4, 2
        else:
            base = altname.removesuffix("USD") if altname else code
            spec = self.market.kraken_spec(base)
            name, decimals, shown = base, spec.kraken_dp if spec else 8, 5
        return {
            "aclass": "currency",
            "altname": name,
            "decimals": decimals,
            "display_decimals": shown,
            "collateral_value": 1,
            "status": "enabled",
        }

    def _ticker(self, asked: str) -> Reply:
        """Each asked pair (by name or altname) keyed by its name, every listed pair when none is named (as
        Kraken does); one unknown pair fails the whole request."""
        markets = self._markets()
        by_any = {key: name for name, (altname, *_) in markets.items() for key in (name, altname)}
        names = [by_any.get(pair) for pair in filter(None, asked.split(","))] if asked else list(markets)
        if None in names:
            return Reply(200, dumps({"error": ["EQuery:Unknown asset pair"]}))
        result = {name: _ticker_entry(markets[name][3]) for name in names if name is not None}
        return Reply(200, dumps({"error": [], "result": result}))

    # --- INTX ---------------------------------------------------------------------------------

    def intx(self, path: str, headers: Any, body: bytes, skew: float) -> tuple[str, Reply]:
        endpoint, handler = self._intx_route(path)
        if endpoint in INTX_PUBLIC:  # market data: no key asked for, none checked (per-IP limits not modelled)
            return endpoint, handler()
        key = self.intx_keys.get(headers.get("CB-ACCESS-KEY", ""))
        if key is None:
            return endpoint, self._i(endpoint, "bad-key", _intx_error(401, {"message": "invalid API key"}))
        timestamp = headers.get("CB-ACCESS-TIMESTAMP", "")
        if not timestamp.isdigit():
            return endpoint, self._i(
                endpoint,
                "bad-timestamp",
                _intx_error(400, {"title": "Bad Request", "status": 400, "detail": "invalid timestamp"}),
            )
        if abs(int(timestamp) - (self.clock() + skew)) > 5:
            return endpoint, self._i(
                endpoint, "bad-timestamp", _intx_error(401, {"message": "request timestamp expired"})
            )
        if not intx_signature_ok(key.secret, timestamp, "GET", path, body, headers.get("CB-ACCESS-SIGN", "")):
            return endpoint, self._i(endpoint, "bad-signature", _intx_error(401, {"message": "invalid signature"}))
        if headers.get("CB-ACCESS-PASSPHRASE", "") != key.passphrase:
            return endpoint, self._i(
                endpoint, "bad-passphrase", _intx_error(401, {"title": "Unauthorized", "error": "invalid passphrase"})
            )
        now = time.monotonic()
        with self.lock:
            while key.sent and now - key.sent[0] >= 1.0:
                key.sent.popleft()
            limited = self.intx_rate_limit > 0 and len(key.sent) >= self.intx_rate_limit
            if not limited:
                key.sent.append(now)
        if limited:
            return endpoint, self._i(
                endpoint,
                "rate-limited",
                _intx_error(429, {"message": "Too many requests, rate limit is 100 per second"}),
            )
        return endpoint, handler()

    def _i(self, endpoint: str, verdict: str, reply: Reply) -> Reply:
        self.count("intx", endpoint, verdict)
        return reply

    def intx_endpoint(self, path: str) -> str:
        return self._intx_route(path)[0]

    def _intx_route(self, path: str) -> tuple[str, Callable[[], Reply]]:
        parts = path.strip("/").split("/")[2:]  # after api/v1
        if parts == ["portfolios"]:
            return "portfolios", self._portfolios
        if parts == ["assets"]:
            return "assets", self._assets_list
        if parts == ["instruments"]:
            return "instruments", self._instruments
        if len(parts) == 2 and parts[0] == "portfolios":
            return "portfolio", lambda: self._with_portfolio("portfolio", parts[1], self._portfolio_of)
        if len(parts) >= 3 and parts[0] == "portfolios":
            ref, rest = parts[1], parts[2:]
            if rest == ["balances"]:
                return "balances", lambda: self._with_portfolio("balances", ref, self._balances)
            if len(rest) == 2 and rest[0] == "balances":
                return "balance", lambda: self._with_portfolio("balance", ref, lambda p: self._balance(p, rest[1]))
            if rest == ["summary"]:
                return "summary", lambda: self._with_portfolio("summary", ref, self._summary)
            if rest == ["detail"]:
                return "detail", lambda: self._with_portfolio("detail", ref, self._detail)
        return "unknown", lambda: self._i(
            "unknown", "not-found", _intx_error(404, {"title": "Not Found", "status": 404})
        )

    def _portfolios(self) -> Reply:
        with self.market.lock:
            items = [self._portfolio_obj(i, p) for i, p in enumerate(self.market.portfolios.values())]
        self.count("intx", "portfolios", "ok")
        return Reply(200, dumps(items))

    def _portfolio_of(self, portfolio: Any) -> dict[str, Any]:
        """GET /portfolios/{portfolio}: the same object the list holds (the docs show one shape for both)."""
        return self._portfolio_obj(list(self.market.portfolios).index(portfolio.id), portfolio)

    @staticmethod
    def _portfolio_obj(index: int, p: Any) -> dict[str, Any]:
        """A portfolio with exactly the fields of the recorded one (nautilus_trader's http_get_portfolios):
        Coinbase's own SDK builds its Portfolio from them and refuses a missing or an unknown field. A `newer`
        portfolio adds the two flags that SDK also models: `margin_call_enabled` (where its model puts it) and
        `disable_overdraft_protection` (last, where the docs' example has it)."""
        obj: dict[str, Any] = {
            "portfolio_id": p.id,
            "portfolio_uuid": p.uuid,
            "name": p.name,
            "user_uuid": p.user_uuid,
            "maker_fee_rate": "-0.0001",
            "taker_fee_rate": "0.00012",
            "trading_lock": False,
            "withdrawal_lock": False,
            "borrow_disabled": False,
            "is_lsp": False,
            "is_default": index == 0,
            "cross_collateral_enabled": True,
            "auto_margin_enabled": index == 0,
            "pre_launch_trading_enabled": False,
            "position_offsets_enabled": False,
        }
        if p.newer:
            obj["margin_call_enabled"] = index == 0
        obj["close_only"] = False
        obj["forced_liquidation"] = p.in_liquidation
        if p.newer:
            obj["disable_overdraft_protection"] = False
        return obj

    def _assets_list(self) -> Reply:
        """GET /assets (public): each asset with the fields of the recorded list (nautilus_trader's
        http_get_assets): USDC, which can be borrowed, as the recorded USDC; the others as the recorded BTC.
        The ids are the ones this endpoint shows, not the balances' (recorded: "1" here, "0-0-1" there)."""
        market = self.market
        with market.lock:
            names = list(market.intx_specs)
        items = [_asset_obj(name, market.public_ids[name], market.asset_ids[name][1]) for name in names]
        self.count("intx", "assets", "ok")
        return Reply(200, dumps(items))

    def _instruments(self) -> Reply:
        """GET /instruments (public): a perpetual for each asset but the dollars, and BTC and ETH spot against
        USDC, each with the fields of the recorded one of its type (nautilus_trader's http_get_instruments)."""
        market = self.market
        with market.lock:
            names = [n for n in market.intx_specs if n not in ("USDC", "USD")]
            prices = {n: market.price(n) for n in names}
        usdc = (market.public_ids["USDC"], market.asset_ids["USDC"][1]) if "USDC" in market.public_ids else ("1", "")
        items = []
        for n, name in enumerate(names):
            base = (market.public_ids[name], market.asset_ids[name][1])
            kinds = ("SPOT", "PERP") if name in ("BTC", "ETH") else ("PERP",)
            items += [_instrument_obj(market.seed, n, name, kind, base, usdc, prices[name]) for kind in kinds]
        self.count("intx", "instruments", "ok")
        return Reply(200, dumps(items))

    def _with_portfolio(self, endpoint: str, ref: str, answer: Callable[[Any], Any]) -> Reply:
        portfolio = self.market.find_portfolio(ref)
        if portfolio is None:
            return self._i(
                endpoint, "not-found", _intx_error(404, {"title": "Not Found", "error": "portfolio not found"})
            )
        with self.market.lock:
            result = answer(portfolio)
        if isinstance(result, Reply):
            return result
        self.count("intx", endpoint, "ok")
        return Reply(200, dumps(result))

    def _balance_obj(self, asset: str, holding: dict[str, Decimal | None]) -> dict[str, Any]:
        asset_id, asset_uuid = self.market.asset_ids.get(asset, ("0", "00000000-0000-0000-0000-000000000000"))
        obj: dict[str, Any] = {"asset_id": asset_id, "asset_name": asset, "asset_uuid": asset_uuid}
        # The venue's own field list, deliberately not imported from the client: a typo on either side
        # then shows up as a missing field in the tests instead of being agreed on by both.
        order = (
            "quantity",
            "hold",
            "hold_available_for_collateral",
            "transfer_hold",
            "collateral_value",
            "max_withdraw_amount",
            "loan",
            "loan_collateral_requirement",
            "pledged_collateral_quantity",
            "loan_initial_margin_contribution",
            "collateral_backed_overdraft_loan",
            "user_requested_loan",
            "unreconciled_amount",
            "max_undelegate_amount",
        )
        for name in order:
            value = holding.get(name)
            if value is None:
                continue
            obj[name] = _wire_amount(value, self.intx_numbers)
        return obj

    def _balances(self, portfolio: Any) -> list[dict[str, Any]]:
        return [self._balance_obj(a, h) for a, h in portfolio.holdings.items()]

    def _balance(self, portfolio: Any, ref: str) -> Any:
        asset = self.market.find_intx_asset(portfolio, ref)
        if asset is None:
            return self._i("balance", "not-found", _intx_error(404, {"message": f"asset {ref} not found"}))
        return self._balance_obj(asset, portfolio.holdings[asset])

    def _summary(self, portfolio: Any) -> dict[str, Any]:
        """The fields of the recorded summary (nautilus_trader's http_get_portfolios_summary), in its order and
        written as it writes them: amounts as trimmed strings ("997.5", "0"), margins and notionals as JSON
        numbers (some with 16 places), `in_liquidation` a bool. A `newer` portfolio adds the two notionals
        Coinbase's SDK models: `unrealized_pnl_notional` after `in_liquidation`, and
        `total_allocated_initial_margin_notional` last."""
        zero = Decimal(0)
        collateral = sum(((h.get("collateral_value") or zero) for h in portfolio.holdings.values()), zero)
        value = sum(((h.get("quantity") or zero) * self.market.price(a) for a, h in portfolio.holdings.items()), zero)
        loans = sum(((h.get("loan_collateral_requirement") or zero) for h in portfolio.holdings.values()), zero)
        im = (loans * Decimal("0.5")).quantize(Decimal("0.0001"))
        summary: dict[str, Any] = {
            "collateral": _trimmed(collateral),
            "unrealized_pnl": "0",
            "unrealized_pnl_percent": "0",
            "position_notional": "0",
            "open_position_notional": "0",
            "pending_fees": "0",
            "borrow": _trimmed(loans),
            "accrued_interest": "0",
            "rolling_debt": "0",
            "balance": _trimmed(value.quantize(Decimal("0.0001"))),
            "buying_power": _trimmed(max(zero, collateral - im)),
            "portfolio_initial_margin": _number(Decimal("0.1"), 16),
            "portfolio_current_margin": _number(Decimal("0.08")),
            "portfolio_maintenance_margin": _number(Decimal("0.05"), 16),
            "portfolio_close_out_margin": _number(Decimal("0.03")),
            "in_liquidation": portfolio.in_liquidation,
        }
        if portfolio.newer:
            summary["unrealized_pnl_notional"] = _number(zero)
        summary |= {
            "portfolio_initial_margin_notional": _number(im),
            "portfolio_current_margin_notional": _number(im),
            "portfolio_maintenance_margin_notional": _number((im / 2).quantize(Decimal("0.0001"))),
            "portfolio_close_out_margin_notional": _number((im / 4).quantize(Decimal("0.0001"))),
            "margin_override": _number(zero, 16),
            "lock_up_initial_margin": _number(zero, 16),
            "loan_collateral_requirement": _trimmed(loans),
            "position_offset_notional": _number(zero),
        }
        if portfolio.newer:
            summary["total_allocated_initial_margin_notional"] = _number(im)
        return summary

    def _detail(self, portfolio: Any) -> dict[str, Any]:
        return {"summary": self._summary(portfolio), "balances": self._balances(portfolio), "positions": []}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default backlog of 5 makes a burst of connections wait for SYN retries
    state: VenueState

    def __init__(self, address: tuple[str, int], state: VenueState) -> None:
        self.state = state
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        self.tracking = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), name="sim-conn", daemon=True
        )
        with self.tracking:
            self.threads = {t for t in self.threads if t.is_alive()}
            self.threads.add(thread)
            self.connections.add(request)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is normal traffic, not a traceback on stderr."""

    def shutdown_request(self, request: Any) -> None:
        with self.tracking:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.tracking:
            connections, threads = list(self.connections), list(self.threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else keep-alive answers arrive ~44 ms late (delayed ACK)
    timeout = 60
    server: _Server
    _skew = 0.0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(self.server.state.clock() + self._skew, usegmt=True)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        decimal.setcontext(_WIDE)  # this connection's thread: sums of 38-digit holdings stay exact
        state = self.server.state
        for name in ("API-Sign", "CB-ACCESS-SIGN"):
            if self.headers.get(name):
                state.signatures.append(self.headers[name])
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.path.startswith("/0/private/"):
            venue, endpoint = "kraken", url.path.rsplit("/", 1)[-1]
        elif url.path.startswith("/0/public/"):
            venue, endpoint = "prices", url.path.rsplit("/", 1)[-1]
        elif url.path.startswith("/api/v1/"):
            venue, endpoint = "intx", state.intx_endpoint(url.path)
        else:
            self._reply(Reply(404, b'{"error":"not found"}'))
            return
        latency, skew, fault = state.faults.draw(venue, endpoint)
        self._skew = skew
        if latency and state.stopping.wait(latency):
            return
        if fault is not None and self._disrupt(venue, endpoint, fault):
            return
        if venue == "kraken":
            reply = state.kraken(endpoint, self.path, url.query, self.headers, body)
        elif venue == "prices":
            reply = state.public(endpoint, url.query, skew)
        else:
            endpoint, reply = state.intx(url.path, self.headers, body, skew)
        if fault is not None and fault.kind is FaultKind.EMPTY and reply.status == 200:
            reply = self._emptied(venue, reply)
        if fault is not None and fault.kind is FaultKind.TRUNCATED:
            reply = Reply(reply.status, reply.body[: max(1, len(reply.body) // 2)])
        self._reply(reply)

    def _disrupt(self, venue: str, endpoint: str, fault: Any) -> bool:
        """Answer with the fault instead of the venue; False for faults that alter a real answer."""
        state = self.server.state
        kind = fault.kind
        if kind in (FaultKind.EMPTY, FaultKind.TRUNCATED):
            state.count(venue, endpoint, f"fault:{kind.value}")
            return False
        state.count(venue, endpoint, f"fault:{kind.value}")
        if kind is FaultKind.HTTP_5XX:
            status = int(fault.value or 503)
            self._reply(
                Reply(
                    status,
                    dumps(
                        {"message": "Service Unavailable"} if venue == "intx" else {"error": ["EService:Unavailable"]}
                    ),
                )
            )
        elif kind is FaultKind.RATE_429:
            self._reply(Reply(429, dumps({"message": "Too many requests, rate limit is 100 per second"})))
        elif kind is FaultKind.RATE_429_RETRY_AFTER:
            self._reply(
                Reply(
                    429,
                    dumps({"title": "Too Many Requests", "status": 429}),
                    headers={"Retry-After": str(int(float(fault.value or 2)))},
                )
            )
        elif kind is FaultKind.HTML:
            page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
            self._reply(Reply(502, page, content_type="text/html"))
        elif kind is FaultKind.RESET:
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        elif kind is FaultKind.HANG:
            state.stopping.wait(HANG_SECONDS)
            self.close_connection = True
        elif kind is FaultKind.ECHO:
            self._reply(_echo(venue, self.headers))
        elif kind is FaultKind.KRAKEN_ERROR:
            message = str(fault.value or "EService:Unavailable")
            self._reply(Reply(200, dumps({"error": [message], "errors": [], "result": None})))
        elif kind in KRAKEN_ONLY:
            self._reply(state.throttle(venue, endpoint, kind, fault.value, self.headers.get("API-Key", "")))
        return True

    def _emptied(self, venue: str, reply: Reply) -> Reply:
        """The same answer with nothing in it: an empty result, or an empty list or object."""
        payload = json.loads(reply.body)
        if venue in ("kraken", "prices"):
            listed = isinstance(payload.get("result"), list)
            payload["result"] = [] if listed else {}
            if listed:
                payload["total"] = 0
            return Reply(200, dumps(payload))
        return Reply(200, b"[]" if isinstance(payload, list) else b"{}")

    def _reply(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True


def start_server(state: VenueState, host: str = "127.0.0.1", port: int = 0) -> tuple[_Server, threading.Thread]:
    server = _Server((host, port), state)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="sim-server", daemon=True
    )
    thread.start()
    return server, thread


def demo_secret(seed: int, label: str) -> str:
    """A deterministic base64 secret for the demo keys (64 bytes, like Kraken's)."""
    import hashlib

    raw = hashlib.sha512(f"balance-tui-sim:{seed}:{label}".encode()).digest()
    return base64.b64encode(raw).decode("ascii")
