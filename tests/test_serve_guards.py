"""Promises of `serve`'s parts that no other test held it to (issue 22): a viewer behind on nothing is never
dropped, the throttled reports say how many they held back, viewers without our header are told apart by
address and User-Agent, the bearer scheme is case-insensitive, the viewer bound is exact, and what the
server says of a venue that has never answered (/healthz, /metrics, the state of /events) or of one whose
accounts fail (/healthz beside /snapshot)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_serve import Reader, Served, balances_of, get, settled, until
from tui.credentials import Secret
from tui.sim import Simulator
from tui.sinks.access import authorized
from tui.sinks.audience import Audience
from tui.sinks.fanout import Fanout
from tui.sinks.listener import Throttle


@pytest.fixture
def config(sim: Simulator, tmp_path: Path) -> Path:
    path = tmp_path / "serve.toml"
    sim.write_config(path, refresh_seconds=1)
    with path.open("a") as out:
        out.write("\n[history]\nenabled = false\n")
    return path


# --- the parts on their own ------------------------------------------------------------------------------


def test_a_viewer_behind_on_nothing_takes_any_batch_and_one_behind_is_dropped_past_the_bound() -> None:
    """The bound is on lines a viewer is behind: a first refresh of 5 lines goes to a viewer with a bound of 3
    that has read everything; one more line while those 5 are unread passes the bound, and it is dropped,
    counted and said."""
    said: list[str] = []

    async def run() -> None:
        fanout = Fanout(limit=3, say=said.append)
        viewer = fanout.join("10.0.0.7:5555", b'{"event": "new"}\n')
        first = await viewer.next(3600)
        assert first is not None and first.startswith(b'{"event": "new"}\n') and b'"heartbeat"' in first
        batch = [b'{"n": %d}\n' % i for i in range(5)]
        fanout.send(batch)
        assert viewer.ended is None and fanout.dropped == 0 and viewer in fanout.viewers
        fanout.send([b'{"n": 5}\n'])  # 5 unread + 1 > 3
        assert viewer.dropped and fanout.dropped == 1 and viewer not in fanout.viewers
        assert await viewer.next(3600) is None
        assert said == ["viewer 10.0.0.7:5555 dropped: it fell 6 lines behind (at most 3): read faster"]

    asyncio.run(run())


def test_a_report_held_back_is_counted_and_said_with_the_next_one_or_at_the_end() -> None:
    now = [0.0]
    said: list[str] = []
    throttle = Throttle(said.append, every=60.0, clock=lambda: now[0])
    for second in (0.0, 1.0, 2.0):
        now[0] = second
        throttle.say("accept", "cannot accept connections")
    assert said == ["cannot accept connections"]
    now[0] = 61.0
    throttle.say("accept", "cannot accept connections")
    assert said[-1] == "cannot accept connections (2 more like it in the last 61 s)"
    now[0] = 70.0
    throttle.say("accept", "cannot accept connections")
    throttle.say("other", "something else")  # another kind: said at once
    assert said[-1] == "something else"
    throttle.flush()
    assert said[-1] == "cannot accept connections (1 more like it in the last 9 s)" and len(said) == 4


def test_clients_without_our_header_are_told_apart_by_address_and_user_agent() -> None:
    audience = Audience(clock=lambda: 0.0)
    audience.saw(None, "127.0.0.1", "curl/8.5")
    audience.saw(None, "127.0.0.1", "python-httpx/0.27")  # a script beside curl, from the same address
    audience.saw(None, "127.0.0.1", "curl/8.5")  # curl again: the same client
    audience.saw("", "10.0.0.9", "curl/8.5")  # curl elsewhere
    audience.saw("terminal", "127.0.0.1", "curl/8.5")  # a kind without an id says nothing of itself
    assert audience.counts() == {"snapshot": 3, "browser": 0}


def test_the_bearer_scheme_is_case_insensitive_and_nothing_else_is() -> None:
    """RFC 7235: the scheme's case does not matter; the token's does."""
    token = Secret("s3rve-t0ken-9f6b2c1e7d-4a8e0b3c5f7d9e1a")
    for header in ("Bearer {}", "bearer {}", "BEARER {}", "  Bearer   {}  "):
        assert authorized(header.format(token.reveal()), token), header
    for header in (f"Bearer {token.reveal().upper()}", f"Basic {token.reveal()}", "Bearer", ""):
        assert not authorized(header, token), header


# --- a server ------------------------------------------------------------------------------------------------


def _samples(served: Served) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = get(served.url + "/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_exactly_max_viewers_stream_and_the_next_is_refused(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    served = serve(config, max_viewers=2)
    until(lambda: settled(served), "every venue answered")
    readers = [Reader(served.url + "/events") for _ in range(2)]
    until(lambda: all(r.lines for r in readers), "both streams flowing")
    for _ in range(2):  # streamed: a third viewer let in would never end
        with httpx.stream("GET", served.url + "/events", timeout=30) as third:
            assert third.status_code == 503
            assert "2 viewers" in json.loads(third.read())["error"]
    assert served.call(lambda: len(served.server.fanout.viewers)) == 2


def test_a_venue_that_never_answered_is_down_of_unknown_age_and_in_the_state_as_failing(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    """Kraken and the prices refuse from the start (503), INTX answers: /healthz and /metrics say Kraken down
    with an age of +Inf (no good answer yet, not "fresh"), the prices' age +Inf and no value or total served
    (nothing is worth anything without prices), INTX up with every amount; a new viewer of /events gets
    INTX's balances and Kraken's failing with its cause, as a --watch reader would have it."""
    sim.faults.set("http-5xx", venue="kraken")
    sim.faults.set("http-5xx", venue="prices")  # no price either: no worth is served, and no age but +Inf
    served = serve(config)

    def intx_in_and_kraken_failing() -> dict[str, Any] | None:
        doc: dict[str, Any] = get(served.url + "/snapshot").json()
        kraken, intx = doc["venues"]
        failing = kraken["error"] and not kraken["ok"] and doc["prices"]["error"]
        return doc if intx["ok"] and intx["accounts"] and failing else None

    doc = until(intx_in_and_kraken_failing, "INTX answered and Kraken failing")
    kraken, intx = doc["venues"]
    health = get(served.url + "/healthz").json()
    assert health["venues"] == {kraken["name"]: False, intx["name"]: True}
    samples = _samples(served)

    def metric(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    assert metric("balance_tui_venue_up", venue=kraken["name"]) == 0.0
    assert metric("balance_tui_venue_up", venue=intx["name"]) == 1.0
    assert metric("balance_tui_venue_data_age_seconds", venue=kraken["name"]) == math.inf
    age = metric("balance_tui_venue_data_age_seconds", venue=intx["name"])
    assert age is not None and 0 <= age < 3600
    assert metric("balance_tui_price_age_seconds") == math.inf and doc["usd_total"] is None
    assert not [k for k in samples if k[0].startswith(("balance_tui_usd_", "balance_tui_price_usd"))]
    amounts = {k for k in samples if k[0] == "balance_tui_balance"}
    assert {dict(k[1])["venue"] for k in amounts} == {intx["name"]}
    assert len({(dict(k[1])["account"], dict(k[1])["asset"]) for k in amounts}) == len(balances_of(doc))

    reader = Reader(served.url + "/events")
    until(lambda: any(ln["event"] == "heartbeat" for ln in reader.lines), "the state and its end mark")
    state = reader.lines[: [ln["event"] for ln in reader.lines].index("heartbeat")]
    failing = [ln for ln in state if ln["event"] == "venue-failing"]
    assert [(ln["venue"], "503" in ln["error"]) for ln in failing] == [(kraken["name"], True)]
    assert {(ln["venue"], ln["account"]["id"], ln["asset"]) for ln in state if ln["event"] == "new"} == set(
        balances_of(doc)
    )


def test_healthz_says_a_venue_whose_accounts_fail_is_not_up_as_snapshot_does(
    sim: Simulator, config: Path, serve: Callable[..., Served]
) -> None:
    """INTX lists its portfolios but every balance call fails: the venue itself has no error, its accounts do.
    /healthz is what a load balancer or a page reads: INTX not up, Kraken up, exactly as /snapshot's `ok`."""
    served = serve(config)
    until(lambda: settled(served), "every venue answered")
    sim.faults.set("http-5xx", venue="intx", endpoint="balances")

    def accounts_failing() -> dict[str, Any] | None:
        doc: dict[str, Any] = get(served.url + "/snapshot").json()
        intx = doc["venues"][1]
        return doc if intx["accounts"] and all(a["error"] for a in intx["accounts"]) else None

    doc = until(accounts_failing, "INTX's accounts failing")
    health = get(served.url + "/healthz").json()
    assert health["venues"] == {v["name"]: v["ok"] for v in doc["venues"]}
    assert list(health["venues"].values()) == [True, False]


