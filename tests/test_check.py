"""`config check` gives the right diagnosis for each simulator fault and each wrong credential."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli, write_config
from tui.sim import Simulator


def check(path: Path) -> tuple[int, str]:
    done = run_cli("config", "check", "--config", str(path))
    assert "Traceback" not in done.stderr + done.stdout
    return done.returncode, done.stdout


def test_all_good(sim: Simulator, sim_config: Path) -> None:
    code, out = check(sim_config)
    assert code == 0
    assert "ok    Kraken custody (simulated)" in out and "3 vault(s) visible" in out
    assert "3 portfolio(s) visible" in out
    assert f"ok    prices (kraken, {sim.url}): 11 assets have a USD market" in out  # every named asset but USD


@pytest.mark.parametrize(
    ("venue", "fault", "value", "diagnosis"),
    [
        ("intx", "skew", 30, "clock is off"),
        ("kraken", "kraken-error", "EGeneral:Permission denied", "lacks permission"),
        ("kraken", "kraken-error", "EGeneral:Temporary lockout", "locked this key out"),
        ("kraken", "kraken-error", "EAPI:Invalid nonce", "another program is using this key"),
        ("intx", "429", None, "rate limited"),
        ("intx", "http-5xx", None, "failing right now"),
        ("kraken", "html", None, "failing right now"),
        ("intx", "truncated", None, "not what the venue's API returns"),
        ("kraken", "reset", None, "cannot reach the venue"),
    ],
)
def test_each_fault_is_explained(
    sim: Simulator, sim_config: Path, venue: str, fault: str, value: object, diagnosis: str
) -> None:
    sim.faults.set(fault, venue=venue, value=value)  # type: ignore[arg-type]
    code, out = check(sim_config)
    assert code == 1
    failing = [line for line in out.splitlines() if "FAIL" in line]
    assert len(failing) == 1 and diagnosis in failing[0]
    assert ("Kraken" in failing[0]) == (venue == "kraken")


def test_clock_skew_reports_the_offset(sim: Simulator, sim_config: Path) -> None:
    sim.faults.set("skew", venue="intx", value=-40)
    _, out = check(sim_config)
    assert "40 s ahead of the venue's" in out or "39 s ahead of the venue's" in out


@pytest.mark.parametrize(
    ("which", "replacement", "diagnosis"),
    [
        ("kraken_key", "wrong-key", "does not accept this API key"),
        ("kraken_secret", "V1JPTkctU0VDUkVU", "API secret is wrong"),
        ("intx_secret", "V1JPTkctU0VDUkVU", "API secret is wrong"),
        ("intx_pass", "wrong-pass", "does not accept this API key (or passphrase)"),
        ("kraken_secret", "not base64!", "API secret is wrong"),
    ],
)
def test_wrong_credentials_are_explained(
    sim: Simulator, tmp_path: Path, which: str, replacement: str, diagnosis: str
) -> None:
    original = {
        "kraken_key": sim.kraken_keys.api_key,
        "kraken_secret": sim.kraken_keys.api_secret,
        "intx_secret": sim.intx_keys.api_secret,
        "intx_pass": sim.intx_keys.passphrase or "",
    }[which]
    path = write_config(tmp_path / "c.toml", sim.config_text().replace(f'"{original}"', f'"{replacement}"'))
    code, out = check(path)
    assert code == 1
    assert diagnosis in out
    assert replacement not in out


def test_unreachable_venue(sim: Simulator, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    path = write_config(tmp_path / "c.toml", sim.config_text().replace(sim.url, dead))
    code, out = check(path)
    failing = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert code == 1 and len(failing) == 2 and all("cannot reach the venue" in line for line in failing)
    assert "warn  prices (kraken" in out and "values will be unknown until it answers" in out


def test_configured_account_the_key_cannot_see(sim: Simulator, tmp_path: Path) -> None:
    text = sim.config_text().replace('kind = "coinbase-intx"', 'kind = "coinbase-intx"\nportfolios = ["12345"]')
    code, out = check(write_config(tmp_path / "c.toml", text))
    assert code == 1 and "not visible to this key: 12345" in out


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        ('{ env = "BALANCE_TUI_TEST_UNSET" }', "environment variable BALANCE_TUI_TEST_UNSET is not set"),
        ('{ file = "/nonexistent/kraken.secret" }', "secret file /nonexistent/kraken.secret does not exist"),
    ],
)
def test_a_secret_that_did_not_load_is_named_and_the_venue_is_not_blamed(
    sim: Simulator, tmp_path: Path, source: str, cause: str
) -> None:
    text = sim.config_text().replace(f'api_secret = "{sim.kraken_keys.api_secret}"', f"api_secret = {source}", 1)
    code, out = check(write_config(tmp_path / "c.toml", text))
    assert code == 1
    [failing] = [line for line in out.splitlines() if "FAIL" in line]
    assert "Kraken custody" in failing and "not loaded" in failing and "venue was not called" in failing
    assert cause in out and "api_secret" in out
    assert "does not accept" not in out
    assert sim.count("kraken") == 0
    assert "ok    Coinbase INTX" in out  # the other venue is still checked
