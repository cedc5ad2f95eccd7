"""Kraken custody's counter (reference/venues.md): each call adds 1, at most 10; it resets after a rolling 10 s with
no call, each call extending the wait. Our model of it (kraken.CustodyCounter) must never let a call through that
the venue would count as the 11th: judged by Hypothesis against that rule written out here, over any pattern of
calls, each made as the client makes it (when the model allows, else as soon as it says)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tui.venues.kraken import CustodyCounter

LIMIT, RESET = 10, 10.0  # the venue's, as reference/venues.md states them


class Venue:
    def __init__(self) -> None:
        self.count = 0
        self.last: float | None = None

    def call(self, at: float) -> int:
        if self.last is None or at - self.last >= RESET:
            self.count = 0
        self.count += 1
        self.last = at
        return self.count


_GAP = st.one_of(st.just(0.0), *(st.floats(min_value=a, max_value=b) for a, b in ((0, 1), (8.5, 11.5), (0, 12))))
_CALL = st.tuples(_GAP, st.floats(min_value=0.0, max_value=2.0), st.floats(min_value=0.0, max_value=1.0))


@settings(max_examples=300)
@given(calls=st.lists(_CALL, min_size=11, max_size=40))
def test_the_model_never_lets_through_what_the_venue_would_count_as_the_eleventh(
    calls: list[tuple[float, float, float]],
) -> None:
    """Each call: a pause before it (bursts, pauses near the venue's 10 s, anything), its time on the wire, and
    where on the wire the venue counts it (anywhere from its sending to its answer: the docs do not say)."""
    now = [0.0]
    counter = CustodyCounter(clock=lambda: now[0])
    venue = Venue()
    counted: list[tuple[float, float]] = []  # (when the venue counts it, when its answer comes)
    for gap, latency, where in calls:
        now[0] += gap
        while (delay := counter.delay_for(1)) > 0:
            now[0] += delay
        counter.record()
        counted.append((now[0] + where * latency, now[0] + latency))
        now[0] += latency
        counter.settle()
    for at, _ in sorted(counted):
        assert venue.call(at) <= LIMIT, (at, venue.count)


def test_ten_calls_then_the_eleventh_waits_past_the_venues_ten_seconds() -> None:
    now = [100.0]
    counter = CustodyCounter(clock=lambda: now[0])
    for _ in range(LIMIT):
        assert counter.delay_for(1) == 0
        counter.record()
        counter.settle()
    for later in (0.0, 5.0, 9.99, 10.0):
        now[0] = 100.0 + later
        assert counter.delay_for(1) > 0, later
    now[0] = 100.0 + RESET + counter.margin
    assert counter.delay_for(1) == 0 and counter.level() == 0