def test_metrics_count_the_viewers_dropped(sim: Simulator, config: Path, serve: Callable[..., Served]) -> None:
    """A viewer of the server's own fanout that falls past the bound (queue_lines=3) is dropped for real, and
    the scrape counts it."""
    served = serve(config, queue_lines=3)
    until(lambda: settled(served), "every venue answered")

    def before() -> float:
        return _samples(served)[("balance_tui_viewers_dropped_total", ())]

    assert before() == 0.0

    def fall_behind() -> int:
        fanout = served.server.fanout
        viewer = fanout.join("192.0.2.1:4242", b"")
        fanout.send([b"{}\n"] * 2)  # behind on nothing: taken
        fanout.send([b"{}\n"] * 2)  # 4 behind, at most 3: dropped
        assert viewer.dropped
        return int(fanout.dropped)

    assert served.call(fall_behind) == 1
    assert before() == 1.0
    assert "viewer 192.0.2.1:4242 dropped" in served.err.getvalue()


def test_a_new_viewer_gets_the_prices_once_however_often_they_are_fetched_unchanged() -> None:
    """The prices line comes when prices or their trouble change, not at each fetch of the same prices."""
    from decimal import Decimal

    from tui.engine.prices import PriceBook
    from tui.sinks.watch import Lines
    from tui.venues.kraken_prices import Price

    lines = Lines()
    book = PriceBook("kraken", {"BTC": Price(Decimal("65000.1"), "XXBTZUSD")}, fetched_at=1.0)
    first = lines.prices(book)
    assert [ln["event"] for ln in first] == ["prices"]
    again = PriceBook("kraken", {"BTC": Price(Decimal("65000.1"), "XXBTZUSD")}, fetched_at=61.0)  # refetched
    assert lines.prices(again) == []
    moved = PriceBook("kraken", {"BTC": Price(Decimal("65000.2"), "XXBTZUSD")}, fetched_at=121.0)
    assert json.loads(json.dumps(lines.prices(moved)))[0]["usd_prices"] == {"BTC": "65000.2"}


