"""One venue's time: discovery, a refresh of every account (concurrently, within the venue's rate
limit), the last good answer per account and its age, and when to call next (the wish, clamped by the rate
limit; after failures, exponential backoff with jitter, never sooner than the venue's retry-after). Errors
are values: nothing raises past it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from tui.engine.schedule import backoff
from tui.money import Account, Balance
from tui.snapshot.model import AccountSnapshot, VenueSnapshot
from tui.snapshot.pacing import Pacing
from tui.venues.base import VenueClient
from tui.venues.errors import ErrorKind, VenueError, guarded

REDISCOVER_SECONDS = 1800.0
ONCE_PATIENCE = 15.0  # --once waits out a rate limit this short instead of failing
NOTE_MEMORY = 4  # refreshes a rate-limit note outlives its cause: Kraken's counter lets one refresh through at
# the configured period and holds the next back, so a note on the last period alone came and went each refresh
# (and with it a header line: a layout of the whole screen each time)
EMPTY_CONFIRMATIONS = 3  # empty answers in a row before an account that had balances is taken as empty
OK = "ok"  # the outcome of a call that answered, beside the error kinds

T = TypeVar("T")


@dataclass
class _AccountState:
    """One account as its venue's refresher keeps it between refreshes: the last good balances and the latest error."""

    account: Account
    balances: tuple[Balance, ...] = ()
    fetched_at: float | None = None
    error: VenueError | None = None
    empty_answers: int = 0
    summary: Mapping[str, Decimal | bool | None] | None = None

    def snapshot(self) -> AccountSnapshot:
        return AccountSnapshot(
            self.account.id, self.account.name, self.balances, self.fetched_at, self.error, self.summary
        )


_Answer = tuple[list[Balance], Mapping[str, Any] | None]


@dataclass
class _Timing:
    """When a venue's refreshes ran and are due, and how long its requests took."""

    started: float = 0.0
    round_trip: float | None = None
    next_at: float | None = None
    period: float | None = None
    discovered_at: float | None = None
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=NOTE_MEMORY))  # the last periods


def kept(before: tuple[Balance, ...], answer: list[Balance]) -> tuple[Balance, ...]:
    """The answer's balances, each one identical to the last answer's (same digits, same labels) kept as that
    very object, and the last tuple itself when nothing moved: a refresh that changes little then leaves the
    long-lived data where it lies, instead of a fresh copy of every balance each time whose old one is freed
    (with 2,000 balances that churn spread them over ever more of the allocator's memory: issue 24, RSS)."""
    previous = {balance.asset: balance for balance in before}
    now = tuple(
        old if (old := previous.get(balance.asset)) is not None and old.identical(balance) else balance
        for balance in answer
    )
    if len(now) == len(before) and all(a is b for a, b in zip(now, before, strict=True)):
        return before
    return now


