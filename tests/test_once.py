"""`--once` over real HTTP against the simulator: the JSON contract, exit codes, and no secrets."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_config
from tui.sim import Simulator
from tui.venues import intx

VENUE_KEYS = {"name", "kind", "ok", "error", "usd_value", "fetched_at", "state", "accounts"}
ACCOUNT_KEYS = {"id", "name", "ok", "error", "error_kind", "fetched_at", "usd_value", "summary", "balances"}
TOP_KEYS = {"generated_at", "venues", "prices", "usd_total", "usd_loans", "usd_net", "unpriced", "assets"}
WORTH = {"usd_price", "usd_value"}


def test_json_matches_the_contract_field_for_field(sim: Simulator, sim_config: Path) -> None:
    vault = next(iter(sim.market.vaults))
    portfolio = next(iter(sim.market.portfolios))
    sim.market.set_kraken(vault, "XBT", "12.3456789012", "0.5")
    sim.market.set_intx(portfolio, "BTC", quantity="997.5000000000000", hold="0.5")
    sim.market.set_price("XBT", "97250.1")
    done = run_cli("--once", "--format", "json", "--config", str(sim_config))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == TOP_KEYS and out["generated_at"].endswith("Z")
    kraken, coinbase = out["venues"]
    assert set(kraken) == VENUE_KEYS and kraken["kind"] == "kraken-custody" and kraken["ok"] is True
    assert not kraken["state"]["refreshing"] and not coinbase["state"]["refreshing"]  # --once waits for them
    assert [a["id"] for a in kraken["accounts"]] == list(sim.market.vaults)
    for account in kraken["accounts"] + coinbase["accounts"]:
        assert set(account) == ACCOUNT_KEYS and account["ok"] is True and account["error"] is None
    xbt = next(b for b in kraken["accounts"][0]["balances"] if b["asset"] == "XBT")
    assert xbt == {
        "asset": "XBT",
        "balance": "12.3456789012",
        "hold_trade": "0.5",
        "available": "11.8456789012",
        "usd_price": "97250.10000",  # as Ticker writes it
        "usd_value": "1200618.50770959012",  # 12.3456789012 × 97250.1, worked out by hand
    }
    for account in kraken["accounts"]:
        for b in account["balances"]:
            assert Decimal(b["available"]) == Decimal(b["balance"]) - Decimal(b["hold_trade"])
    for account in coinbase["accounts"]:
        for b in account["balances"]:
            assert set(b) == {"asset", *intx.FIELDS, *WORTH, "loan_usd_value"}
    btc = next(b for b in coinbase["accounts"][0]["balances"] if b["asset"] == "BTC")
    assert btc["quantity"] == "997.5000000000000" and btc["hold"] == "0.5"
    held = sim.market.portfolios[portfolio].holdings["BTC"]
    assert btc["collateral_value"] == format(held["collateral_value"], "f")


def test_amounts_sent_as_json_numbers_keep_every_digit(sim: Simulator, sim_config: Path) -> None:
    sim.intx_numbers = True
    portfolio = next(iter(sim.market.portfolios))
    sim.market.set_intx(portfolio, "BTC", quantity="12345678901234567890.123456789", loan="1E+2")
    out = json.loads(run_cli("--once", "--format", "json", "--config", str(sim_config)).stdout)
    btc = next(b for b in out["venues"][1]["accounts"][0]["balances"] if b["asset"] == "BTC")
    assert btc["quantity"] == "12345678901234567890.123456789"
    assert btc["loan"] == "100"  # never an exponent


def test_one_venue_failing_exits_1_with_the_other_intact(sim: Simulator, sim_config: Path) -> None:
    sim.faults.set("http-5xx", venue="kraken")
    done = run_cli("--once", "--format", "json", "--config", str(sim_config))
    assert done.returncode == 1
    kraken, coinbase = json.loads(done.stdout)["venues"]
    assert kraken["ok"] is False and "503" in kraken["error"]
    assert coinbase["ok"] is True and all(a["balances"] for a in coinbase["accounts"])
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("balance-tui: Kraken custody (simulated): ")


def test_table_and_csv(sim: Simulator, sim_config: Path) -> None:
    table = run_cli("--once", "--config", str(sim_config))
    assert table.returncode == 0 and "== Coinbase INTX (simulated)" in table.stdout and "Treasury" in table.stdout
    rows = list(csv.DictReader(io.StringIO(run_cli("--once", "--format", "csv", "--config", str(sim_config)).stdout)))
    holdings = sum(len(v.holdings) for v in sim.market.vaults.values()) + sum(
        len(p.holdings) for p in sim.market.portfolios.values()
    )
    assert len(rows) == holdings
    assert {r["kind"] for r in rows} == {"kraken-custody", "coinbase-intx"}


def test_format_without_once_is_a_usage_error() -> None:
    done = run_cli("--format", "json")
    assert done.returncode == 2 and "only to --once" in done.stderr


def test_once_never_loads_textual(sim: Simulator, sim_config: Path) -> None:
    code = (
        "import sys, contextlib, io\n"
        "from tui.cli import run\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = run(['--once', '--config', {str(sim_config)!r}])\n"
        "print(rc, sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "0 []", done.stderr


def test_canary_secrets_never_leave_the_process(sim: Simulator, tmp_path: Path) -> None:
    sim.kraken_rate_limit = False  # six runs in a row; the counter has its own test below
    canary_key, canary_secret = "CANARY-KEY-4b1d", "Q0FOQVJZLVNFQ1JFVC00YjFkLTk5OTk5OTk5OTk5OTk5"
    sim.add_kraken_key(canary_key, canary_secret)
    text = (
        sim.config_text()
        .replace(sim.kraken_keys.api_key, canary_key)
        .replace(sim.kraken_keys.api_secret, canary_secret)
    )
    path = write_config(tmp_path / "c.toml", text)
    outputs = []
    for fmt in ("table", "json", "csv"):
        outputs.append(run_cli("--once", "--format", fmt, "--config", str(path)))
    sim.faults.set("html", venue="kraken")
    outputs.append(run_cli("--once", "--config", str(path)))
    bad = write_config(tmp_path / "bad.toml", text.replace(canary_secret, "QkFELVNFQ1JFVC1DQU5BUlk="))
    outputs.append(run_cli("--once", "--config", str(bad)))
    outputs.append(run_cli("config", "check", "--config", str(bad)))
    assert [o.returncode for o in outputs] == [0, 0, 0, 1, 1, 1]
    for done in outputs:
        for secret in (canary_key, canary_secret, "QkFELVNFQ1JFVC1DQU5BUlk=", sim.intx_keys.api_secret):
            assert secret not in done.stdout and secret not in done.stderr


def test_back_to_back_runs_wait_out_the_kraken_counter_instead_of_being_refused(
    sim: Simulator, sim_config: Path
) -> None:
    """Each run makes 4 Kraken calls; the third would cross the venue's counter of 10: the key's ledger tells it
    what the first two spent, so it waits for the counter before calling, and the venue refuses nothing."""
    codes = [run_cli("--once", "--format", "json", "--config", str(sim_config)).returncode for _ in range(3)]
    assert codes == [0, 0, 0]
    assert sim.count("kraken", verdict="rate-limited") == 0
    assert sim.count("kraken", "ListCustodyVaults") == 1  # the later runs take the first one's vault list


@pytest.mark.parametrize("price", ["1e999999", "abc", "sNaN", "NaN", "-1", None])
def test_a_served_price_that_is_no_price_is_a_contract_error(sim_config: Path, price: object) -> None:
    """An attached viewer appraises again from the served prices: one that is not an amount it can multiply
    exactly (or a negative one) is refused like any other broken document, not raised from deep inside."""
    from tui.snapshot.contract import ContractError, from_contract

    done = run_cli("--once", "--config", str(sim_config), "--format", "json")
    doc = json.loads(done.stdout)
    assert from_contract(doc).appraisal is not None  # the document as served is read
    asset = next(iter(doc["prices"]["usd_prices"]))
    doc["prices"]["usd_prices"][asset]["usd"] = price
    with pytest.raises(ContractError):
        from_contract(doc)
