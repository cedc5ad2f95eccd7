"""Every simulator fault × both venues × both sinks (the live TUI and `--once`).

For each: the program keeps running (or exits with the contract's code), the other venue is untouched,
the cause is shown in operator words, the last good data is kept with its age, and everything recovers
by itself when the fault clears. Backoff (no hammering) and Kraken's lockout have their own tests below.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from textual.pilot import Pilot
from textual.worker import WorkerState

from tests.scenes import pricing, until
from tui import cli
from tui.config import parse
from tui.sim import Simulator
from tui.ui.app import BalanceApp
from tui.ui.panes import VenuePane
from tui.venues import http
from tui.venues.kraken import CustodyCounter

# (fault, value) -> what the operator reads, per venue; None: the fault does no harm to that venue
MATRIX: dict[tuple[str, object], dict[str, str | None]] = {
    ("latency", 0.3): {"kraken": None, "intx": None},
    ("http-5xx", None): {"kraken": "HTTP 503", "intx": "HTTP 503"},
    ("429", None): {"kraken": "HTTP 429", "intx": "rate limited"},
    ("429-retry-after", 2): {"kraken": "HTTP 429", "intx": "rate limited"},
    ("html", None): {"kraken": "502", "intx": "502"},
    ("truncated", None): {"kraken": "not JSON", "intx": "not JSON"},
    ("reset", None): {"kraken": "broke", "intx": "broke"},
    ("hang", None): {"kraken": "timed out", "intx": "timed out"},
    ("kraken-error", "EService:Unavailable"): {"kraken": "Unavailable", "intx": "not a list"},
    ("empty", None): {"kraken": "no balances where it had", "intx": "no balances where it had"},
    ("skew", 30): {"kraken": None, "intx": "clock"},
}
CASES = [(fault, value, venue) for (fault, value), venues in MATRIX.items() for venue in venues]
IDS = [f"{fault}-{venue}" for fault, _, venue in CASES]
OTHER = {"kraken": "intx", "intx": "kraken"}
INDEX = {"kraken": 0, "intx": 1}
PATIENCE = 60.0  # a safety net for waits that poll for a state; no test asserts how fast anything is
# Short enough that a hung request times out quickly (the hang lasts 120 s), long enough that a healthy
# request on a busy machine, or one slowed by the 0.3 s latency fault, never does.
HTTP_TIMEOUT = 5.0


@pytest.fixture
def small_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """One vault and one portfolio (a request per refresh), fast timeouts, no Kraken counter in the way."""
    monkeypatch.setattr(http, "TIMEOUT", httpx.Timeout(HTTP_TIMEOUT))
    with Simulator(seed=5, vaults=1, portfolios=1) as sim:
        sim.kraken_rate_limit = False
        yield sim


def header(pane: VenuePane) -> str:
    return str(pane.query_one(".pane-header").render())


async def started(sim: Simulator, pilot: Pilot[int]) -> BalanceApp:
    app = pilot.app
    assert isinstance(app, BalanceApp)
    await until(pilot, lambda: all(p.rows and p.snapshot and not p.snapshot.refreshing for p in app.panes))
    await until(pilot, lambda: all(p.worth is not None and p.worth.priced for p in app.panes), why=pricing(app))
    for refresher in app.source.refreshers:
        if refresher.client is not None and hasattr(refresher.client, "counter"):
            refresher.client.counter = CustodyCounter(limit=10**6)
    return app


@pytest.mark.parametrize(("fault", "value", "venue"), CASES, ids=IDS)
async def test_tui(small_sim: Simulator, fault: str, value: object, venue: str) -> None:
    sim = small_sim
    expected = MATRIX[(fault, value)][venue]
    app = BalanceApp(parse(sim.config_text(1)), demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(sim, pilot)
        failing, other = app.panes[INDEX[venue]], app.panes[INDEX[OTHER[venue]]]
        rows = dict(failing.rows)
        other_rows = len(other.rows)
        sim.faults.set(fault, venue=venue, value=value)  # type: ignore[arg-type]
        other_seen = other.snapshot.fetched_at if other.snapshot else None
        if expected is None:
            fetched = failing.snapshot.fetched_at if failing.snapshot else None
            await until(pilot, lambda: failing.snapshot is not None and failing.snapshot.fetched_at != fetched)
            assert "failing" not in header(failing) and not failing.has_class("-failing")
        else:
            await until(pilot, lambda: expected in header(failing), timeout=PATIENCE)
            assert "failing" in header(failing) or "partial" in header(failing)
            assert failing.rows == rows, "last good rows must stay on screen"
        await until(pilot, lambda: other.snapshot is not None and other.snapshot.fetched_at != other_seen)
        assert "failing" not in header(other) and not other.has_class("-failing")  # live, or already refreshing
        assert len(other.rows) == other_rows
        workers = [w for w in app.workers if w.group == "source"]
        assert len(workers) == 1 and all(w.state is WorkerState.RUNNING for w in workers)  # the one source
        sim.faults.clear()
        await until(pilot, lambda: "live" in header(failing) and not failing.has_class("-failing"), timeout=PATIENCE)
        assert failing.rows.keys() == rows.keys()


def once(config: Path) -> tuple[int, dict[str, object], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.run(["--once", "--format", "json", "--config", str(config)])
    return code, json.loads(out.getvalue()), err.getvalue()


@pytest.mark.parametrize(("fault", "value", "venue"), CASES, ids=IDS)
def test_once(small_sim: Simulator, tmp_path: Path, fault: str, value: object, venue: str) -> None:
    sim = small_sim
    config = tmp_path / "c.toml"
    sim.write_config(config)
    expected = MATRIX[(fault, value)][venue]
    if fault == "empty":
        expected = None  # a first answer has nothing to compare with: an empty account is reported empty
    sim.faults.set(fault, venue=venue, value=value)  # type: ignore[arg-type]
    code, out, err = once(config)
    venues = {v["kind"].split("-")[0]: v for v in out["venues"]}  # type: ignore[attr-defined]
    mine, theirs = (
        venues["kraken" if venue == "kraken" else "coinbase"],
        venues["coinbase" if venue == "kraken" else "kraken"],
    )
    assert theirs["ok"] is True and all(a["balances"] for a in theirs["accounts"])
    if expected is None:
        assert code == 0 and mine["ok"] is True and err == ""
    else:
        assert code == 1 and mine["ok"] is False
        assert expected in err and err.count("\n") == 1 and "Traceback" not in err


async def test_failing_venue_backs_off_instead_of_hammering(
    small_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted per request, not per window of time: the simulator notes when each failing request arrives, and
    the gaps between them must be at least the backoff's (1, 2, 4 s, each -20% at worst). A refresh can only
    start later than planned, never earlier, so on a slow machine these lower bounds hold all the more; without
    backoff the gaps would be the 1 s refresh period. Meanwhile the other venue goes on refreshing, every time
    on its own 1 s schedule."""
    sim = small_sim
    failing_at: list[float] = []
    draw = sim.faults.draw

    def noting(venue: str, endpoint: str) -> tuple[float, float, object]:
        outcome = draw(venue, endpoint)
        if venue == "intx" and endpoint == "balances" and outcome[2] is not None:
            failing_at.append(time.monotonic())
        return outcome

    monkeypatch.setattr(sim.faults, "draw", noting)
    app = BalanceApp(parse(sim.config_text(1)), demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(sim, pilot)
        kraken = app.source.refreshers[0]
        kraken_delays: list[float] = []
        next_delay = kraken.next_delay

        def recording() -> float:
            delay = next_delay()
            kraken_delays.append(delay)
            return delay

        monkeypatch.setattr(kraken, "next_delay", recording)
        kraken_before = sim.count("kraken", "GetCustodyBalance")
        sim.faults.set("http-5xx", venue="intx")
        await until(
            pilot,
            lambda: len(failing_at) >= 4 and sim.count("kraken", "GetCustodyBalance") >= kraken_before + 6,
            timeout=PATIENCE,
        )
        gaps = [later - earlier for earlier, later in itertools.pairwise(failing_at[:4])]
        for n, gap in enumerate(gaps):
            assert gap >= 0.8 * 2**n - 0.01, f"failing requests {[round(g, 2) for g in gaps]} s apart: no backoff"
        assert kraken_delays and max(kraken_delays) <= 1.0, f"the other venue was slowed down: {kraken_delays}"
        assert kraken.snapshot().failures == 0 and "failing" not in header(app.panes[0])


async def test_kraken_lockout_pauses_the_key_for_its_stated_time(small_sim: Simulator) -> None:
    sim = small_sim
    app = BalanceApp(parse(sim.config_text(1)), demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(sim, pilot)
        kraken = app.panes[0]
        sim.faults.set("kraken-error", venue="kraken", value="EGeneral:Temporary lockout")
        await until(pilot, lambda: "locked out" in header(kraken))
        calls = sim.count("kraken")
        # A fair chance for the call that must not come: the other venue refreshes 4 more times, on its 1 s
        # schedule (3 s at least: three times Kraken's own 1 s period, and past its first backoff steps).
        other = sim.count("intx", "balances")
        await until(pilot, lambda: sim.count("intx", "balances") >= other + 4, timeout=PATIENCE)
        assert sim.count("kraken") == calls
        snap = kraken.snapshot
        assert snap is not None and snap.next_refresh_at is not None
        assert snap.next_refresh_at - time.time() > 14 * 60
        app.panes[0].refresh_header()
        assert "next in 1" in header(kraken) and "min" in header(kraken)