class VenueRefresher:
    def __init__(
        self,
        name: str,
        kind: str,
        client: VenueClient | None,
        *,
        refresh_seconds: float,
        accounts: tuple[str, ...] = (),
        broken: VenueError | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        summaries: bool = False,
    ) -> None:
        """`summaries`: also fetch each account's summary (one more request each), for alert rules on it."""
        self.name = name
        self.summaries = summaries and hasattr(client, "account_summary")
        self.kind = kind
        self.client = client
        self.refresh_seconds = refresh_seconds
        self.configured = accounts
        self.broken = broken
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()
        self._accounts: dict[str, _AccountState] = {a: _AccountState(Account(a, a)) for a in accounts}
        self._error: VenueError | None = broken
        self._fetched_at: float | None = None
        self._failures = 0
        self._timing = _Timing()
        self.refreshing = False
        self.requests: Counter[str] = Counter()  # calls made with this key, by outcome: OK or the error kind
        self.last_duration: float | None = None  # seconds the last refresh took
        self.pacing = Pacing()

    # --- one refresh ------------------------------------------------------------------------------

    async def refresh(self, *, urgent: bool = False) -> VenueSnapshot:
        """Discover if needed, fetch every account, record the outcome; the snapshot after it (no longer
        refreshing: `--once` prints it). Never raises. `urgent`: someone waits for this one refresh (`--once`),
        so its calls go before a poller's on a key several processes use."""
        self.refreshing = True
        self._timing.started = self._clock()
        try:
            if self.client is None:
                self._failures += 1
            else:
                await self._refresh(self.client, urgent)
        finally:
            self.refreshing = False
            self.last_duration = self._clock() - self._timing.started
        return self.snapshot()

    async def _refresh(self, client: VenueClient, urgent: bool) -> None:
        try:
            async with client.turn(urgent=urgent):
                if not self._needs_discovery() or await self._discover():
                    await self._fetch_all()
        except VenueError as exc:  # the key's turn could not be had (another process holds the key, stuck)
            self._error = exc
            self._failures += 1
        except Exception as exc:  # a bug in taking the turn must not take the monitor down: said, as `guarded`
            self._error = VenueError(ErrorKind.VENUE, f"internal error: {type(exc).__name__}: {exc}"[:200])
            self._failures += 1

    async def call(self, awaitable: Awaitable[T]) -> T:
        """A call to the venue with this refresher's client, counted in `requests` by its outcome."""
        try:
            result = await guarded(awaitable)
        except VenueError as exc:
            self.requests[exc.kind.value] += 1
            raise
        self.requests[OK] += 1
        return result

    @property
    def rate_limit_waited(self) -> float:
        """Seconds this key's calls have waited for the venue's rate limit, since start."""
        return float(getattr(self.client, "rate_limit_waited", 0.0))

    def _needs_discovery(self) -> bool:
        last = self._timing.discovered_at
        if last is None:
            return True
        return not self.configured and self._clock() - last > REDISCOVER_SECONDS

    async def _discover(self) -> bool:
        assert self.client is not None
        try:
            found = await self.call(self.client.discover())
        except VenueError as exc:
            if self.configured:  # names are a nicety when the ids are configured: go on without them
                self._timing.discovered_at = self._clock()
                return True
            self._error = exc  # not marked as discovered: the next refresh tries again
            self._failures += 1
            return False
        self._timing.discovered_at = self._clock()
        if self.configured:
            by_ref = {a.id: a for a in found}
            by_ref.update({a.details["portfolio_uuid"]: a for a in found if "portfolio_uuid" in a.details})
            for ref, state in self._accounts.items():
                match = by_ref.get(ref)
                if match is not None:
                    state.account = Account(ref, match.name, match.details)
        else:
            known = self._accounts
            self._accounts = {a.id: known.get(a.id) or _AccountState(a) for a in found}
            for a in found:
                self._accounts[a.id].account = a
        self._error = None
        return True

    async def _fetch_all(self) -> None:
        states = list(self._accounts.values())
        if not states:
            self._error = None
            self._failures = 0
            self._fetched_at = self._wall()
            return
        results = await asyncio.gather(*(self._timed_fetch(s.account.id) for s in states))
        now = self._wall()
        durations = []
        successes = 0
        for state, (outcome, took) in zip(states, results, strict=True):
            durations.append(took)
            if isinstance(outcome, VenueError):
                state.error = outcome
                continue
            successes += 1
            self._accept(state, *outcome, now)
        self._timing.round_trip = median(durations) if durations else None
        if successes:
            self._fetched_at = now
            self._error = None
            self._failures = 0
        else:
            self._failures += 1
            self._error = None

    async def _timed_fetch(self, account_id: str) -> tuple[_Answer | VenueError, float]:
        assert self.client is not None
        started = self._clock()
        outcome: _Answer | VenueError
        try:
            if self.summaries:
                balances, summary = await asyncio.gather(
                    self.call(self.client.fetch(account_id)),
                    self.call(self.client.account_summary(account_id)),  # type: ignore[attr-defined]
                )
                outcome = (balances, summary)
            else:
                outcome = (await self.call(self.client.fetch(account_id)), None)
        except VenueError as exc:
            outcome = exc
        return outcome, self._clock() - started

    def _accept(
        self, state: _AccountState, balances: list[Balance], summary: Mapping[str, Any] | None, now: float
    ) -> None:
        """Take a good answer, except that an empty one where there were balances is not yet proof of zero."""
        state.summary = summary if summary is not None else state.summary
        if not balances and state.balances and state.empty_answers + 1 < EMPTY_CONFIRMATIONS:
            state.empty_answers += 1
            state.error = VenueError(
                ErrorKind.BAD_RESPONSE,
                f"answered with no balances where it had {len(state.balances)}: not taken as zero "
                f"unless it persists ({state.empty_answers}/{EMPTY_CONFIRMATIONS})",
            )
            return
        state.empty_answers = 0
        state.balances = kept(state.balances, balances)
        state.fetched_at = now
        state.error = None

    # --- time ----------------------------------------------------------------------------------------

    def next_delay(self) -> float:
        """Seconds from now until the next refresh should start."""
        calls = max(1, len(self._accounts)) + (1 if self._needs_discovery() else 0)
        rate_delay = self.client.delay_for(calls) if self.client is not None else 0.0
        if self._failures == 0:
            elapsed = self._clock() - self._timing.started
            delay = max(self.refresh_seconds - elapsed, rate_delay, 0.0)
            self._timing.period = max(self.refresh_seconds, elapsed + rate_delay)
            self._timing.recent.append(self._timing.period)
            return delay
        return max(backoff(self.refresh_seconds, self._failures, self._rng, self._current_error()), rate_delay)

    def _current_error(self) -> VenueError | None:
        return self._error or next((s.error for s in self._accounts.values() if s.error is not None), None)

    def snapshot(self) -> VenueSnapshot:
        note = self.client.note() if self.client is not None else None
        period = self._timing.period
        slowest = max(self._timing.recent, default=None)  # of the last few: a note that stays while it applies
        if note is None and slowest is not None and slowest > self.refresh_seconds * 1.05:
            note = f"refresh every {slowest:.1f} s at times: the venue's rate limit allows no faster"
        return VenueSnapshot(
            name=self.name,
            kind=self.kind,
            accounts=tuple(s.snapshot() for s in self._accounts.values()),
            error=self._error,
            fetched_at=self._fetched_at,
            refreshing=self.refreshing,
            next_refresh_at=self._timing.next_at,
            round_trip=self._timing.round_trip,
            failures=self._failures,
            period=period,
            note=note,
        )

    # --- the loop -------------------------------------------------------------------------------------

    async def run(self, publish: Callable[[VenueSnapshot], Any]) -> None:
        """Refresh forever on the schedule, publishing a snapshot as each refresh starts and ends; `pacing`
        says when (now, when woken, never while paused, once when asked while paused)."""
        while True:
            await self.pacing.turn()
            self._timing.next_at = None
            self.refreshing = True
            publish(self.snapshot())
            await self.refresh()
            self.pacing.went()
            delay = self.next_delay()
            self._timing.next_at = self._wall() + delay
            publish(self.snapshot())
            await self.pacing.rest(delay)

    def refresh_now(self) -> None:
        """At once; while paused, once."""
        self.pacing.now()

    def pause(self) -> None:
        self.pacing.pause()

    def resume(self) -> None:
        self.pacing.resume()

    @property
    def paused(self) -> bool:
        return self.pacing.paused


def median(values: list[float]) -> float:
    """`statistics.median`, without importing `statistics` (and `fractions`) into every process that refreshes."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
