"""Signatures are never shown: a venue (or a proxy before it) that quotes a request's own headers back in
its error sees them scrubbed from every error, line of output and screen. The signatures to look for
are the ones the simulator received, not ones our code says it made."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import intx_for, kraken_for, run_cli
from tests.scenes import until
from tests.test_app import header
from tui import credentials
from tui.config import parse
from tui.sim import Simulator
from tui.ui.app import BalanceApp
from tui.venues.errors import VenueError


def assert_no_signature(text: str, sim: Simulator) -> None:
    seen = sim.signatures()
    assert seen, "the simulator received no signed request"
    leaked = [s for s in seen if s in text]
    assert not leaked, f"{len(leaked)} signature(s) shown, e.g. {leaked[0][:12]}…"


@pytest.mark.parametrize("venue", ["kraken", "intx"])
async def test_an_error_quoting_the_request_shows_no_signature(
    sim: Simulator, web: httpx.AsyncClient, venue: str
) -> None:
    sim.faults.set("echo", venue=venue)
    with pytest.raises(VenueError) as caught:
        if venue == "kraken":
            await kraken_for(sim, web).balances(next(iter(sim.market.vaults)))
        else:
            await intx_for(sim, web).portfolios()
    text = f"{caught.value} {caught.value!r}"
    assert "Sign=***" in text or "SIGN=***" in text  # the echo arrived, and was scrubbed
    assert_no_signature(text, sim)
    keys = (sim.kraken_keys.api_key,) if venue == "kraken" else (sim.intx_keys.api_key, sim.intx_keys.passphrase)
    assert not any(key and key in text for key in keys)


def test_once_and_check_show_no_signature(sim: Simulator, sim_config: Path) -> None:
    sim.faults.set("echo")
    runs = [run_cli("--once", "--config", str(sim_config)), run_cli("config", "check", "--config", str(sim_config))]
    assert [r.returncode for r in runs] == [1, 1]
    for done in runs:
        assert "=***" in done.stdout + done.stderr
        assert_no_signature(done.stdout + done.stderr, sim)


async def test_the_failing_pane_shows_no_signature(sim: Simulator, tmp_path: Path) -> None:
    sim.faults.set("echo", venue="kraken")
    app = BalanceApp(parse(sim.config_text(1)), history=":memory:", demo=True)
    async with app.run_test(size=(200, 40)) as pilot:
        kraken = app.panes[0]
        await until(pilot, lambda: kraken.has_class("-failing") and "=***" in header(kraken), timeout=30)
        shown = header(kraken) + Path(app.save_screenshot("failing.svg", str(tmp_path))).read_text()
    assert_no_signature(shown, sim)


def test_signatures_kept_for_redaction_stay_few() -> None:
    """A monitor signs a request every second for weeks: what redaction keeps of them must not grow."""
    for i in range(10 * credentials.RECENT_SIGNATURES):
        credentials.remember_signature(f"signature-{i:08d}")
    latest = f"signature-{10 * credentials.RECENT_SIGNATURES - 1:08d}"
    assert credentials.redact(f"echo {latest}") == "echo ***"
    assert len(credentials._signatures) == credentials.RECENT_SIGNATURES
