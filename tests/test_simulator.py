"""The simulator itself: faults on the wire, targeting, determinism, and a clean start and stop."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from email.utils import parsedate_to_datetime

import httpx
import pytest

from tui.sim import Simulator, parse_fault_flag
from tui.sim.faults import FaultKind
from tui.venues import intx, kraken


def kraken_post(
    sim: Simulator, client: httpx.Client, method: str = "GetCustodyBalance", nonce: int | None = None
) -> httpx.Response:
    vault = next(iter(sim.market.vaults))
    nonce = nonce or time.time_ns()
    body = kraken.encode_body({"nonce": nonce, "vault_id": vault})
    path = f"/0/private/{method}"
    sign = kraken.sign(sim.kraken_keys.api_secret, path, nonce, body)
    return client.post(
        path,
        content=body,
        headers={"API-Key": sim.kraken_keys.api_key, "API-Sign": sign, "Content-Type": "application/json"},
    )


def intx_get(sim: Simulator, client: httpx.Client, path: str = "/api/v1/portfolios") -> httpx.Response:
    ts = str(int(time.time()))
    return client.get(
        path,
        headers={
            "CB-ACCESS-KEY": sim.intx_keys.api_key,
            "CB-ACCESS-PASSPHRASE": sim.intx_keys.passphrase or "",
            "CB-ACCESS-TIMESTAMP": ts,
            "CB-ACCESS-SIGN": intx.sign(sim.intx_keys.api_secret, ts, "GET", path),
        },
    )


PATIENCE = 60.0  # a safety net for waits that poll for a state; no test asserts how fast anything is


@pytest.fixture
def wire(sim: Simulator) -> httpx.Client:
    with httpx.Client(base_url=sim.url, timeout=PATIENCE) as client:
        yield client  # type: ignore[misc]


def arrivals(sim: Simulator, monkeypatch: pytest.MonkeyPatch, venue: str) -> threading.Event:
    """Set once the simulator has taken a request for `venue` and drawn its faults: from then on, the request
    is held by whatever latency, hang... was drawn."""
    arrived = threading.Event()
    draw = sim.faults.draw

    def drawing(v: str, endpoint: str) -> tuple[float, float, object]:
        outcome = draw(v, endpoint)
        if v == venue:
            arrived.set()
        return outcome

    monkeypatch.setattr(sim.faults, "draw", drawing)
    return arrived


def sim_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sim-") and t.is_alive()]


def test_added_latency(sim: Simulator, wire: httpx.Client) -> None:
    sim.faults.set("latency", venue="intx", value=0.3)
    started = time.monotonic()
    assert intx_get(sim, wire).status_code == 200
    assert time.monotonic() - started >= 0.3  # a lower bound: the simulator waits at least that long


def test_latency_holds_only_the_targeted_venue_and_stop_ends_it(
    sim: Simulator, wire: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Kraken request is answered while an INTX request is still held by its latency (far longer than the
    test), and stopping the simulator ends the held request without an answer."""
    sim.faults.set("latency", venue="intx", value=10 * PATIENCE)
    arrived = arrivals(sim, monkeypatch, "intx")
    outcome: dict[str, object] = {}

    def call() -> None:
        with httpx.Client(base_url=sim.url, timeout=PATIENCE) as client:
            try:
                outcome["status"] = intx_get(sim, client).status_code
            except httpx.HTTPError as exc:
                outcome["error"] = exc

    held = threading.Thread(target=call)
    held.start()
    assert arrived.wait(PATIENCE), "the INTX request never reached the simulator"
    assert kraken_post(sim, wire).status_code == 200
    assert held.is_alive() and not outcome, f"the INTX request was not held: {outcome}"
    assert sim.count("kraken", verdict="ok") == 1 and sim.count("intx") == 0
    sim.stop()
    held.join(PATIENCE)
    assert not held.is_alive(), "the held INTX request outlived the simulator"
    assert "error" in outcome, f"the held INTX request was answered: {outcome}"
    assert not sim_threads(), f"stop left request threads behind: {sim_threads()}"
    assert sim.count("intx") == 0


