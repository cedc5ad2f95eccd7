"""The benchmarks of issue 6, each a ratio measured side by side in one run (machines here are shared).

    .venv/bin/python bench/run.py            # all, with a 60 s Kraken run and a 60 s idle window
    .venv/bin/python bench/run.py --full     # the Kraken run over 3 minutes, idle RSS after 10 minutes

Writes a table to stdout and every figure to bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import itertools
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.minimal_once import intx_headers, kraken_headers  # noqa: E402
from tui.assets import AssetNames  # noqa: E402
from tui.config import Config, load, parse, resolve_secrets  # noqa: E402
from tui.credentials import Secret  # noqa: E402
from tui.engine.prices import PriceRefresher  # noqa: E402
from tui.engine.refresher import VenueRefresher  # noqa: E402
from tui.monitor.history import History  # noqa: E402
from tui.monitor.monitor import Monitor  # noqa: E402
from tui.monitor.valuation import held_assets  # noqa: E402
from tui.sim import Simulator  # noqa: E402
from tui.venues import http  # noqa: E402
from tui.venues.intx import IntxClient  # noqa: E402
from tui.venues.kraken import CustodyCounter, KrakenCustodyClient  # noqa: E402
from tui.venues.kraken_prices import KrakenPrices  # noqa: E402
from tui.venues.ledger import KeyLedger  # noqa: E402
from tui.venues.nonces import NonceSource  # noqa: E402

Result = dict[str, Any]


def median_ratio(name: str, ours: list[float], base: list[float], target: float) -> Result:
    """Median of ours over median of the baseline, both in seconds, with the spread of each round's own
    ratio (the two measured side by side in that round)."""
    a, b = statistics.median(ours), statistics.median(base)
    rounds = sorted(x / y for x, y in zip(ours, base, strict=True))
    return {
        "name": name,
        "ratio": a / b,
        "target": target,
        "detail": f"{a * 1000:.0f} ms vs {b * 1000:.0f} ms; rounds {rounds[0]:.2f}-{rounds[-1]:.2f}",
    }


# 1 -------------------------------------------------------------------------------------------------
async def intx_fan_out(rounds: int = 5) -> list[Result]:
    """A full refresh of 20 portfolios x 30 assets vs one request, 100 ms added latency on every request.

    The simulator runs in its own process, as a venue does, so its work does not share our interpreter.
    Also, interleaved: the same refresh followed by what the live app does with it (history written to
    SQLite, totals, three alert rules), against the refresh alone.
    """
    with (
        tempfile.TemporaryDirectory() as tmp,
        _world(
            Path(tmp),
            "--seed",
            "1",
            "--portfolios",
            "20",
            "--assets",
            "30",
            "--per-account",
            "30",
            "--tick",
            "1",
            "--fault",
            "latency:0.1@intx",
        ) as config,
    ):
        venue = next(v for v in config.venues if v.kind.kind == "coinbase-intx")
        secrets = resolve_secrets(venue, config)
        monitor = _recording_monitor(config, Path(tmp) / "history.sqlite3")
        async with http.new_client(venue.base_url) as web:
            client = IntxClient(web, secrets["api_key"], secrets["api_secret"], secrets["passphrase"])
            refresher = VenueRefresher(venue.name, "coinbase-intx", client, refresh_seconds=5)
            monitor.take(await refresher.refresh(), time.time())  # discovery, warm connections, first history
            pid = refresher.snapshot().accounts[0].id
            paths = [f"/api/v1/portfolios/{a.id}/balances" for a in refresher.snapshot().accounts]
            keys = {name: secrets[name].reveal() for name in ("api_key", "api_secret", "passphrase")}

            async def alone() -> None:  # the floor: the same 20 signed requests through httpx, bodies only read
                answers = await asyncio.gather(
                    *(plain.get(venue.base_url + p, headers=intx_headers(keys, p)) for p in paths)
                )
                refused = [(a.status_code, a.text[:200]) for a in answers if a.status_code != 200 or not a.content]
                assert not refused, refused

            one, full, recorded, taking, bare = [], [], [], [], []
            async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_keepalive_connections=20)) as plain:
                await asyncio.sleep(1.2)
                await alone()  # warm its connections, as ours are
                for _ in range(rounds):
                    await asyncio.sleep(1.2)  # as in operation, the 40/s window is clear when a refresh starts
                    started = time.perf_counter()
                    await alone()
                    bare.append(time.perf_counter() - started)
                    await asyncio.sleep(1.2)
                    started = time.perf_counter()
                    await client.balances(pid)
                    one.append(time.perf_counter() - started)
                    await asyncio.sleep(1.2)
                    started = time.perf_counter()
                    snap = await refresher.refresh()
                    full.append(time.perf_counter() - started)
                    assert snap.ok and sum(len(a.balances) for a in snap.accounts) == 600
                    await asyncio.sleep(1.2)
                    started, cpu = time.perf_counter(), time.process_time()
                    snap = await refresher.refresh()
                    monitor.take(snap, time.time())  # as the app does after each refresh (history on its own thread)
                    recorded.append(time.perf_counter() - started)
                    taking.append(time.process_time() - cpu)
            assert monitor.history is not None
            monitor.history.close()
    with_recording = median_ratio(
        "INTX fan-out, refresh + monitor (history, totals, alerts) / refresh alone", recorded, full, 1.1
    )
    with_recording["detail"] += (
        f"; CPU of refresh + monitor for 600 balances: {statistics.median(taking) * 1000:.1f} ms"
    )
    fan_out = median_ratio("INTX fan-out 20x30, 100 ms latency: full refresh / one request", full, one, 1.3)
    floor = statistics.median(bare) / statistics.median(one)
    fan_out["detail"] += f"; the floor, the same 20 requests through httpx alone, bodies only read: {floor:.3f}"
    return [
        fan_out,
        median_ratio(
            "INTX fan-out: full refresh / the same requests through httpx alone (the floor)", full, bare, 1.15
        ),
        with_recording,
    ]


async def valuation(rounds: int = 15) -> Result:
    """A refresh of 20 portfolios x 30 assets and what the app does with it, with valuation on (prices
    in force: every balance, account, venue and asset valued, value rules on) vs off, interleaved."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        _world(Path(tmp), "--seed", "1", "--portfolios", "20", "--assets", "30", "--per-account", "30") as config,
    ):
        venue = next(v for v in config.venues if v.kind.kind == "coinbase-intx")
        secrets = resolve_secrets(venue, config)
        valued = dataclasses.replace(config, venues=(venue,), alerts=parse(VALUE_RULES).alerts)
        plain = dataclasses.replace(config, venues=(venue,), alerts=())
        async with http.new_client(venue.base_url) as web:
            client = IntxClient(web, secrets["api_key"], secrets["api_secret"], secrets["passphrase"])
            refresher = VenueRefresher(venue.name, "coinbase-intx", client, refresh_seconds=5)
            first = await refresher.refresh()
            prices = PriceRefresher(KrakenPrices(web, AssetNames()), 60)
            book = await prices.refresh(held_assets([first], AssetNames()))
            assert book.prices and book.error is None
            on, off = Monitor(valued), Monitor(plain)
            on.take_prices(book, time.time())
            ratios: list[float] = []
            with_values: list[float] = []
            without: list[float] = []
            for _ in range(rounds):
                for monitor, bucket in ((on, with_values), (off, without)):
                    await asyncio.sleep(1.2)  # the 40/s window is clear when a refresh starts, as in operation
                    started = time.perf_counter()
                    monitor.take(await refresher.refresh(), time.time())
                    bucket.append(time.perf_counter() - started)
                ratios.append(with_values[-1] / without[-1])
    result = median_ratio("valuation on / off: refresh of 600 balances + monitor", with_values, without, 1.1)
    result["ratio"] = statistics.median(ratios)
    result["detail"] += f"; rounds {min(ratios):.2f}–{max(ratios):.2f}"
    return result


