"""Kraken custody: signing, nonces, the custody rate counter, and the calls a monitor makes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from tui.credentials import Secret, redact, remember_signature
from tui.money import Account, AmountError, Balance, parse_amount, sub
from tui.venues import KRAKEN_AMOUNTS, http
from tui.venues.base import require_base64_secret
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.ledger import KeyBusy, KeyLedger, ledger_at
from tui.venues.nonces import NonceSource, nonce_source_for

if TYPE_CHECKING:
    from tui.venues.kraken_vault import VaultDetails

KIND = "kraken-custody"
DEFAULT_BASE_URL = "https://api.kraken.com"
FIELDS = KRAKEN_AMOUNTS
VAULT_ID = re.compile(r"^V[A-Z2-7]{12}[ACEGIKMOQSUWY246]$")
LOCKOUT_SECONDS = 15 * 60.0
SHARED_VAULTS_SECONDS = 600.0  # a vault list another process made this recently is used as it is
QUEUE_PAUSE = 0.05  # how often a call waiting behind others in the key's queue looks again
_TURN: contextvars.ContextVar[str | None] = contextvars.ContextVar("kraken_turn", default=None)  # the task's place
MAX_PAGES = 1000  # of ListCustodyVaults: a venue that ignored the offset would otherwise be asked forever


def sign(secret_b64: str, uri_path: str, nonce: int, body: bytes) -> str:
    """API-Sign = b64(HMAC-SHA512(b64decode(secret), uri_path + SHA256(str(nonce) + body)))."""
    key = base64.b64decode(secret_b64, validate=True)
    digest = hashlib.sha256(str(nonce).encode("ascii") + body).digest()
    mac = hmac.new(key, uri_path.encode("utf-8") + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode("ascii")


def encode_body(payload: Mapping[str, object]) -> bytes:
    """The exact bytes that are signed and sent: compact JSON, serialised once."""
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


class CustodyCounter:
    """Our model of Kraken's custody counter for one key.

    Each call adds 1 (max `limit`); the counter drops to 0 once `window` seconds pass with no call, and
    every call restarts that wait. The venue counts a call somewhere between our sending it and its
    answer arriving, so a call's time is the moment its answer came (`settle`): our idea of "last call" is
    never earlier than the venue's, however slow the answer. `margin` is a little more on top.
    """

    def __init__(self, limit: int = 10, window: float = 10.0, margin: float = 0.5, clock: Any = time.monotonic):
        self.limit = limit
        self.window = window
        self.margin = margin
        self._clock = clock
        self._count = 0
        self._last: float | None = None
        self.waited = 0.0  # seconds callers have spent in `acquire`, waiting for the counter to allow a call

    def level(self, now: float | None = None) -> int:
        now = self._clock() if now is None else now
        if self._last is None or now - self._last >= self.window + self.margin:
            return 0
        return self._count

    def delay_for(self, calls: int = 1, now: float | None = None) -> float:
        """Seconds until `calls` more calls fit without crossing the limit."""
        now = self._clock() if now is None else now
        if self._last is None or self.level(now) + calls <= self.limit:
            return 0.0
        return max(0.0, self._last + self.window + self.margin - now)

    def record(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        self._count = self.level(now) + 1
        self._last = now

    def settle(self, now: float | None = None) -> None:
        """The answer to the last call came (or the call failed): the venue counted it by now."""
        if self._last is not None:
            self._last = max(self._last, self._clock() if now is None else now)

    def saturate(self, now: float | None = None) -> None:
        """The venue said we are over the limit: believe it and wait out a full window."""
        self._count = self.limit
        self._last = self._clock() if now is None else now

    def state(self) -> dict[str, float | int | None]:
        """What it counts, for the key's ledger (times on this counter's clock: the wall clock when shared)."""
        return {"count": self._count, "last": self._last}

    def load(self, state: object) -> None:
        """What the key's ledger says every process together has spent. A time ahead of the clock by more
        than a window (a clock stepped back) or anything unreadable counts as nothing spent."""
        count, last = (state.get("count"), state.get("last")) if isinstance(state, dict) else (None, None)
        if not isinstance(count, int) or not isinstance(last, (int, float)) or isinstance(count, bool):
            self._count, self._last = 0, None
            return
        if last > self._clock() + self.window:
            self._count, self._last = 0, None
            return
        self._count, self._last = max(0, min(count, self.limit)), float(last)  # ok-float: a time

    async def acquire(self) -> None:
        while (delay := self.delay_for(1)) > 0:
            started = self._clock()
            await asyncio.sleep(delay)
            self.waited += self._clock() - started
        self.record()


class KrakenCustodyClient:
    """Signed calls to Kraken custody for one key.

    Calls for the key are signed and sent one at a time, in nonce order, and never past the custody
    counter: concurrent callers queue rather than overtake each other on the wire. With the key's ledger
    (its nonces kept on disk), that holds across every balance-tui process on this machine: a call takes
    its nonce, is sent and is answered while it holds the key, and the counter is the one every process
    spends; a pause Kraken imposed (a lockout, a throttle until a time) is kept there for all of them.
    """

    kind = KIND

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: Secret,
        api_secret: Secret,
        *,
        counter: CustodyCounter | None = None,
        nonces: NonceSource | None = None,
        keep_nonces: bool = True,
        ledger: KeyLedger | None = None,
    ) -> None:
        """`keep_nonces`: the key's last nonce is kept on disk, in its ledger (not for the demo's throwaway
        keys). A counter or a nonce source given here is this process's own: no ledger is shared then, unless
        one is given too (the tests play two processes in one)."""
        self._client = client
        self._api_key = api_key
        self._api_secret = api_secret
        self._nonces = nonces if nonces is not None else nonce_source_for(api_key, keep=keep_nonces)
        store = self._nonces.store if counter is None and nonces is None else None
        self.ledger = ledger if ledger is not None else ledger_at(store) if store is not None else None
        # shared, the counter keeps the wall clock: the one clock every process reads alike
        clock = time.time if self.ledger else time.monotonic
        self.counter = counter if counter is not None else CustodyCounter(clock=clock)
        self._lane = asyncio.Lock()
        self._url = str(client.base_url)
        require_base64_secret(api_secret, "Kraken's API key page")

    async def discover(self, *, fresh: bool = False) -> list[Account]:
        """The key's vaults: as another process on this machine listed them within SHARED_VAULTS_SECONDS (a
        `--once` from cron then spends 3 calls of Kraken's 10, not 4), else listed now and kept for the others.
        `fresh`: listed now whatever the others know (`config check` proves the key with it)."""
        if self.ledger is not None and not fresh:
            shared = _shared_vaults(self.ledger.venue(self._url), time.time())
            if shared is not None:
                return shared
        vaults = await self.list_vaults()
        if self.ledger is not None:
            with contextlib.suppress(KeyBusy):
                await self.ledger.hold(say_who=False, patience=5.0)
                try:
                    listed = [{"id": v.id, "name": v.name, "details": dict(v.details)} for v in vaults]
                    self.ledger.update_venue(self._url, vaults={"at": time.time(), "list": listed})
                finally:
                    self.ledger.release()
        return vaults

    async def fetch(self, account_id: str) -> list[Balance]:
        return await self.balances(account_id)

    def delay_for(self, calls: int) -> float:
        """Seconds until `calls` calls fit in what the key has left (every process's calls counted)."""
        if self.ledger is not None:
            shared = self.ledger.venue(self._url)
            self.counter.load(shared.get("counter"))
            paused = _paused(shared, time.time())
            if paused is not None:
                return max(paused[0], self.counter.delay_for(calls))
        return self.counter.delay_for(calls)

    def key_state(self) -> str | None:
        """The key's ledger in a line, for `config check`: its last nonce, Kraken's counter, other pollers."""
        if self.ledger is None:
            return None
        shared = self.ledger.venue(self._url)
        counter = CustodyCounter(clock=time.time)
        counter.load(shared.get("counter"))
        nonce = self._nonces.stored()
        parts = [
            f"last nonce {max(0.0, time.time() - nonce / 1000):.0f} s ago" if nonce else "no nonce taken yet",
            f"{counter.level()} of {counter.limit} calls in Kraken's counter",
        ]
        paused = _paused(shared, time.time())
        if paused is not None:
            parts.append(f"held back {paused[0]:.0f} s more: {paused[2]}")
        return " · ".join(parts + self.ledger.others())

    def note(self) -> str | None:
        return self._nonces.problem or (self.ledger.problem if self.ledger is not None else None)

    @property
    def rate_limit_waited(self) -> float:
        return self.counter.waited

    async def list_vaults(self, page_size: int = 1000) -> list[Account]:
        """Every vault the key can see, page after page until the venue's `total` (or an empty page).

        The venue may answer fewer vaults than asked for (its page size is not documented), so the next
        offset is where this page ended. A list that stops short of the `total` the venue announced is
        an error, not a smaller list: a missing vault must never look like an empty one.
        """
        vaults: dict[str, Account] = {}
        total: int | None = None
        for _ in range(MAX_PAGES):
            payload = await self._call("ListCustodyVaults", {"pagination": {"limit": page_size, "offset": len(vaults)}})
            page, total = vault_page(payload)
            fresh = [vault for vault in page if vault.id not in vaults]
            vaults.update((a.id, a) for a in fresh)
            if not fresh or (total is not None and len(vaults) >= total):
                break
        if total is not None and len(vaults) < total:
            raise VenueError(
                ErrorKind.BAD_RESPONSE,
                f"ListCustodyVaults: Kraken announced {total} vaults but listed {len(vaults)}; "
                "name the vaults in the config (vaults = [...]) to watch them meanwhile",
            )
        return list(vaults.values())

    async def balances(self, vault_id: str) -> list[Balance]:
        check_vault_id(vault_id)
        payload = await self._call("GetCustodyBalance", {"vault_id": vault_id})
        return parse_balances(payload["result"])

    async def vault(self, vault_id: str) -> VaultDetails:
        """GetCustodyVault: what the venue says each asset in the vault is worth."""
        check_vault_id(vault_id)
        payload = await self._call("GetCustodyVault", {}, query=f"id={vault_id}")
        from tui.venues.kraken_vault import parse_vault  # here: only a drill-down asks

        return parse_vault(payload["result"])

    @contextlib.asynccontextmanager
    async def turn(self, *, urgent: bool) -> AsyncIterator[None]:
        """The calls made inside (a refresh, a drill-down) take one place in the key's queue, shared with
        every process on the key: they go after those who queued before, and an `urgent` one's (someone waits
        for it) before any poller's. Without a shared ledger, the calls simply go."""
        if self.ledger is None or _TURN.get() is not None:
            yield
            return
        try:
            ticket = await self.ledger.enqueue(urgent)
        except KeyBusy as exc:
            raise VenueError(ErrorKind.RATE_LIMIT, str(exc), retry_after=5.0) from None
        token = _TURN.set(ticket)
        try:
            yield
        finally:
            _TURN.reset(token)
            await self.ledger.dequeue(ticket)

    async def _call(self, method: str, params: Mapping[str, object], query: str | None = None) -> Mapping[str, Any]:
        """The whole answer (its `result` and what stands beside it), or the `VenueError` it carries. A call
        made outside a turn is a turn of its own, an urgent one (a drill-down, a check)."""
        if self.ledger is not None and _TURN.get() is None:
            async with self.turn(urgent=True):
                return await self._call(method, params, query)
        path = f"/0/private/{method}"
        uri_path = f"{path}?{query}" if query else path
        async with self._lane:
            await self._take_turn()
            try:
                self.counter.record()
                ledger = self.ledger
                nonce = self._nonces.next_held(ledger.fd) if ledger and ledger.fd is not None else self._nonces.next()
                self._share()
                if ledger is not None:
                    ledger.announce()  # the call, counted, and who holds the key while it is on the wire
                body = encode_body({"nonce": nonce, **params})
                signature = sign(self._api_secret.reveal(), uri_path, nonce, body)
                remember_signature(signature)
                request = self._client.build_request(
                    "POST",
                    uri_path,
                    content=body,
                    headers={
                        "API-Key": self._api_key.reveal(),
                        "API-Sign": signature,
                        "Content-Type": "application/json",
                        "Accept": "application/json",
                    },
                )
                try:
                    response = await http.send(self._client, request)
                finally:
                    self.counter.settle()
                try:
                    return read_payload(response, method)
                except VenueError as exc:
                    self._heed(exc)
                    raise
            finally:
                self._share()
                if self.ledger is not None:
                    self.ledger.release()

    async def _take_turn(self) -> None:
        """Hold the key (its ledger, when shared) with room on its counter: wait, not holding it, while there
        is none. A pause Kraken imposed on the key, seen by any process, is this call's error too."""
        while True:
            if self.ledger is not None:
                try:
                    await self.ledger.hold(say_who=False)  # said with the call, when it goes on the wire
                except KeyBusy as exc:
                    raise VenueError(ErrorKind.RATE_LIMIT, str(exc), retry_after=5.0) from None
                everything = self.ledger.read()
                shared = self.ledger.venue(self._url, everything)
                self.counter.load(shared.get("counter"))
                paused = _paused(shared, time.time())
                if paused is not None:
                    self.ledger.release()
                    remaining, kind, why = paused
                    raise VenueError(kind, f"{why} (held back for {remaining:.0f} s more)", retry_after=remaining)
                ticket = _TURN.get()
                if ticket is not None and not self.ledger.first_in_line(ticket, everything):
                    self.ledger.release()
                    await self._wait(QUEUE_PAUSE)
                    continue
            delay = self.counter.delay_for(1)
            if delay <= 0:
                return
            if self.ledger is not None:
                self.ledger.release()
            await self._wait(delay)

    async def _wait(self, seconds: float) -> None:
        started = time.monotonic()
        await asyncio.sleep(seconds)
        self.counter.waited += time.monotonic() - started

    def _share(self) -> None:
        if self.ledger is not None:
            self.ledger.update_venue(self._url, counter=self.counter.state())

    def _heed(self, exc: VenueError) -> None:
        """A refusal for the rate: the counter is full. A lockout or a throttle until a time: every process on
        the key stays away until then."""
        if exc.kind is ErrorKind.RATE_LIMIT:
            self.counter.saturate()
        long = exc.retry_after is not None and exc.retry_after > self.counter.window + self.counter.margin
        if self.ledger is not None and exc.kind in (ErrorKind.LOCKOUT, ErrorKind.RATE_LIMIT) and long:
            assert exc.retry_after is not None
            until = time.time() + exc.retry_after
            self.ledger.update_venue(self._url, pause={"until": until, "kind": exc.kind.value, "why": exc.message})


def _shared_vaults(shared: Mapping[str, Any], now: float) -> list[Account] | None:
    """The vaults another process listed lately, as the ledger keeps them; None if none or too old."""
    entry = shared.get("vaults")
    if not isinstance(entry, dict) or not isinstance(entry.get("at"), (int, float)):
        return None
    if not 0 <= now - entry["at"] < SHARED_VAULTS_SECONDS or not isinstance(entry.get("list"), list):
        return None
    try:
        return [
            Account(str(v["id"]), str(v["name"]), {str(k): str(d) for k, d in (v.get("details") or {}).items()})
            for v in entry["list"]
            if VAULT_ID.fullmatch(str(v["id"]))
        ]
    except (KeyError, TypeError, AttributeError):
        return None


def _paused(shared: Mapping[str, Any], now: float) -> tuple[float, ErrorKind, str] | None:
    """A pause Kraken imposed on the key, as the ledger keeps it: (seconds left, its kind, its words)."""
    pause = shared.get("pause")
    if not isinstance(pause, dict):
        return None
    until, kind, why = pause.get("until"), pause.get("kind"), pause.get("why")
    if not isinstance(until, (int, float)) or until <= now or kind not in {k.value for k in ErrorKind}:
        return None
    return until - now, ErrorKind(kind), str(why or "Kraken paused this key")


def check_vault_id(vault_id: str) -> None:
    if not VAULT_ID.fullmatch(vault_id):
        raise VenueError(
            ErrorKind.REQUEST,
            f"{vault_id!r} is not a Kraken vault id (V + 13 characters of A-Z, 2-7)",
            retryable=False,
        )


def read_payload(response: httpx.Response, method: str) -> Mapping[str, Any]:
    """A Kraken answer that carries a `result`, or the `VenueError` its status or error list describes."""
    if response.status_code >= 500:
        raise VenueError(
            ErrorKind.SERVER,
            f"{method}: Kraken answered HTTP {response.status_code}: {http.excerpt(response)}",
            status=response.status_code,
            retry_after=http.retry_after(response),
        )
    if response.status_code == 429:
        raise VenueError(
            ErrorKind.RATE_LIMIT,
            f"{method}: Kraken answered HTTP 429 (too many requests)",
            status=429,
            retry_after=http.retry_after(response) or 10.0,
        )
    payload = http.decode_json(response)
    if not isinstance(payload, Mapping):
        raise _shape(method, "a JSON object")
    errors = [(text, hint) for severity, text, hint in _error_items(payload) if severity != "W"]
    if errors:
        raise classify(*errors[0], method=method)
    if response.status_code >= 400:
        raise VenueError(
            ErrorKind.REQUEST if response.status_code < 500 else ErrorKind.SERVER,
            f"{method}: Kraken answered HTTP {response.status_code}: {http.excerpt(response)}",
            status=response.status_code,
        )
    if "result" not in payload:
        raise _shape(method, "a `result`")
    return payload


def _error_items(payload: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(severity, text, hint) for every item under `error` or `errors`, in either item form.

    The text is what the operator reads ("EAPI:Invalid nonce"); the hint adds the item's `type` in words,
    for the classifier: the custody schema allows `errorMessage: null`, leaving class and type to say it.
    """
    items: list[tuple[str, str, str]] = []
    for key in ("error", "errors"):
        raw = payload.get(key)
        if raw is None:
            continue
        if isinstance(raw, (str, Mapping)):
            raw = [raw]
        if not isinstance(raw, list):
            items.append(("E", f"unreadable error list under {key!r}", ""))
            continue
        for item in raw:
            if isinstance(item, str):
                items.append(("E", item, ""))
            elif isinstance(item, Mapping):
                severity = str(item.get("severity") or "E")
                cls = _text(item.get("errorClass"))
                kind = _words(_text(item.get("type")))
                message = _text(item.get("errorMessage")) or kind
                text = f"{cls}:{message}" if cls else message
                items.append((severity, text or "unspecified error", kind))
            else:
                items.append(("E", f"unreadable error item {str(item)[:40]!r}", ""))
    return items


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _words(kind: str) -> str:
    """A `type` in words, whatever its case: "InvalidNonce", "INVALID_NONCE", "InvalidAPIKey" → "invalid nonce",
    "invalid nonce", "invalid api key"."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", kind)
    return " ".join(re.split(r"[\s_\-.]+", spaced)).strip().lower()


_CLASSES: tuple[tuple[str, ErrorKind, str], ...] = (
    ("invalid key", ErrorKind.AUTH, "the API key is not accepted"),
    ("invalid api key", ErrorKind.AUTH, "the API key is not accepted"),
    ("invalid signature", ErrorKind.SIGNATURE, "the signature is not accepted: check the API secret"),
    (
        "invalid nonce",
        ErrorKind.NONCE,
        "nonce refused: another program uses this key, or once used larger nonces; give balance-tui a key of its own",
    ),
    ("permission denied", ErrorKind.PERMISSION, "the key lacks permission for this call"),
    ("temporary lockout", ErrorKind.LOCKOUT, "key temporarily locked out by Kraken"),
    ("rate limit", ErrorKind.RATE_LIMIT, "rate limit exceeded"),
    ("too many requests", ErrorKind.RATE_LIMIT, "too many requests"),
    ("throttled", ErrorKind.RATE_LIMIT, "throttled by Kraken"),
    ("unavailable", ErrorKind.SERVER, "Kraken service unavailable"),
    ("busy", ErrorKind.SERVER, "Kraken is busy"),
    ("invalid arguments", ErrorKind.REQUEST, "Kraken refused the arguments"),
    ("unknown", ErrorKind.REQUEST, "Kraken does not know this"),
)


def classify(message: str, hint: str = "", *, method: str) -> VenueError:
    """Map one Kraken error to a typed error, keeping the venue's own words; `hint` (the item's type in
    words) is read when the message says nothing known, so an error with a null message is still known by
    its class and type."""
    message = redact(message.strip())[:200] or "unspecified error"
    kind, meaning = next(
        ((k, m) for text in (message.lower(), hint.lower()) for needle, k, m in _CLASSES if needle in text),
        (ErrorKind.VENUE, "Kraken reported an error"),
    )
    retry_after: float | None = None
    if kind is ErrorKind.LOCKOUT:
        retry_after = LOCKOUT_SECONDS
    elif kind is ErrorKind.RATE_LIMIT:
        retry_after = _throttled_until(message) or 10.0
    return VenueError(kind, f"{method}: {meaning} ({message})", retry_after=retry_after)


def _throttled_until(message: str) -> float | None:
    match = re.search(r"throttled:\s*(\d{9,11})", message, re.IGNORECASE)
    if not match:
        return None
    return max(1.0, int(match.group(1)) - time.time())


def parse_balances(result: Any) -> list[Balance]:
    """GetCustodyBalance's result: {"ASSET": {"balance": "...", "hold_trade": "..."}}."""
    if result is None:
        result = {}
    if not isinstance(result, Mapping):
        raise _shape("GetCustodyBalance", "an object of assets")
    balances = []
    for asset, entry in result.items():
        if not isinstance(entry, Mapping):
            raise _shape("GetCustodyBalance", f"an object for asset {str(asset)[:20]!r}")
        try:
            total = parse_amount(entry.get("balance"))
            hold = parse_amount(entry.get("hold_trade"))
        except AmountError as exc:
            raise VenueError(ErrorKind.BAD_RESPONSE, f"GetCustodyBalance: {str(asset)[:20]}: {exc}") from None
        available: Decimal | None = None
        if total is not None:
            available = sub(total, hold) if hold is not None else total
        balances.append(Balance(str(asset), {"balance": total, "hold_trade": hold, "available": available}))
    return balances


def vault_page(payload: Mapping[str, Any]) -> tuple[list[Account], int | None]:
    """One ListCustodyVaults answer: its vaults and the venue's `total`, if it said.

    The docs' example has `result` as the list itself with `start` and `total` beside it; a `result`
    object holding the list (under items, vaults or data) with `total` inside is read too.
    """
    result = payload.get("result")
    total: Any = payload.get("total")
    items: Any = result
    if isinstance(result, Mapping):
        total = result.get("total", total)
        items = next((result[k] for k in ("items", "vaults", "data") if k in result), None)
    if items is None:
        items = []
    if not isinstance(items, list) or not all(isinstance(item, Mapping) and "id" in item for item in items):
        raise _shape("ListCustodyVaults", "a list of vaults with ids")
    if isinstance(total, str) and total.strip().isdigit():
        total = int(total)
    count = total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None
    return [_account(item) for item in items], count


def _account(item: Mapping[str, Any]) -> Account:
    vault_id = str(item["id"])
    details = {k: str(item[k]) for k in ("status", "description") if isinstance(item.get(k), str)}
    return Account(vault_id, str(item.get("name") or vault_id), details)


def _shape(method: str, expected: str) -> VenueError:
    return VenueError(ErrorKind.BAD_RESPONSE, f"{method}: Kraken's answer is not {expected}")
