"""Faults on demand: what the simulator does wrong, for which venue and endpoint, switchable live."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    LATENCY = "latency"  # value: added seconds (combines with any other fault)
    HTTP_5XX = "http-5xx"  # value: status (default 503)
    RATE_429 = "429"  # 429 with no Retry-After
    RATE_429_RETRY_AFTER = "429-retry-after"  # value: Retry-After seconds (default 2)
    HTML = "html"  # a proxy's HTML error page (502)
    TRUNCATED = "truncated"  # the JSON body cut in half
    RESET = "reset"  # the connection reset with no answer
    HANG = "hang"  # no answer, past any sane timeout
    KRAKEN_ERROR = "kraken-error"  # value: the error string, in a 200
    EMPTY = "empty"  # an empty result
    SKEW = "skew"  # value: seconds the venue's clock is ahead of ours
    ECHO = "echo"  # an error that quotes the request's own headers back (as some proxies and WAFs do)
    # Kraken's throttles, each in the error form of the endpoint it hits (custody: an error object under the
    # method's error key; public market data: a string under `error`), with HTTP 200 as Kraken sends errors
    TOO_MANY_REQUESTS = "too-many-requests"  # "EGeneral:Too many requests"
    THROTTLED = "throttled"  # value: seconds until the time it names (default 60): "EService:Throttled: <unix ts>"
    LOCKOUT = "lockout"  # value: seconds (default 900) the key stays refused "EGeneral:Temporary lockout", after
    # the fault is gone too (public data: refused while the fault is in force)


VENUES = ("kraken", "intx", "prices")  # prices: Kraken's public market data
KRAKEN_ONLY = frozenset({FaultKind.TOO_MANY_REQUESTS, FaultKind.THROTTLED, FaultKind.LOCKOUT})


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    venue: str | None = None  # "kraken", "intx", or None for both
    endpoint: str | None = None  # e.g. "GetCustodyBalance", "balances"; None for all
    value: str | float | None = None
    probability: float = 1.0

    def applies(self, venue: str, endpoint: str) -> bool:
        if self.kind in KRAKEN_ONLY and venue == "intx":
            return False
        return self.venue in (None, venue) and self.endpoint in (None, endpoint)


class FaultBoard:
    """The faults in force. Thread-safe; the server consults it on every request."""

    def __init__(self, seed: int = 0) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.arrived = 0  # requests that reached the simulator (before any latency or fault): tests poll it

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def set(
        self,
        kind: FaultKind | str,
        venue: str | None = None,
        endpoint: str | None = None,
        value: str | float | None = None,
        probability: float = 1.0,
    ) -> Fault:
        """Replace any fault of this kind for this venue and endpoint with a new one."""
        fault = Fault(FaultKind(kind), venue, endpoint, value, probability)
        with self._lock:
            self._faults = [
                f for f in self._faults if (f.kind, f.venue, f.endpoint) != (fault.kind, fault.venue, fault.endpoint)
            ]
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if f is not fault]

    def clear(self, venue: str | None = None) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if venue is not None and f.venue != venue]

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def draw(self, venue: str, endpoint: str) -> tuple[float, float, Fault | None]:
        """(added latency, clock skew, the one disruptive fault or None) for this request."""
        latency = skew = 0.0
        chosen: Fault | None = None
        with self._lock:
            self.arrived += 1
            for fault in self._faults:
                if not fault.applies(venue, endpoint):
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                if fault.kind is FaultKind.LATENCY:
                    latency += float(fault.value or 0)
                elif fault.kind is FaultKind.SKEW:
                    skew += float(fault.value or 0)
                elif chosen is None:
                    chosen = fault
        return latency, skew, chosen


def parse_fault_flag(text: str) -> Fault:
    """`KIND[:VALUE][@VENUE[/ENDPOINT]][%PROBABILITY]`, e.g. `latency:0.2@intx`, `http-5xx@kraken%10`."""
    spec, _, pct = text.partition("%")
    spec, _, where = spec.partition("@")
    kind_text, _, value_text = spec.partition(":")
    try:
        kind = FaultKind(kind_text)
    except ValueError:
        names = ", ".join(k.value for k in FaultKind)
        raise ValueError(f"unknown fault {kind_text!r}: choose from {names}") from None
    venue, _, endpoint = where.partition("/")
    if venue and venue not in VENUES:
        raise ValueError(f"unknown venue {venue!r} in fault {text!r}: use kraken, intx or prices")
    if venue == "intx" and kind in KRAKEN_ONLY:
        raise ValueError(f"fault {text!r}: {kind.value} is Kraken's; use @kraken or @prices")
    value: str | float | None = value_text or None
    if value_text and kind is not FaultKind.KRAKEN_ERROR:
        try:
            value = float(value_text)
        except ValueError:
            raise ValueError(f"fault {text!r}: {value_text!r} is not a number") from None
    probability = 1.0
    if pct:
        try:
            probability = float(pct) / 100
        except ValueError:
            raise ValueError(f"fault {text!r}: {pct!r} is not a percentage") from None
    return Fault(kind, venue or None, endpoint or None, value, probability)