VALUE_RULES = """
[[alert]]
field = "usd_value"
above = "100000000"

[[alert]]
venue = "totals"
field = "usd_net"
below = "1"
"""


@contextlib.contextmanager
def _world(tmp: Path, *args: str) -> Iterator[Config]:
    """bench/world.py in its own process; yields the config it wrote."""
    path = tmp / "world.toml"
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "world.py"), "--config-out", str(path), *args])
    try:
        deadline = time.monotonic() + 30
        while not path.exists() or not path.read_text().strip():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("bench/world.py did not start")
            time.sleep(0.05)
        yield load(path)
    finally:
        proc.terminate()
        proc.wait(10)


def _recording_monitor(config: Config, history: Path, kind: str = "coinbase-intx") -> Monitor:
    rules = """
[[alert]]
field = "{low}"
below = "1000"

[[alert]]
field = "{quantity}"
change = "5%"

[[alert]]
venue = "totals"
field = "total"
asset = "BTC"
below = "1"
"""
    low, quantity = ("max_withdraw_amount", "quantity") if kind == "coinbase-intx" else ("available", "balance")
    ruled = parse(rules.replace("{low}", low).replace("{quantity}", quantity))
    venues = tuple(v for v in config.venues if v.kind.kind == kind)
    return Monitor(dataclasses.replace(config, venues=venues, alerts=ruled.alerts), History(history))


