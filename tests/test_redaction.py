"""Signatures are never shown: a venue (or a proxy before it) that quotes a request's own headers back in
its error sees them scrubbed from every error, line of output and screen. The signatures to look for
are the ones the simulator received, not ones our code says it made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


SECRET = "kR4k3n-s3cr3t-" + "Q" * 60  # as long as a real API secret, without whitespace


def _echo_after(padding: bytes) -> Any:
    """A proxy's error page quoting the request's key after `padding`: not JSON, so it is excerpted."""
    from tests.hostile_server import head

    body = padding + b"upstream said: API-Key=" + SECRET.encode() + b" (request refused)"

    def send(sock: Any, stop: Any) -> None:
        sock.sendall(head("502 Bad Gateway", "text/html", len(body)) + body)

    return send


@pytest.mark.parametrize(
    "padding",
    [b"", b" " * 1980, b"\n" * 5000, b"<p>" + b" " * 4000 + b"</p> ", b"w " * 40 + b"\t" * 3000],
    ids=["first", "across-2000-bytes", "after-newlines", "in-html", "across-120-chars"],
)
async def test_an_error_is_redacted_before_it_is_shortened(padding: bytes) -> None:
    """However the quoted key falls against a cut (at the start, across a 2,000-byte boundary, across the 120
    characters shown, after pages of whitespace that collapse to one space), no piece of it is shown: not
    whole, and not its first half."""
    from tests.hostile_server import HostileServer
    from tui.venues import http

    credentials.remember(SECRET)
    with HostileServer({"/0/private/GetCustodyBalance": _echo_after(padding)}) as server:
        async with http.new_client(server.url) as client:
            response = await http.send(client, client.build_request("POST", "/0/private/GetCustodyBalance"))
            with pytest.raises(VenueError) as caught:
                http.decode_json(response)
    text = f"{caught.value} {caught.value!r}"
    assert "upstream said: API-Key=***" in text  # the quote arrived, scrubbed
    assert not any(SECRET[:n] in text for n in range(8, len(SECRET) + 1)), text


async def test_an_internal_error_quoting_a_secret_is_redacted_before_it_is_shortened() -> None:
    from tui.venues.errors import guarded

    credentials.remember(SECRET)

    async def broken() -> None:
        raise ValueError("x" * 140 + SECRET)  # the secret straddles the 200 characters an error keeps

    with pytest.raises(VenueError) as caught:
        await guarded(broken())
    assert not any(SECRET[:n] in caught.value.message for n in range(8, len(SECRET) + 1))


async def test_a_venues_error_message_is_redacted_before_it_is_shortened(
    sim: Simulator, web: httpx.AsyncClient
) -> None:
    """Kraken keeps 200 characters of an error it reports (a JSON error list, through the real client against the
    simulator): a key the venue quotes across that cut must not leave its first part behind."""
    credentials.remember(SECRET)
    for before in (150, 180, 195):  # the cut falls early, midway and late in the key
        sim.faults.set("kraken-error", venue="kraken", value="EGeneral:Internal error: " + "x" * before + SECRET)
        with pytest.raises(VenueError) as caught:
            await kraken_for(sim, web).balances(next(iter(sim.market.vaults)))
        text = f"{caught.value} {caught.value!r}"
        assert "Internal error" in text  # the venue's words arrived
        assert not any(SECRET[:n] in text for n in range(8, len(SECRET) + 1)), (before, text)


@pytest.mark.parametrize("before", [120, 150, 158])
async def test_an_intx_error_message_is_redacted_before_it_is_shortened(before: int) -> None:
    """INTX keeps 160 characters of an error's `message`: a key quoted across that cut shows no piece of it."""
    from tests.hostile_server import HostileServer, head
    from tui.venues import http, intx

    credentials.remember(SECRET)
    body = ('{"message": "' + "y" * before + SECRET + '"}').encode()

    def send(sock: Any, stop: Any) -> None:
        sock.sendall(head("500 Internal Server Error", "application/json", len(body)) + body)

    with HostileServer({"/api/v1/portfolios": send}) as server:
        async with http.new_client(server.url) as client:
            response = await http.send(client, client.build_request("GET", "/api/v1/portfolios"))
    text = intx.error_text(response)
    assert text.startswith("yyyy")
    assert not any(SECRET[:n] in text for n in range(8, len(SECRET) + 1)), text


@pytest.mark.parametrize("at", [60, 90, 110])
async def test_a_broken_answer_quoting_a_secret_is_redacted_before_it_is_shortened(at: int) -> None:
    """A transport failure's reason is cut to 120 characters: a server whose malformed status line quotes the key
    (the HTTP parser quotes that line in its error) with the key across the cut shows no piece of it."""
    from tests.hostile_server import HostileServer
    from tui.venues import http

    credentials.remember(SECRET)
    quoted = "illegal status line: bytearray(b'HTTP/1.1 200 "  # how the parser starts its reason
    line = b"HTTP/1.1 200 " + b"z" * (at - len(quoted)) + SECRET.encode() + b"\x00\r\n\r\n"

    def send(sock: Any, stop: Any) -> None:
        sock.sendall(line)

    with HostileServer({"/0/private/GetCustodyBalance": send}) as server:
        async with http.new_client(server.url) as client:
            with pytest.raises(VenueError) as caught:
                await http.send(client, client.build_request("POST", "/0/private/GetCustodyBalance"))
    text = f"{caught.value} {caught.value!r}"
    assert "illegal status line" in text and "zzzz" in text  # the parser's words arrived
    assert not any(SECRET[:n] in text for n in range(8, len(SECRET) + 1)), text
