"""README: "a vault list another process made in the last 10 minutes is used as it is (a cron `--once` then spends
3 of Kraken's 10 calls, not 4)"; `config check` proves the key, so it always lists them itself. The list's age is
set by rewriting the time the key's ledger says it was made (as ten minutes passing would leave it), and the
simulator counts the ListCustodyVaults calls that reach it."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tui.sim import Simulator


def _ledger(state: Path, sim: Simulator) -> Path:
    tag = hashlib.sha256(sim.kraken_keys.api_key.encode()).hexdigest()[:32]
    return state / "balance-tui" / "kraken-nonces" / f"{tag}.json"


def _age_the_list(ledger: Path, seconds: float) -> None:
    data = json.loads(ledger.read_text())
    listed = [v for v in data["venues"].values() if "vaults" in v]
    assert len(listed) == 1, data
    listed[0]["vaults"]["at"] = time.time() - seconds
    ledger.write_text(json.dumps(data))


@pytest.mark.parametrize(("age", "listed_again"), [(540.0, False), (660.0, True)])
def test_once_uses_a_vault_list_younger_than_ten_minutes(
    sim: Simulator, sim_config: Path, tmp_path: Path, age: float, listed_again: bool
) -> None:
    sim.kraken_rate_limit = False  # the runs follow each other closely: only the lists are counted here
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    assert run_cli("--once", "--config", str(sim_config), env=env).returncode == 0
    assert sim.count("kraken", "ListCustodyVaults", "ok") == 1
    _age_the_list(_ledger(tmp_path / "state", sim), age)
    assert run_cli("--once", "--config", str(sim_config), env=env).returncode == 0
    assert sim.count("kraken", "ListCustodyVaults", "ok") == 1 + listed_again
    assert sim.count("kraken", "GetCustodyBalance", "ok") == 2 * len(sim.market.vaults)  # every vault, both runs


def test_config_check_lists_the_vaults_itself(sim: Simulator, sim_config: Path, tmp_path: Path) -> None:
    sim.kraken_rate_limit = False
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    assert run_cli("--once", "--config", str(sim_config), env=env).returncode == 0
    done = run_cli("config", "check", "--config", str(sim_config), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sim.count("kraken", "ListCustodyVaults", "ok") == 2