# 2 -------------------------------------------------------------------------------------------------
async def kraken_period(seconds: float) -> Result:
    """8 vaults under the custody counter: achieved period vs the shortest the counter allows, with what
    the live app does after each refresh (history, totals, alert rules) on, as it runs, and the key's ledger
    (its lock, shared counter and queue) in the way of every call, as in every real process."""
    starts: list[float] = []
    bursts: list[float] = []
    with Simulator(seed=2, vaults=8, tick_seconds=1.0) as sim, tempfile.TemporaryDirectory() as tmp:
        config = parse(sim.config_text(1))
        monitor = _recording_monitor(config, Path(tmp) / "history.sqlite3", kind="kraken-custody")
        async with http.new_client(sim.url) as web:
            store = Path(tmp) / "nonces" / "key"  # the key's ledger, as every real process keeps it
            store.parent.mkdir()
            client = KrakenCustodyClient(
                web,
                Secret(sim.kraken_keys.api_key),
                Secret(sim.kraken_keys.api_secret),
                nonces=NonceSource(store),
                ledger=KeyLedger(store),
            )
            refresher = VenueRefresher(config.venues[0].name, "kraken-custody", client, refresh_seconds=1)
            await refresher.refresh()  # discovery (one more call) before timing steady refreshes
            await asyncio.sleep(refresher.next_delay())
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                started = time.monotonic()
                snap = await refresher.refresh()
                starts.append(started)
                bursts.append(time.monotonic() - started)
                assert snap.ok, snap.first_error()
                monitor.take(snap, time.time())
                await asyncio.sleep(refresher.next_delay())
            assert monitor.history is not None
            monitor.history.close()
        rejected = sim.count("kraken", verdict="rate-limited")
    periods = [b - a for a, b in itertools.pairwise(starts)]
    achieved = statistics.mean(periods)
    shortest = 10.0 + statistics.mean(bursts)  # the counter resets 10 s after the last call of a burst
    return {
        "name": "Kraken 8 vaults, history + alerts on: achieved period / shortest the counter allows",
        "ratio": achieved / shortest,
        "target": 1.1,
        "detail": f"{achieved:.2f} s vs {shortest:.2f} s over {len(periods)} refreshes, "
        f"{rejected} rate-limit rejections",
        "rejections": rejected,
    }