def test_http_5xx(sim: Simulator, wire: httpx.Client) -> None:
    sim.faults.set("http-5xx", venue="intx", value=502)
    assert intx_get(sim, wire).status_code == 502
    sim.faults.set("http-5xx", venue="kraken")
    assert kraken_post(sim, wire).status_code == 503


def test_429_with_and_without_retry_after(sim: Simulator, wire: httpx.Client) -> None:
    sim.faults.set("429", venue="intx")
    answer = intx_get(sim, wire)
    assert answer.status_code == 429 and "retry-after" not in answer.headers
    sim.faults.clear()
    sim.faults.set("429-retry-after", venue="intx", value=9)
    answer = intx_get(sim, wire)
    assert answer.status_code == 429 and answer.headers["retry-after"] == "9"


def test_html_error_page(sim: Simulator, wire: httpx.Client) -> None:
    sim.faults.set("html", venue="kraken")
    answer = kraken_post(sim, wire)
    assert answer.status_code == 502 and answer.headers["content-type"] == "text/html"
    assert answer.text.startswith("<html>")


def test_truncated_json(sim: Simulator, wire: httpx.Client) -> None:
    sim.faults.set("truncated", venue="intx")
    answer = intx_get(sim, wire)
    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)


def test_connection_reset(sim: Simulator, wire: httpx.Client) -> None:
    sim.faults.set("reset", venue="kraken")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        kraken_post(sim, wire)


def test_hang_past_the_timeout(sim: Simulator) -> None:
    sim.faults.set("hang", venue="intx")
    with httpx.Client(base_url=sim.url, timeout=0.5) as client, pytest.raises(httpx.ReadTimeout):
        intx_get(sim, client)


def test_kraken_error_list_in_a_200(sim: Simulator, wire: httpx.Client) -> None:
    sim.faults.set("kraken-error", venue="kraken", value="EGeneral:Temporary lockout")
    answer = kraken_post(sim, wire)
    assert answer.status_code == 200 and answer.json()["error"] == ["EGeneral:Temporary lockout"]


def test_empty_result(sim: Simulator, wire: httpx.Client) -> None:
    sim.faults.set("empty")
    assert intx_get(sim, wire).json() == []
    assert kraken_post(sim, wire).json() == {"error": [], "result": {}}


def test_clock_skew_shifts_date_and_rejects_timestamps(sim: Simulator, wire: httpx.Client) -> None:
    sim.faults.set("skew", venue="intx", value=60)
    before = time.time()
    answer = intx_get(sim, wire)
    after = time.time()
    assert answer.status_code == 401 and "timestamp" in answer.text
    served = parsedate_to_datetime(answer.headers["date"]).timestamp()  # whole seconds, rounded down
    assert int(before) + 60 <= served <= after + 60


def test_faults_target_one_endpoint_and_switch_off_live(sim: Simulator, wire: httpx.Client) -> None:
    sim.faults.set("http-5xx", venue="intx", endpoint="balances")
    pid = next(iter(sim.market.portfolios))
    assert intx_get(sim, wire).status_code == 200
    assert intx_get(sim, wire, f"/api/v1/portfolios/{pid}/balances").status_code == 503
    sim.faults.clear()
    assert intx_get(sim, wire, f"/api/v1/portfolios/{pid}/balances").status_code == 200
    assert sim.count("intx", "balances", "fault:http-5xx") == 1
    assert sim.count("intx", "balances", "ok") == 1


def test_probability(sim: Simulator, wire: httpx.Client) -> None:
    sim.set_intx_rate_limit(0)
    sim.faults.set("http-5xx", venue="intx", probability=0.25)
    statuses = [intx_get(sim, wire).status_code for _ in range(200)]
    assert 20 <= statuses.count(503) <= 80


