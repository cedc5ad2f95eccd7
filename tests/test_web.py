"""The TUI in a browser: `balance-tui web --attach URL` opened in headless Chromium (Debian's package), and the
balances read off the page — what the page's terminal is given to draw, collected in the page itself."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tests.conftest import start_cli
from tests.test_attach import PATIENCE, Server, free_port
from tui.money import dollars
from tui.sim import Simulator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]")
# Runs in the page before its own scripts: the page's terminal is fed raw bytes over a WebSocket; keep a copy.
COLLECT = """
(() => {
  const Native = window.WebSocket;
  window.__screen = "";
  const decoder = new TextDecoder();
  window.WebSocket = function (...args) {
    const socket = new Native(...args);
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") window.__screen += decoder.decode(new Uint8Array(event.data), {stream: true});
    });
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
})();
"""


@pytest.fixture
def server(sim_config: Path, sim: Simulator) -> Iterator[Server]:
    started = Server(sim_config, free_port())
    started.ready()
    yield started
    started.stop()


@pytest.fixture
def web(server: Server) -> Iterator[str]:
    port = free_port()
    proc = start_cli("web", "--attach", server.url, "--listen", f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + PATIENCE
    while True:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "web did not start"
        time.sleep(0.1)
    yield url
    proc.terminate()
    proc.communicate(timeout=PATIENCE)


def browser(debug_port: int, profile: str) -> subprocess.Popen[bytes]:
    if CHROMIUM is None:
        pytest.fail("chromium is required for the browser test (scripts/test installs it)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1000",
    ]
    return subprocess.Popen(
        [CHROMIUM, *flags, f"--user-data-dir={profile}", f"--remote-debugging-port={debug_port}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the renderers and helpers go with it
    )


def close_browser(chromium: subprocess.Popen[bytes]) -> None:
    """Every process of the browser ended, so none still writes into its profile as it is removed (Debian's
    `chromium` is a script that starts the browser as its child: terminating the script alone left it)."""
    group = chromium.pid
    os.killpg(group, signal.SIGTERM)
    chromium.wait(PATIENCE)
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(group, signal.SIGKILL)
        time.sleep(0.05)


async def read_page(debug_port: int, url: str, wanted: list[str]) -> str:
    """Open `url` in the browser (through its DevTools protocol) and return its terminal's text once every
    one of `wanted` is on it."""
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{debug_port}/json") as response:
                    pages = [p for p in await response.json() if p.get("type") == "page"]
                if pages:
                    break
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, "chromium did not start"
            await asyncio.sleep(0.1)
        async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as devtools:
            ids = iter(range(1, 1_000_000))

            async def call(method: str, **params: Any) -> Any:
                number = next(ids)
                await devtools.send_json({"id": number, "method": method, "params": params})
                while True:
                    message = json.loads((await devtools.receive()).data)
                    if message.get("id") == number:
                        return message.get("result")

            await call("Page.enable")
            await call("Page.addScriptToEvaluateOnNewDocument", source=COLLECT)
            await call("Page.navigate", url=url)
            text = ""
            while not all(word in text for word in wanted):
                assert time.monotonic() < deadline, f"the page never showed {wanted}; it showed: {text[-2000:]}"
                await asyncio.sleep(0.2)
                result = await call("Runtime.evaluate", expression="window.__screen || ''", returnByValue=True)
                text = ANSI.sub(" ", result["result"]["value"]) if result else ""
            return text


def test_the_browser_shows_the_balances_the_server_holds(server: Server, web: str) -> None:
    snapshot = httpx.get(server.url + "/snapshot").json()
    kraken, coinbase = snapshot["venues"]
    biggest = max(
        (b for a in kraken["accounts"] for b in a["balances"] if b["usd_value"]), key=lambda b: Decimal(b["usd_value"])
    )
    value = dollars(Decimal(biggest["usd_value"]))  # the top row: the biggest position comes first
    with tempfile.TemporaryDirectory() as profile:
        port = free_port()
        chromium = browser(port, profile)
        try:
            text = asyncio.run(read_page(port, web, [kraken["name"], coinbase["name"], value, "via 127.0.0.1"]))
        finally:
            close_browser(chromium)
    assert biggest["asset"] in text and "worth $" in text


def test_only_its_own_page_on_this_machine_gets_a_session(web: str) -> None:
    """Any web page open in the user's browser could otherwise open a session, and read every balance."""
    host = web.removeprefix("http://").rstrip("/")
    assert httpx.get(web, headers={"Host": "rebound.example"}, timeout=PATIENCE).status_code == 403
    assert httpx.get(web, timeout=PATIENCE).status_code == 200

    async def handshake(origin: str, host_header: str = host) -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(f"ws://{host}/ws", headers={"Origin": origin, "Host": host_header}) as ws:
                    await ws.close()
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    assert asyncio.run(handshake("https://evil.example")) == 403
    assert asyncio.run(handshake("http://rebound.example:80", "rebound.example:80")) == 403
    assert asyncio.run(handshake(f"http://{host}")) == 101