# 3 -------------------------------------------------------------------------------------------------
async def table_refresh(rows: int = 2000, rounds: int = 20) -> Result:
    """2,000 rows, 1% of cells changed: our in-place diff vs clear-and-rebuild, each rendered to the screen."""
    from textual.app import App

    from tui.money import Balance
    from tui.snapshot.model import AccountSnapshot, VenueSnapshot
    from tui.ui.panes import VenuePane, View
    from tui.ui.rows import Baseline

    def snapshot(generation: int) -> VenueSnapshot:
        accounts = []
        for a in range(20):
            balances = []
            for i in range(rows // 20):
                moved = (a * 100 + i) % 100 == generation % 100  # 1% of rows, 3 of 6 numeric cells each
                value = Decimal(f"{1000 + i}.{a:02d}{generation if moved else 0:04d}")
                balances.append(
                    Balance(
                        f"A{i:03d}",
                        {"balance": value, "hold_trade": Decimal("0.5"), "available": value - Decimal("0.5")},
                    )
                )
            accounts.append(AccountSnapshot(f"V{a}", f"vault {a}", tuple(balances), time.time()))
        return VenueSnapshot("bench", "kraken-custody", tuple(accounts), fetched_at=time.time())

    snaps = [snapshot(g) for g in range(rounds + 1)]

    class Bench(App[None]):
        def compose(self):  # type: ignore[no-untyped-def]
            yield VenuePane(0, "bench", "kraken-custody", Baseline(), View())

    async def timed(update: Callable[[VenuePane, VenueSnapshot], None]) -> float:
        app = Bench()
        async with app.run_test(size=(160, 50)) as pilot:
            pane = app.query_one(VenuePane)
            pane.show(snaps[0])
            await pilot.pause(0.2)
            cpu = 0.0
            for snap in snaps[1:]:
                started = time.process_time()
                update(pane, snap)
                await pilot.pause()  # let the screen render the change
                cpu += time.process_time() - started
        return cpu

    def in_place(pane: VenuePane, snap: VenueSnapshot) -> None:
        pane.show(snap)

    def rebuild(pane: VenuePane, snap: VenueSnapshot) -> None:
        pane.table.clear()
        pane.rows.clear()
        pane.show(snap)

    ours, baseline = await timed(in_place), await timed(rebuild)
    return {
        "name": "Table 2,000 rows, 1% changed: in-place / clear-and-rebuild (CPU)",
        "ratio": ours / baseline,
        "target": 0.1,
        "detail": f"{ours / rounds * 1000:.1f} ms vs {baseline / rounds * 1000:.1f} ms per refresh",
    }


# 4 -------------------------------------------------------------------------------------------------
def idle(cpu_seconds: float, total_seconds: float, full: bool, rounds: int = 3) -> list[Result]:
    """CPU of the idle TUI in tmux: the TUI alone (simulator in another process), alone with history and
    alerts on, and the demo (simulator in-process), interleaved round by round with the floor — a bare
    Textual app updating one label each second; with --full, RSS after 10 minutes of 2,000 rows, in this venv and
    in a user's install (user_venv: no test extras, so no httpx command line, click and pygments: 3 MB), all four
    side by side."""

    def measure(scenario: str, cpu: float, total: float, python: str = sys.executable) -> dict[str, Any]:
        env = None if python == sys.executable else {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        out = subprocess.run(
            [
                python,
                str(ROOT / "bench" / "idle.py"),
                "--scenario",
                scenario,
                "--cpu-seconds",
                str(cpu),
                "--total-seconds",
                str(total),
            ],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    names = ("floor", "alone", "alone-recording", "demo")
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            cpu[name].append(measure(name, cpu_seconds, cpu_seconds + 15)["idle_cpu_percent_of_core"])
    floor = statistics.median(cpu["floor"])

    def spread(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    results: list[Result] = []
    for name, label in (
        ("alone", "Idle TUI (5 s refresh, simulator in another process)"),
        ("alone-recording", "Idle TUI, history + alerts on"),
        ("demo", "Idle demo (5 s refresh, simulator in-process)"),
    ):
        ours = statistics.median(cpu[name])
        results.append(
            {
                "name": f"{label}: CPU % of one core over {cpu_seconds:.0f} s",
                "ratio": ours,
                "target": 1.0,
                "detail": f"rounds {spread(cpu[name])} %; floor (bare Textual app, a label a second) "
                f"{spread(cpu['floor'])} %: {ours / floor:.2f} x the floor",
            }
        )
    # each round's ratio against the floor measured just before it (the machine as it was then), and their median
    ratios = [ours / base for ours, base in zip(cpu["alone"], cpu["floor"], strict=True)]
    alone = statistics.median(cpu["alone"])
    results.append(
        {
            "name": "Idle TUI / the floor (a bare Textual app updating a label each second), same rounds",
            "ratio": statistics.median(ratios),
            "target": 2.0,  # issue 24
            "detail": f"rounds {spread(ratios)}; medians {alone:.2f} % / {floor:.2f} %",
        }
    )
    on = statistics.median(cpu["alone-recording"])
    recording = [with_ / without for with_, without in zip(cpu["alone-recording"], cpu["alone"], strict=True)]
    results.append(
        {
            "name": "Idle TUI CPU with history + alerts / without",
            "ratio": statistics.median(recording),
            "target": 1.1,
            "detail": f"rounds {spread(recording)}; medians {on:.2f} % vs {alone:.2f} %",
        }
    )
    if full:  # side by side: memory does not mind sharing the machine, and the four see the same hour
        user = str(user_venv())
        runs = [
            (python, scenario) for python in (sys.executable, user) for scenario in ("rows-2000", "rows-2000-recording")
        ]
        with concurrent.futures.ThreadPoolExecutor(len(runs)) as pool:
            plain, recording, user_plain, user_recording = pool.map(
                lambda run: measure(run[1], cpu_seconds, total_seconds, run[0]), runs
            )
        for install, with_, without in (("", recording, plain), (", in a user's install", user_recording, user_plain)):
            extra = with_["rss_mb_at_end"] - without["rss_mb_at_end"]
            results.append(
                {
                    "name": f"Idle TUI, 2,000 rows + history + alerts: RSS after {total_seconds / 60:.0f} min (MB)"
                    f"{install}",
                    "ratio": with_["rss_mb_at_end"],
                    "target": 80.0,
                    "detail": f"the floor, the same without history and alerts beside it: {without['rss_mb_at_end']} "
                    "MB "
                    f"(+{extra:.1f} MB); after warm-up {with_['rss_mb_after_warmup']} vs "
                    f"{without['rss_mb_after_warmup']} MB",
                }
            )
    return results


# 5 -------------------------------------------------------------------------------------------------
USER_VENV = Path(os.environ.get("BENCH_USER_VENV", Path(tempfile.gettempdir()) / "balance-tui-bench-user-venv"))


def user_venv() -> Path:
    """A user's install: a venv with only the project (`pip install .`, no test extras), made on first use at
    $BENCH_USER_VENV and given this checkout's code each run. The test venv is no floor for `--once`: there
    `import httpx` also imports its command line (click, rich, pygments), which a user's install has not."""
    python = USER_VENV / "bin" / "python"
    quiet = {"check": True, "capture_output": True}
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(USER_VENV)], **quiet)  # type: ignore[call-overload]
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], **quiet)  # type: ignore[call-overload]
    else:
        subprocess.run(  # type: ignore[call-overload]
            [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(ROOT)], **quiet
        )
    return python


