"""Canary secrets through the main flows: they never reach stdout, stderr, screenshots or any file written."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from textual.widgets import DataTable

from tests.conftest import run_cli, write_config
from tests.scenes import until
from tui.config import parse
from tui.credentials import Secret
from tui.sim import Simulator
from tui.ui.app import BalanceApp
from tui.ui.screens import IntxDetailScreen
from tui.venues import intx, kraken
from tui.venues.errors import VenueError

KRAKEN_KEY = "CANARY-KRAKEN-KEY-5e1f"
KRAKEN_SECRET = base64.b64encode(b"CANARY-KRAKEN-SECRET-" + b"k" * 43).decode()
INTX_KEY = "CANARY-INTX-KEY-77aa"
INTX_SECRET = base64.b64encode(b"CANARY-INTX-SECRET-" + b"i" * 13).decode()
INTX_PASS = "CANARY-PASSPHRASE-9c3d"
CANARIES = (KRAKEN_KEY, KRAKEN_SECRET, INTX_KEY, INTX_SECRET, INTX_PASS, "CANARY")


def canary_config(sim: Simulator, tmp: Path) -> Path:
    sim.add_kraken_key(KRAKEN_KEY, KRAKEN_SECRET)
    sim.add_intx_key(INTX_KEY, INTX_SECRET, INTX_PASS)
    text = sim.config_text(1)
    for old, new in (
        (sim.kraken_keys.api_key, KRAKEN_KEY),
        (sim.kraken_keys.api_secret, KRAKEN_SECRET),
        (sim.intx_keys.api_key, INTX_KEY),
        (sim.intx_keys.api_secret, INTX_SECRET),
        (sim.intx_keys.passphrase or "", INTX_PASS),
    ):
        text = text.replace(f'"{old}"', f'"{new}"')
    return write_config(tmp / "canary.toml", text)


def assert_clean(text: str, where: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"{canary[:12]}… leaked into {where}"


def files_under(root: Path, skip: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p != skip]


def test_cli_flows_leak_nothing(sim: Simulator, tmp_path: Path) -> None:
    sim.kraken_rate_limit = False
    config = canary_config(sim, tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".state"),
    }
    runs = [run_cli("--once", "--format", fmt, "--config", str(config), env=env) for fmt in ("table", "json", "csv")]
    runs.append(run_cli("config", "check", "--config", str(config), env=env))
    for fault in ("html", "http-5xx", "truncated"):
        sim.faults.set(fault)
        runs.append(run_cli("--once", "--config", str(config), env=env))
        runs.append(run_cli("config", "check", "--config", str(config), env=env))
        sim.faults.clear()
    wrong = write_config(tmp_path / "wrong.toml", config.read_text().replace(INTX_PASS, INTX_PASS + "-WRONG"))
    runs.append(run_cli("--once", "--config", str(wrong), env=env))
    assert [r.returncode for r in runs[:4]] == [0, 0, 0, 0] and runs[-1].returncode == 1
    for done in runs:
        assert_clean(done.stdout, "stdout")
        assert_clean(done.stderr, "stderr")
    for path in files_under(tmp_path, skip=config) + files_under(home, skip=config):
        if path not in (config, wrong):
            assert_clean(path.read_text(errors="replace"), str(path))


async def test_tui_screens_and_screenshots_leak_nothing(sim: Simulator, tmp_path: Path) -> None:
    config = canary_config(sim, tmp_path)
    app = BalanceApp(parse(config.read_text(), config))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: all(p.rows for p in app.panes), timeout=60)
        sim.faults.set("html", venue="kraken")
        await until(pilot, lambda: app.panes[0].has_class("-failing"), timeout=60)
        shots = [Path(app.save_screenshot("overview.svg", str(tmp_path)))]
        await pilot.press("tab", "enter")
        # the INTX drill-down is open and has had its first answer (signed with the canary keys)
        await until(pilot, lambda: isinstance(app.screen, IntxDetailScreen) and app.screen.fetched_at, timeout=60)
        detail = app.screen
        assert isinstance(detail, IntxDetailScreen) and detail.error is None
        fields = detail.query_one("#fields", DataTable)
        values = {name: str(fields.get_cell(name, "value")).strip() for name in intx.FIELDS}
        assert values["quantity"] not in ("…", "not reported"), values
        assert not [name for name, value in values.items() if value == "…"], values
        shots.append(Path(app.save_screenshot("detail.svg", str(tmp_path))))
        assert "portfolio&#160;summary" in shots[-1].read_text()  # the frame is the drill-down's
        texts = [repr(app.source.refreshers), repr(app.config), str([p.snapshot for p in app.panes])]
    for shot in shots:
        assert_clean(shot.read_text(), shot.name)
    for text in texts:
        assert_clean(text, "reprs")


def test_venue_error_bodies_that_echo_a_secret_are_redacted() -> None:
    key, secret = Secret(INTX_KEY), Secret(INTX_SECRET)
    echoed = httpx.Response(401, content=f'{{"message": "bad key {key.reveal()} with {secret.reveal()}"}}'.encode())
    assert_clean(intx.error_text(echoed), "INTX error text")
    html = httpx.Response(502, content=f"<html>proxy saw API-Key: {KRAKEN_KEY}</html>".encode())
    Secret(KRAKEN_KEY)
    with pytest.raises(VenueError) as caught:
        kraken.read_payload(html, "GetCustodyBalance")
    assert "502" in caught.value.message
    assert_clean(f"{caught.value} {caught.value!r}", "Kraken error")
