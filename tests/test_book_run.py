"""The book against a real run: `serve` (its Server, in a thread, over real HTTP) polls the ticking simulator and
records its history while balances and prices move, on their own and on purpose (exact digits put in, an asset
withdrawn, a price set, a venue failing for a while). At chosen instants during the run the document `serve`
hands its viewers (`/snapshot`, the `--once` JSON) is captured; after the run, `balance-tui book --at` each
instant (the real program, in a fresh process) must equal it, times aside; `--between` two instants must sum to
the difference of their `--at` values, exactly; and the CSV rows are `--once`'s."""

from __future__ import annotations

import csv
import decimal
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import run_cli
from tests.test_serve import Served, until
from tui.instants import iso_instant
from tui.sim import Simulator
from tui.sinks.once import csv_document
from tui.snapshot.contract import to_contract

T = TypeVar("T")
TIMES = {"generated_at", "fetched_at", "next_refresh_at", "round_trip"}  # what "times aside" sets aside
WIDE = decimal.Context(prec=400)


def times_aside(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: times_aside(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [times_aside(v) for v in value]
    return value


@dataclass
class Captured:
    at: float
    contract: dict[str, Any]
    why: str


@dataclass
class Run:
    config: Path
    captured: list[Captured]
    moved: dict[str, Any]


class Serving(Served):
    """`serve`'s Server on its own loop in a thread, as `balance-tui serve` runs it, captured at instants."""

    def capture(self, why: str) -> Captured:
        """What /snapshot serves, and the instant it held: taken on the server's loop between two answers
        (an answer taken mid-way would be dated before the instant yet not be in the document)."""

        def now() -> Captured | None:
            poller = self.server.poller
            if poller is None or any(r.refreshing for r in poller.engine.refreshers):
                return None
            if len(poller.engine.latest) < len(poller.engine.refreshers) or poller.monitor.worth is None:
                return None
            return Captured(time.time(), json.loads(poller.contract(), parse_float=Decimal), why)

        found = until(lambda: self.call(now), f"a quiet moment to capture ({why})")
        assert found is not None  # until returns only what is truthy
        return found

    def contract(self) -> dict[str, Any]:
        return self.capture("look").contract


def _balance(contract: dict[str, Any], venue: int, account: str, asset: str) -> dict[str, Any] | None:
    for held in contract["venues"][venue]["accounts"]:
        if held["id"] == account:
            return next((b for b in held["balances"] if b["asset"] == asset), None)
    return None


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("book-run")
    config = folder / "serve.toml"
    captured: list[Captured] = []
    with Simulator(seed=11, tick_seconds=0.25) as sim:
        sim.kraken_rate_limit = False
        sim.write_config(config, refresh_seconds=1)
        with config.open("a") as out:
            out.write(f'\n[history]\nenabled = true\npath = "{folder / "history.sqlite3"}"\n')
        serving = Serving(config)
        try:

            def quicker_prices() -> bool:
                poller = serving.server.poller
                if poller is None or poller.engine.prices is None:
                    return False
                poller.engine.prices.refresh_seconds = 1.5  # the config allows 10 s at the least: a test's own pace
                poller.engine.prices.min_gap = 0.5
                return True

            until(lambda: serving.call(quicker_prices), "the server's price source")
            captured.append(serving.capture("the first look"))
            vault = next(iter(sim.market.vaults))
            portfolio = next(iter(sim.market.portfolios))
            intx_asset = next(iter(sim.market.portfolios[portfolio].holdings))
            digits = "12.345678901234567890123456789000"
            sim.market.set_kraken(vault, "TKN9", digits, "0.5")  # an asset the market does not move, nor price
            until(
                lambda: (b := _balance(serving.contract(), 0, vault, "TKN9")) and b["balance"] == digits,
                "the balance put in",
            )
            captured.append(serving.capture("exact digits put in"))
            sim.market.remove_intx(portfolio, intx_asset)
            until(lambda: _balance(serving.contract(), 1, portfolio, intx_asset) is None, "the asset withdrawn")
            captured.append(serving.capture("an asset withdrawn"))
            sim.faults.set("http-5xx", venue="intx")
            until(lambda: not serving.contract()["venues"][1]["ok"], "INTX failing")
            captured.append(serving.capture("INTX failing"))
            sim.faults.clear()
            until(lambda: serving.contract()["venues"][1]["ok"], "INTX back")
            captured.append(serving.capture("INTX back"))
            ticks = sim.market.ticks
            until(lambda: sim.market.ticks >= ticks + 8, "the market moving on")
            captured.append(serving.capture("later, the market moved"))
        finally:
            assert serving.stop() == 0, serving.err.getvalue()
    yield Run(config, captured, {"vault": vault, "portfolio": portfolio, "asset": intx_asset, "digits": digits})


def book(config: Path, *args: str) -> tuple[int, Any]:
    done = run_cli("book", *args, "--format", "json", "--config", str(config))
    assert "Traceback" not in done.stderr and done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout, parse_float=Decimal)


def test_book_at_each_instant_is_what_serve_served_then(run: Run) -> None:
    whys = [c.why for c in run.captured]
    assert len(run.captured) == 6, whys
    for shot in run.captured:
        code, got = book(run.config, "--at", iso_instant(shot.at))
        assert got["as_of"]["at"] == iso_instant(shot.at)
        assert set(got) == set(shot.contract) | {"as_of"}, shot.why
        assert times_aside({k: v for k, v in got.items() if k != "as_of"}) == times_aside(shot.contract), shot.why
        failing = not all(v["ok"] for v in shot.contract["venues"])
        assert code == (1 if failing else 0), shot.why
        assert [v["failing"] for v in got["as_of"]["venues"]] == [not v["ok"] for v in shot.contract["venues"]]
    put = _balance(run.captured[1].contract, 0, run.moved["vault"], "TKN9")
    assert put is not None and put["balance"] == run.moved["digits"] and put["hold_trade"] == "0.5"
    assert _balance(run.captured[2].contract, 1, run.moved["portfolio"], run.moved["asset"]) is None
    intx = run.captured[3].contract["venues"][1]
    assert intx["ok"] is False and intx["accounts"][0]["error"]  # the book above matched a failing venue
    assert run.captured[0].contract["usd_total"] != run.captured[-1].contract["usd_total"]  # values moved
    assert run.captured[0].contract["prices"]["usd_prices"] != run.captured[-1].contract["prices"]["usd_prices"]
    assert "TKN9" in run.captured[1].contract["unpriced"]


def test_between_two_instants_sums_to_the_difference_of_their_books(run: Run) -> None:
    shots = run.captured
    for first, second in ((0, 1), (1, 3), (2, 5), (0, 5), (5, 0)):
        t1, t2 = iso_instant(shots[first].at), iso_instant(shots[second].at)
        _, at1 = book(run.config, "--at", t1)
        _, at2 = book(run.config, "--at", t2)
        _, moved = book(run.config, "--between", t1, t2)
        total = moved["usd_total"]
        difference = WIDE.subtract(Decimal(at2["usd_total"]), Decimal(at1["usd_total"]))
        assert Decimal(total["change"]) == difference, (first, second)
        assert WIDE.add(Decimal(total["quantity_moves"]), Decimal(total["price_moves"])) == difference
        assert (total["from"], total["to"]) == (at1["usd_total"], at2["usd_total"])
        summed = Decimal(0)
        for move in moved["balances"]:
            value = move["usd_value"]
            parts = WIDE.add(Decimal(value["quantity_move"]), Decimal(value["price_move"]))
            assert parts == Decimal(value["change"])
            summed = WIDE.add(summed, parts)
        assert summed == difference
        _each_split_by_hand(at1, at2, moved)
        loans = moved["usd_loans"]
        assert Decimal(loans["change"]) == WIDE.subtract(Decimal(at2["usd_loans"]), Decimal(at1["usd_loans"]))
        net = WIDE.subtract(Decimal(at2["usd_net"]), Decimal(at1["usd_net"]))
        assert WIDE.add(Decimal(moved["usd_net"]["quantity_moves"]), Decimal(moved["usd_net"]["price_moves"])) == net
    _, first = book(run.config, "--at", iso_instant(shots[0].at))
    _, last = book(run.config, "--at", iso_instant(shots[-1].at))
    _, across = book(run.config, "--between", iso_instant(shots[0].at), iso_instant(shots[-1].at))
    assert _each_split_by_hand(first, last, across) >= 3  # the market moved prices of several balances held
    assert any(Decimal(m["usd_value"]["price_move"]) != 0 for m in across["balances"])
    _, withdrawn = book(run.config, "--between", iso_instant(shots[1].at), iso_instant(shots[2].at))
    gone = [m for m in withdrawn["balances"] if m["asset"] == run.moved["asset"] and m["venue"].startswith("Coinbase")]
    assert any(m["account_id"] == run.moved["portfolio"] and m["quantity"]["to"] is None for m in gone)


QUANTITY = {"kraken-custody": "balance", "coinbase-intx": "quantity"}


def _each_split_by_hand(at1: dict[str, Any], at2: dict[str, Any], moved: dict[str, Any]) -> int:
    """Each balance valued at both instants: its quantity move is (q2 - q1) x p1 and its price move
    q2 x (p2 - p1), worked out here from the two `--at` documents' quantities and prices (a split that
    only sums right, such as (q2 - q1) x p2 + q1 x (p2 - p1), fails). Returns how many were checked."""

    def held(doc: dict[str, Any]) -> dict[tuple[str, str, str], tuple[Decimal, Decimal | None]]:
        found = {}
        for venue in doc["venues"]:
            for account in venue["accounts"]:
                for b in account["balances"]:
                    price = Decimal(b["usd_price"]) if b["usd_value"] is not None else None
                    found[(venue["name"], account["id"], b["asset"])] = (Decimal(b[QUANTITY[venue["kind"]]]), price)
        return found

    before, after = held(at1), held(at2)
    by_key = {(m["venue"], m["account_id"], m["asset"]): m for m in moved["balances"]}
    checked = 0
    for key in set(before) & set(after):
        (q1, p1), (q2, p2) = before[key], after[key]
        if p1 is None or p2 is None:
            continue
        quantity_move = WIDE.multiply(WIDE.subtract(q2, q1), p1)
        price_move = WIDE.multiply(q2, WIDE.subtract(p2, p1))
        move = by_key.get(key)
        if move is None:  # listed only when something changed
            assert quantity_move == 0 and price_move == 0, key
            continue
        assert Decimal(move["usd_value"]["quantity_move"]) == quantity_move, key
        assert Decimal(move["usd_value"]["price_move"]) == price_move, key
        checked += 1
    return checked


def test_the_csv_rows_are_those_of_once(run: Run) -> None:
    shot = run.captured[-1]
    done = run_cli("book", "--at", iso_instant(shot.at), "--format", "csv", "--config", str(run.config))
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    served = list(csv.DictReader(io.StringIO(csv_document(shot.contract))))
    extra = ("as_of", "account_ok", "age_seconds")
    assert [{k: v for k, v in r.items() if k not in extra} for r in rows] == served
    assert {r["as_of"] for r in rows} == {iso_instant(shot.at)} and {r["account_ok"] for r in rows} == {"true"}


def test_to_contract_is_the_one_renderer(run: Run) -> None:
    """The book's JSON is built by to_contract itself: a key added there appears in both documents."""
    shot = run.captured[0]
    _, got = book(run.config, "--at", iso_instant(shot.at))
    assert list(got)[:2] == ["generated_at", "as_of"] and list(got)[2:] == list(shot.contract)[1:]
    assert to_contract.__module__ == "tui.snapshot.contract"