def startup(rounds: int = 21) -> list[Result]:
    """`--once` start to exit against the simulator (one vault, one portfolio), interleaved with two floors:
    `python -c "import httpx"`, and bench/minimal_once.py making the same signed calls with httpx alone.
    All three run in a user's install (user_venv), from a folder outside the checkout.
    Each round's ratios are taken within the round (the three run back to back), medians and spread."""
    python = str(user_venv())
    with Simulator(seed=3, vaults=1, portfolios=1) as sim, tempfile.TemporaryDirectory() as tmp:
        sim.kraken_rate_limit = False
        config = Path(tmp) / "c.toml"
        sim.write_config(config)
        env = {k: v for k, v in os.environ.items() if k not in ("BALANCE_TUI_CONFIG", "PYTHONPATH")}
        commands = {
            "once": [python, "-m", "tui", "--once", "--config", str(config)],
            "httpx": [python, "-c", "import httpx"],
            "minimal": [python, str(ROOT / "bench" / "minimal_once.py"), str(config)],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(rounds):
            # a state folder per round: back to back, the rounds' calls on one key fill Kraken's custody counter
            # (10), and the 10th call waits out its window -- a wait the README promises, not start-up's cost
            env["XDG_STATE_HOME"] = str(Path(tmp) / f"state-{round_}")
            for name, command in commands.items():
                started = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True, env=env, cwd=tmp)
                times[name].append(time.perf_counter() - started)

    def against(floor: str, label: str, target: float) -> Result:
        ratios = [a / b for a, b in zip(times["once"], times[floor], strict=True)]
        once, base = statistics.median(times["once"]), statistics.median(times[floor])
        return {
            "name": f"--once start to exit / {label}, in a user's install",
            "ratio": statistics.median(ratios),
            "target": target,
            "detail": f"{once * 1000:.0f} ms vs {base * 1000:.0f} ms; rounds {min(ratios):.2f}–{max(ratios):.2f}",
        }

    return [
        against("httpx", "python -c 'import httpx'", 2.0),
        against("minimal", "the same signed calls with httpx alone (bench/minimal_once.py)", 1.3),
    ]