def test_metrics_count_each_finished_refresh_as_the_venues_saw_them(
    sim: Simulator, config: Path, serve: Callable[..., Served], tmp_path: Path
) -> None:
    """An hour between refreshes, two more asked for by hand: `balance_tui_venue_refreshes_total` says 3 for
    each venue, and the simulator saw 3 balance calls per account — the count is of refreshes that happened."""
    hourly = tmp_path / "hourly.toml"
    hourly.write_text(config.read_text().replace("refresh_seconds = 1", "refresh_seconds = 3600"))
    hourly.chmod(0o600)
    before = sim.stats()
    served = serve(hourly)
    doc = until(lambda: settled(served), "every venue answered")
    names = [v["name"] for v in doc["venues"]]

    def refreshes() -> dict[str, float]:
        samples = _samples(served)
        return {name: samples.get(("balance_tui_venue_refreshes_total", (("venue", name),)), -1.0) for name in names}

    assert refreshes() == dict.fromkeys(names, 1.0)
    for count in (2, 3):
        served.call(served.poller.engine.refresh_now)
        until(lambda c=count: refreshes() == dict.fromkeys(names, float(c)), f"refresh {count} counted")  # type: ignore[misc]
    spent = sim.stats() - before
    assert spent[("intx", "balances", "ok")] == 3 * len(sim.market.portfolios)
    assert spent[("kraken", "GetCustodyBalance", "ok")] == 3 * len(sim.market.vaults)


def test_serve_pages_on_fire_and_on_clear_and_says_both(
    sim: Simulator, config: Path, serve: Callable[..., Served], tmp_path: Path
) -> None:
    """The alert command runs on fire and on clear (design.md), the alert as JSON on stdin, and serve's own
    output says each; /metrics' firing count goes 0 → 1 → 0 with it."""
    import sys

    pages = tmp_path / "pages.jsonl"
    script = tmp_path / "page.py"
    script.write_text("import sys\nwith open(sys.argv[1], 'a') as out:\n    out.write(sys.stdin.read() + '\\n')\n")
    portfolio = next(iter(sim.market.portfolios))
    with config.open("a") as out:
        out.write(
            f'\n[[alert]]\nname = "huge BTC"\nvenue = "Coinbase INTX (simulated)"\naccount = "{portfolio}"\n'
            f'asset = "BTC"\nfield = "quantity"\nabove = "5000000"\ncommand = "{sys.executable} {script} {pages}"\n'
        )
    sim.market.set_intx(portfolio, "BTC", quantity="1", hold="0")
    served = serve(config)
    until(lambda: settled(served), "every venue answered")

    def firing() -> float:
        return _samples(served)[("balance_tui_alert_firing", (("alert", "huge BTC"),))]

    def paged() -> list[dict[str, Any]]:
        return [json.loads(ln) for ln in pages.read_text().splitlines() if ln.strip()] if pages.exists() else []

    assert firing() == 0.0 and not paged()
    sim.market.set_intx(portfolio, "BTC", quantity="5000000.1", hold="0")
    until(lambda: len(paged()) == 1, "the page on fire")
    assert firing() == 1.0
    sim.market.set_intx(portfolio, "BTC", quantity="4999999.9", hold="0")
    until(lambda: len(paged()) == 2, "the page on clear")
    fired, cleared = paged()
    assert (fired["state"], fired["value"], fired["account"]["id"]) == ("firing", "5000000.1", portfolio)
    assert (cleared["state"], cleared["account"]["id"], cleared["cleared_at"] is not None) == (
        "cleared",
        portfolio,
        True,
    )
    assert firing() == 0.0
    said = served.err.getvalue()
    assert "alert fired: huge BTC: Coinbase INTX (simulated) / " in said
    assert "alert cleared: huge BTC: Coinbase INTX (simulated) / " in said
