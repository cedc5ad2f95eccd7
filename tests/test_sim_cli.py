"""`balance-tui sim` as a person runs it, and details of what the simulator refuses."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import run_cli
from tui.money import loads
from tui.sim import Simulator
from tui.venues import intx, intx_summary, kraken


def test_sim_command_writes_a_private_config_before_serving_and_stops_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "sim.toml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "sim", "--seed", "3", "--config-out", str(out), "--fault", "latency:0.05@intx"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "simulator (seed 3) on http://127.0.0.1:" in first
        assert out.exists() and stat.S_IMODE(os.stat(out).st_mode) == 0o600
        assert f"--config {out}" in proc.stdout.readline() + proc.stdout.readline()
        done = run_cli("--once", "--format", "json", "--config", str(out))
        assert done.returncode == 0, done.stderr
        assert [v["ok"] for v in json.loads(done.stdout)["venues"]] == [True, True]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


def test_sim_refuses_to_overwrite_a_file_that_is_not_its_own(tmp_path: Path) -> None:
    mine = tmp_path / "config.toml"
    mine.write_text("refresh_seconds = 5\n")
    done = run_cli("sim", "--config-out", str(mine), timeout=20)
    assert done.returncode == 2 and "not a simulator config" in done.stderr
    assert mine.read_text() == "refresh_seconds = 5\n"


def test_bad_fault_flag_is_a_usage_error() -> None:
    done = run_cli("sim", "--fault", "meteor@kraken")
    assert done.returncode == 2 and "unknown fault 'meteor'" in done.stderr


def test_malformed_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'refresh_seconds = 5\n\n[[venue]]\nkind = "kraken-custody"\napi_key = { env = "K" }\n'
        'api_secret = { env = "S" }\nvaults = "VN2F7NJJWKJHI2"\n'
    )
    path.chmod(0o600)
    done = run_cli("--once", "--config", str(path))
    assert done.returncode == 2
    assert done.stderr == f"balance-tui: {path}:7: venue[1].vaults: must be a list of vault ids\n"


def test_kraken_rejects_a_reserialised_body(sim: Simulator) -> None:
    vault = next(iter(sim.market.vaults))
    nonce = time.time_ns()
    payload = {"nonce": nonce, "vault_id": vault}
    signed = kraken.encode_body(payload)
    sent = json.dumps(payload).encode()  # the same object, spaces after separators: other bytes
    assert signed != sent and json.loads(signed) == json.loads(sent)
    path = "/0/private/GetCustodyBalance"
    headers = {
        "API-Key": sim.kraken_keys.api_key,
        "API-Sign": kraken.sign(sim.kraken_keys.api_secret, path, nonce, signed),
    }
    answer = httpx.post(sim.url + path, content=sent, headers=headers)
    assert answer.json()["error"][0]["errorMessage"] == "Invalid signature"
    answer = httpx.post(sim.url + path, content=signed, headers=headers)
    assert answer.json()["result"]


def test_intx_detail_endpoint(sim: Simulator) -> None:
    pid = next(iter(sim.market.portfolios))
    path = f"/api/v1/portfolios/{pid}/detail"
    ts = str(int(time.time()))
    answer = httpx.get(
        sim.url + path,
        headers={
            "CB-ACCESS-KEY": sim.intx_keys.api_key,
            "CB-ACCESS-PASSPHRASE": sim.intx_keys.passphrase or "",
            "CB-ACCESS-TIMESTAMP": ts,
            "CB-ACCESS-SIGN": intx.sign(sim.intx_keys.api_secret, ts, "GET", path),
        },
    )
    body = loads(answer.content)  # httpx's .json() would turn the JSON-number margins into floats
    assert set(body) == {"summary", "balances", "positions"}
    assert len(body["balances"]) == len(sim.market.portfolios[pid].holdings)
    assert intx_summary.parse_summary(body["summary"]).flags["in_liquidation"] is False