# 6 -------------------------------------------------------------------------------------------------
def _sim_process(seed: int) -> tuple[subprocess.Popen[str], str, str, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = Path(tempfile.mkdtemp()) / "sim.toml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui",
            "sim",
            "--port",
            str(port),
            "--seed",
            str(seed),
            "--tick",
            "0",
            "--no-rate-limits",
            "--config-out",
            str(config),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    text = config.read_text()
    key = re.search(r'api_key = "(demo-kraken-[^"]+)"', text)
    secret = re.search(r'api_secret = "([^"]+)"', text)
    assert key and secret
    return proc, f"http://127.0.0.1:{port}", key.group(1), secret.group(1)


def kraken_vs_sdk(requests: int = 200, rounds: int = 7) -> list[Result]:
    """CPU per answered GetCustodyBalance: our client vs python-kraken-sdk's generic signed request, and
    the floor: the same signed request through httpx alone (an AsyncClient, as ours, and nothing else).

    Each simulator runs in its own process (its CPU is not counted); every contender has its own key,
    since Kraken nonces are per key. The SDK sends its nonce as a JSON string, which the custody schema
    (an int64) and the simulator refuse: it runs with the integer millisecond nonce a user would give it.
    Every timed call must come back with the vault's balances, or the figure says how many did not.
    Ours keeps its nonces on disk, as the app does. Batches alternate, `rounds` times; each ratio is the
    median of the rounds', with their spread.
    """
    names = (
        "Kraken client vs python-kraken-sdk: CPU per answered request",
        "Kraken client / httpx alone (the same signed request, nothing else): CPU per answered request",
    )
    try:
        from tests.sdk import IntegerNonceSpotClient
    except ImportError:
        skipped = "skipped: pip install -e '.[test]'"
        return [{"name": n, "ratio": float("nan"), "target": 1.0, "detail": skipped} for n in names]

    seeds = {"ours": 11, "theirs": 12, "httpx": 13}
    sims = {who: _sim_process(seed) for who, seed in seeds.items()}
    markets = {who: Simulator(seed=seed).market for who, seed in seeds.items()}  # what each simulator serves
    vaults = {who: next(iter(market.vaults)) for who, market in markets.items()}
    holdings = {who: len(market.vaults[vaults[who]].holdings) for who, market in markets.items()}
    answered = dict.fromkeys(sims, 0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            nonces = NonceSource(Path(tmp) / "nonce")
            _, ours_url, ours_key, ours_secret = sims["ours"]

            async def ours() -> float:
                async with http.new_client(ours_url) as web:
                    client = KrakenCustodyClient(
                        web, Secret(ours_key), Secret(ours_secret), counter=CustodyCounter(limit=10**9), nonces=nonces
                    )
                    await client.balances(vaults["ours"])
                    started = time.process_time()
                    for _ in range(requests):
                        answered["ours"] += len(await client.balances(vaults["ours"])) == holdings["ours"]
                    return (time.process_time() - started) / requests

            _, theirs_url, theirs_key, theirs_secret = sims["theirs"]
            sdk = IntegerNonceSpotClient(key=theirs_key, secret=theirs_secret, url=theirs_url)

            def call_theirs() -> object:
                return sdk.request(
                    "POST", "/0/private/GetCustodyBalance", params={"vault_id": vaults["theirs"]}, do_json=True
                )

            def theirs() -> float:
                call_theirs()
                started = time.process_time()
                for _ in range(requests):
                    answer = call_theirs()
                    good = isinstance(answer, dict) and len(answer) == holdings["theirs"] and "error" not in answer
                    answered["theirs"] += good
                return (time.process_time() - started) / requests

            _, bare_url, bare_key, bare_secret = sims["httpx"]
            bare = {"api_key": bare_key, "api_secret": bare_secret}
            last_nonce = [0]

            async def alone() -> float:
                path = "/0/private/GetCustodyBalance"

                async def call(client: httpx.AsyncClient) -> object:
                    last_nonce[0] = nonce = max(last_nonce[0] + 1, time.time_ns() // 1_000_000)
                    body = json.dumps({"nonce": nonce, "vault_id": vaults["httpx"]}, separators=(",", ":")).encode()
                    response = await client.post(
                        bare_url + path, content=body, headers=kraken_headers(bare, path, nonce, body)
                    )
                    return json.loads(response.content, parse_float=Decimal).get("result")

                async with httpx.AsyncClient(timeout=10) as client:
                    await call(client)
                    started = time.process_time()
                    for _ in range(requests):
                        answer = await call(client)
                        answered["httpx"] += isinstance(answer, dict) and len(answer) == holdings["httpx"]
                    return (time.process_time() - started) / requests

            times: dict[str, list[float]] = {who: [] for who in sims}
            for _ in range(rounds):
                times["ours"].append(asyncio.run(ours()))
                times["theirs"].append(theirs())
                times["httpx"].append(asyncio.run(alone()))
    finally:
        for proc, *_ in sims.values():
            proc.terminate()
            proc.wait(10)
    timed = requests * rounds
    if any(count != timed for count in answered.values()):
        detail = "not every call was answered: " + ", ".join(f"{k} {v}/{timed}" for k, v in answered.items())
        return [{"name": n, "ratio": float("nan"), "target": 1.0, "detail": detail} for n in names]

    def med(who: str) -> float:
        return statistics.median(times[who]) * 1e6

    def against(base: str) -> tuple[float, str]:
        ratios = [a / b for a, b in zip(times["ours"], times[base], strict=True)]
        return statistics.median(ratios), f"rounds {min(ratios):.2f}–{max(ratios):.2f}"

    sdk_ratio, sdk_spread = against("theirs")
    floor_ratio, floor_spread = against("httpx")
    sdk_vs_floor = statistics.median(t / f for t, f in zip(times["theirs"], times["httpx"], strict=True))
    return [
        {
            "name": names[0],
            "ratio": sdk_ratio,
            "target": 1.0,
            "detail": f"{med('ours'):.0f} µs vs {med('theirs'):.0f} µs; {timed} of {timed} answered each; "
            f"{sdk_spread}; the SDK (requests, synchronous) is {sdk_vs_floor:.2f} x httpx alone",
        },
        {
            "name": names[1],
            "ratio": floor_ratio,
            "target": 1.3,
            "detail": f"{med('ours'):.0f} µs vs {med('httpx'):.0f} µs; {floor_spread}",
        },
    ]


# 7 -------------------------------------------------------------------------------------------------
VIEWERS = """
import asyncio, signal, sys
import aiohttp

async def main(url: str, count: int) -> None:
    lines = [0] * count
    async def follow(i: int) -> None:
        async with session.get(url + "/events", timeout=aiohttp.ClientTimeout(total=None)) as response:
            async for _ in response.content:
                lines[i] += 1
    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(follow(i)) for i in range(count)]
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print("following", flush=True)
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(min(lines), max(lines), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""
PRIVATE = ("kraken", "intx")  # the keys' requests; the public price source keeps its own 60 s schedule


def serve_viewers(rounds: int = 3, refreshes: tuple[int, int] = (20, 6)) -> list[Result]:
    """`balance-tui serve` (its own process) with 1 vs 50 viewers of /events, rounds interleaved: its CPU
    time and RSS over the same number of refreshes (INTX and Kraken each), and the venues' requests per
    refresh, counted by the simulator (in this process) between two quiet moments, so that no refresh is
    cut in two."""
    from prometheus_client.parser import text_string_to_metric_families

    from bench.idle import cpu_seconds, rss_mb

    def refreshes_now(url: str) -> dict[str, float]:
        text = httpx.get(url + "/metrics", timeout=10).text
        family = next(f for f in text_string_to_metric_families(text) if f.name == "balance_tui_venue_refreshes")
        return {s.labels["venue"]: s.value for s in family.samples}

    def quiet(sim: Simulator, url: str) -> tuple[Counter[tuple[str, str, str]], dict[str, float], float]:
        """The simulator's counts and serve's refreshes at a moment when no refresh is under way."""
        while True:
            before = sim.stats()
            time.sleep(0.2)
            done = refreshes_now(url)
            time.sleep(0.2)
            if sim.stats() == before:
                return before, done, time.monotonic()

    def arm(sim: Simulator, config: Path, viewers: int) -> dict[str, float]:
        env = {k: v for k, v in os.environ.items() if k != "BALANCE_TUI_CONFIG"}
        serve = subprocess.Popen(
            [sys.executable, "-m", "tui", "serve", "--config", str(config), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        watchers = None
        try:
            assert serve.stdout is not None
            url = serve.stdout.readline().rsplit(" ", 1)[-1].strip()
            watchers = subprocess.Popen(
                [sys.executable, "-c", VIEWERS, url, str(viewers)], stdout=subprocess.PIPE, text=True, cwd=ROOT
            )
            assert watchers.stdout is not None and watchers.stdout.readline().strip() == "following"
            while min(refreshes_now(url).values(), default=0) < 2:  # discovery and first prices behind us
                time.sleep(0.5)
            stats0, done0, _ = quiet(sim, url)
            cpu0 = cpu_seconds(serve.pid)
            intx, kraken = (next(v for v in done0 if kind in v.lower()) for kind in ("intx", "kraken"))
            while True:
                done = refreshes_now(url)
                if done[intx] - done0[intx] >= refreshes[0] and done[kraken] - done0[kraken] >= refreshes[1]:
                    break
                time.sleep(0.5)
            stats1, done1, _ = quiet(sim, url)
            cpu1, rss = cpu_seconds(serve.pid), rss_mb(serve.pid)
            watchers.terminate()
            lines = watchers.communicate(timeout=30)[0].split()
            counted = sum(done1[v] - done0[v] for v in (intx, kraken))
            spent = stats1 - stats0
            return {
                "cpu_per_refresh": (cpu1 - cpu0) / counted,
                "rss_mb": rss,
                "requests_per_refresh": sum(n for (venue, _, _), n in spent.items() if venue in PRIVATE) / counted,
                "refreshes": counted,
                "fewest_lines": float(lines[0]),
            }
        finally:
            for proc in (watchers, serve):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    proc.wait(30)

    figures: dict[int, list[dict[str, float]]] = {1: [], 50: []}
    with Simulator(seed=4, tick_seconds=1.0) as sim, tempfile.TemporaryDirectory() as tmp:
        sim.kraken_rate_limit = False  # each round's fresh process starts with a fresh counter of its own
        config = Path(tmp) / "serve.toml"
        sim.write_config(config, refresh_seconds=1)
        with config.open("a") as out:
            out.write("\n[history]\nenabled = false\n")
        for _ in range(rounds):
            for viewers in (1, 50):
                figures[viewers].append(arm(sim, config, viewers))

    def ratios(key: str) -> list[float]:
        return [b[key] / a[key] for a, b in zip(figures[1], figures[50], strict=True)]

    def spread(values: list[float]) -> str:
        return f"rounds {min(values):.2f}–{max(values):.2f}"

    def med(viewers: int, key: str) -> float:
        return statistics.median(f[key] for f in figures[viewers])

    cpu, rss, requests = ratios("cpu_per_refresh"), ratios("rss_mb"), ratios("requests_per_refresh")
    fewest = min(f["fewest_lines"] for f in figures[50])
    counted = f"{med(50, 'refreshes'):.0f} refreshes a round; every viewer got ≥ {fewest:.0f} lines"
    return [
        {
            "name": "serve, 50 viewers / 1 viewer: venue requests per refresh",
            "ratio": statistics.median(requests),
            "target": 1.0,
            "detail": f"{med(50, 'requests_per_refresh'):.2f} vs {med(1, 'requests_per_refresh'):.2f}; "
            f"{spread(requests)}; {counted}",
        },
        {
            "name": "serve, 50 viewers / 1 viewer: CPU time per refresh",
            "ratio": statistics.median(cpu),
            "target": 3.0,
            "detail": f"{med(50, 'cpu_per_refresh') * 1000:.1f} ms vs {med(1, 'cpu_per_refresh') * 1000:.1f} ms; "
            f"{spread(cpu)}",
        },
        {
            "name": "serve, 50 viewers / 1 viewer: RSS at the end of the window",
            "ratio": statistics.median(rss),
            "target": 1.2,
            "detail": f"{med(50, 'rss_mb'):.1f} MB vs {med(1, 'rss_mb'):.1f} MB; {spread(rss)}",
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--full", action="store_true", help="Kraken over 3 minutes; RSS after 10 minutes of 2,000 rows (about 40 min)"
    )
    parser.add_argument("--only", help="run only benchmarks whose name contains this")
    args = parser.parse_args()
    kraken_seconds = 180.0 if args.full else 60.0
    idle_total = 600.0
    jobs: list[tuple[str, Callable[[], Result | list[Result]]]] = [
        ("fan-out", lambda: asyncio.run(intx_fan_out())),
        ("valuation", lambda: asyncio.run(valuation())),
        ("kraken", lambda: asyncio.run(kraken_period(kraken_seconds))),
        ("table", lambda: asyncio.run(table_refresh())),
        ("idle", lambda: idle(60.0, idle_total, args.full)),  # 12 refreshes of 5 s, 9 Kraken periods: whole cycles
        ("startup", startup),
        ("sdk", kraken_vs_sdk),
        ("serve", serve_viewers),
    ]
    results: list[Result] = []
    for name, job in jobs:
        if args.only and args.only not in name:
            continue
        outcome = job()
        for result in outcome if isinstance(outcome, list) else [outcome]:
            result["met"] = bool(result["ratio"] <= result["target"])
            results.append(result)
            print(
                f"{'ok ' if result['met'] else 'MISS'} {result['ratio']:8.3f} (target ≤ {result['target']:g})  "
                f"{result['name']}  [{result['detail']}]",
                flush=True,
            )
    out = ROOT / "bench" / "results.json"
    out.write_text(json.dumps({"full": args.full, "results": results}, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