def test_fault_flags_parse() -> None:
    fault = parse_fault_flag("latency:0.2@intx/balances%10")
    assert (fault.kind, fault.value, fault.venue, fault.endpoint, fault.probability) == (
        FaultKind.LATENCY,
        0.2,
        "intx",
        "balances",
        0.1,
    )
    assert parse_fault_flag("kraken-error:EGeneral:Temporary lockout@kraken").value == "EGeneral:Temporary lockout"
    with pytest.raises(ValueError, match="unknown fault"):
        parse_fault_flag("meteor")
    with pytest.raises(ValueError, match="unknown venue"):
        parse_fault_flag("html@binance")


def test_json_numbers_switch(sim: Simulator, wire: httpx.Client) -> None:
    """Amounts are strings as in real traffic; each venue can switch to JSON numbers on its own."""
    pid = next(iter(sim.market.portfolios))
    path = f"/api/v1/portfolios/{pid}/balances"

    def kinds() -> tuple[type, type]:
        intx_amount = intx_get(sim, wire, path).json()[0]["quantity"]
        kraken_amount = next(iter(kraken_post(sim, wire).json()["result"].values()))["balance"]
        return type(intx_amount), type(kraken_amount)

    assert kinds() == (str, str)
    sim.intx_numbers = True
    assert kinds() == (float, str)
    sim.kraken_numbers = True
    assert kinds() == (float, float)


def test_nonce_window_tolerates_slight_disorder(sim: Simulator, wire: httpx.Client) -> None:
    base = time.time_ns()
    assert (
        "result" in kraken_post(sim, wire, nonce=base + 10).json()
        and not kraken_post(sim, wire, nonce=base + 10).json()["result"]
    )
    assert kraken_post(sim, wire, nonce=base + 5).json()["error"][0]["errorMessage"] == "Invalid nonce"
    sim.set_kraken_nonce_window(100)
    assert kraken_post(sim, wire, nonce=base + 7).json()["result"]
    assert not kraken_post(sim, wire, nonce=base + 7).json()["result"]  # a replay is still refused


def test_kraken_counter_rejects_the_eleventh_call(sim: Simulator, wire: httpx.Client) -> None:
    answers = [kraken_post(sim, wire).json() for _ in range(11)]
    assert all(a["result"] for a in answers[:10])
    assert answers[10]["error"][0]["errorMessage"] == "Rate limit exceeded"
    assert sim.count("kraken", verdict="rate-limited") == 1


def test_same_seed_same_world_and_ticks_move_it() -> None:
    a, b, c = Simulator(seed=11), Simulator(seed=11), Simulator(seed=12)

    def snapshot(s: Simulator) -> dict[str, object]:
        return {v: dict(h.holdings) for v, h in s.market.vaults.items()}

    assert str(snapshot(a)) == str(snapshot(b)) != str(snapshot(c))
    a.tick(5)
    b.tick(5)
    assert str(snapshot(a)) == str(snapshot(b))
    b.tick(20)
    assert str(snapshot(a)) != str(snapshot(b))


def test_vault_ids_match_the_documented_pattern() -> None:
    sim = Simulator(seed=5, vaults=8)
    assert all(kraken.VAULT_ID.match(v) for v in sim.market.vaults)


def test_starts_and_stops_cleanly_releasing_port_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopping ends a request held by a hang (120 s, far longer than the test): no thread is left waiting."""
    before = threading.active_count()
    sim = Simulator(seed=1, tick_seconds=0.05).start()
    port = int(sim.url.rsplit(":", 1)[1])
    sim.faults.set("hang", venue="intx")
    arrived = arrivals(sim, monkeypatch, "intx")
    with httpx.Client(base_url=sim.url, timeout=PATIENCE) as client:

        def call() -> None:
            with contextlib.suppress(httpx.HTTPError):
                intx_get(sim, client)

        hung = threading.Thread(target=call)
        hung.start()
        assert arrived.wait(PATIENCE), "the INTX request never reached the simulator"
        assert hung.is_alive()
        sim.stop()
        hung.join(PATIENCE)
    assert not hung.is_alive()
    assert not sim_threads(), f"stop left threads behind: {sim_threads()}"
    assert threading.active_count() <= before
    with socket.socket() as probe:  # binding fails if anything still listens there
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()
