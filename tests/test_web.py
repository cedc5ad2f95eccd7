"""The TUI in a browser: `balance-tui web --attach URL` opened in headless Chromium (Debian's package), and the
balances read off the page — what the page's terminal is given to draw, collected in the page itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import start_cli
from tests.test_attach import PATIENCE, Proxy, Server, free_port
from tests.vt import Screen
from tui.money import dollars
from tui.sim import Simulator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]")
# Runs in the page before its own scripts: the page's terminal is fed raw bytes over a WebSocket; keep a copy,
# and the terminal's size as the page last told the session (what the bytes are drawn for).
COLLECT = """
(() => {
  const Native = window.WebSocket;
  window.__screen = "";
  window.__size = null;
  const decoder = new TextDecoder();
  window.WebSocket = function (...args) {
    const socket = new Native(...args);
    const query = new URL(socket.url).searchParams;
    window.__size = {width: Number(query.get("width")), height: Number(query.get("height"))};
    const send = socket.send.bind(socket);
    socket.send = (data) => {
      try {
        const message = JSON.parse(data);
        if (message[0] === "resize") window.__size = message[1];
      } catch (e) {}
      return send(data);
    };
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


class Page:
    """A browser tab driven through Chromium's DevTools protocol: what the page asked the network for (every
    request and WebSocket, by URL), the terminal's bytes as the session sent them, and keys typed into it."""

    def __init__(self, devtools: aiohttp.ClientWebSocketResponse) -> None:
        self.devtools = devtools
        self.requests: list[str] = []
        self._ids = iter(range(1, 1_000_000))

    async def call(self, method: str, **params: Any) -> Any:
        number = next(self._ids)
        await self.devtools.send_json({"id": number, "method": method, "params": params})
        while True:
            message = json.loads((await self.devtools.receive()).data)
            if message.get("method") == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
            elif message.get("method") == "Network.webSocketCreated":
                self.requests.append(message["params"]["url"])
            if message.get("id") == number:
                return message.get("result")

    async def open(self, url: str, width: int = 1600, height: int = 1000) -> None:
        await self.call("Page.enable")
        await self.call("Network.enable")
        await self.call(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
        )
        await self.call("Page.addScriptToEvaluateOnNewDocument", source=COLLECT)
        await self.call("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value") if result else None

    async def text(self) -> str:
        """Everything the terminal was sent, its control sequences blanked."""
        return ANSI.sub(" ", await self.evaluate("window.__screen || ''"))

    async def screen(self) -> list[str]:
        """The terminal's screen as its rows of text, columns where the session put them."""
        size = await self.evaluate("window.__size")
        if not size:
            return []
        screen = Screen(int(size["width"]), int(size["height"]))
        screen.feed(await self.evaluate("window.__screen || ''"))
        return screen.lines()

    async def until_text(self, wanted: list[str]) -> str:
        deadline = time.monotonic() + PATIENCE
        text = ""
        while not all(word in text for word in wanted):
            assert time.monotonic() < deadline, f"the page never showed {wanted}; it showed: {text[-2000:]}"
            await asyncio.sleep(0.2)
            text = await self.text()
        return text

    async def until_screen(self, condition: Any, what: str) -> list[str]:
        deadline = time.monotonic() + PATIENCE
        while not condition(lines := await self.screen()):
            assert time.monotonic() < deadline, f"the screen never showed {what}:\n" + "\n".join(lines)
            await asyncio.sleep(0.2)
        return lines

    async def key(self, key: str, code: str, keycode: int) -> None:
        """A key typed into the terminal (focused first, as a click on it would)."""
        await self.evaluate("document.querySelector('.xterm-helper-textarea').focus()")
        for kind in ("rawKeyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key=key, code=code, windowsVirtualKeyCode=keycode)


@contextlib.asynccontextmanager
async def page_in(debug_port: int) -> AsyncIterator[Page]:
    """The browser's first tab, once its DevTools answer."""
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
            yield Page(devtools)


async def read_page(debug_port: int, url: str, wanted: list[str]) -> str:
    """Open `url` in the browser and return its terminal's text once every one of `wanted` is on it."""
    async with page_in(debug_port) as page:
        await page.open(url)
        return await page.until_text(wanted)


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


def _started_web(*args: str) -> tuple[subprocess.Popen[str], str]:
    """`balance-tui web ARGS` on a free port of its own, once it answers its page."""
    port = free_port()
    proc = start_cli("web", *args, "--listen", f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + PATIENCE
    while True:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "web did not start"
        time.sleep(0.1)


def _viewers(server: Server) -> dict[str, float]:
    """balance_tui_viewers by kind, as the server says now."""
    families = text_string_to_metric_families(httpx.get(server.url + "/metrics", timeout=PATIENCE).text)
    return {s.labels["kind"]: s.value for f in families if f.name == "balance_tui_viewers" for s in f.samples}


def test_the_page_works_through_a_forwarded_port_and_asks_no_other_machine(server: Server, web: str) -> None:
    """As `ssh -L 9000:127.0.0.1:8766 desk` leaves it: the browser reaches `web` by another name and port than
    the ones it listens on. Every request the page makes (its script, stylesheet, font, WebSocket) goes to
    the address in the browser's bar, and the session works; the server counts it as a browser."""
    relay = Proxy(int(web.rstrip("/").rsplit(":", 1)[1]))
    forwarded = relay.url.replace("127.0.0.1", "localhost") + "/"  # the second port, by another name
    origin = urlsplit(forwarded).netloc
    assert "//" not in httpx.get(web, timeout=PATIENCE).text  # the page names nothing absolutely
    names = list(httpx.get(server.url + "/healthz", timeout=PATIENCE).json()["venues"])  # no /snapshot: a viewer

    before = _viewers(server)  # readiness polled /snapshot: a plain client, counted as a snapshot poller

    async def visit(debug_port: int) -> tuple[list[str], dict[str, float]]:
        async with page_in(debug_port) as page:
            await page.open(forwarded)
            await page.until_text([*names, "via 127.0.0.1"])
            deadline = time.monotonic() + PATIENCE
            while (counted := await asyncio.to_thread(_viewers, server)).get("browser") != 1.0:
                assert time.monotonic() < deadline, f"the browser session never counted: {counted}"
                await asyncio.sleep(0.2)
            return page.requests, counted

    with tempfile.TemporaryDirectory() as profile:
        port = free_port()
        chromium = browser(port, profile)
        try:
            requests, counted = asyncio.run(visit(port))
        finally:
            close_browser(chromium)
            relay.close()
    assert counted["snapshot"] <= before["snapshot"] and counted["browser"] == 1.0  # a browser, not a terminal
    assert f"ws://{origin}/ws" in {u.partition("?")[0] for u in requests}
    assert any("/static/fonts/" in u for u in requests)  # the font came, from here
    elsewhere = [u for u in requests if urlsplit(u).netloc != origin]
    assert not elsewhere, f"the page asked other addresses: {elsewhere}"


def test_web_demo_shows_the_demo_in_the_browser() -> None:
    proc, url = _started_web("--demo")
    try:
        with tempfile.TemporaryDirectory() as profile:
            port = free_port()
            chromium = browser(port, profile)
            try:
                wanted = ["DEMO", "simulated venues, not real money", "Kraken custody (simulated)", "worth $"]
                text = asyncio.run(read_page(port, url, wanted))
            finally:
                close_browser(chromium)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=PATIENCE)
    assert "Coinbase INTX (simulated)" in text and "Traceback" not in err


def _header_and_loans(lines: list[str]) -> tuple[str, list[str]] | None:
    """The INTX pane's header row and its balance rows, once its header is on screen."""
    for i, line in enumerate(lines):
        if line.lstrip(" │|").startswith("portfolio") and "asset" in line:
            rows = []
            for row in lines[i + 1 :]:
                if not re.search(r"\d", row) or "Totals" in row:
                    break
                rows.append(row)
            return line, rows
    return None


def test_in_the_browser_loan_values_come_with_their_header(server: Server, web: str) -> None:
    """In a browser window too narrow for every INTX column, → brings the loan column into view: its header
    above its values (header and values scroll together), the names kept."""

    async def visit(debug_port: int) -> tuple[str, list[str]]:
        async with page_in(debug_port) as page:
            await page.open(web, width=900, height=900)
            # too narrow: once the columns are as wide as their values, loan is out of sight (a frame drawn
            # before the table measured its new values may briefly show every column at its label's width)
            lines = await page.until_screen(
                lambda lines: (
                    (found := _header_and_loans(lines)) is not None and len(found[1]) >= 3 and " loan" not in found[0]
                ),
                "the INTX pane's header and balances, loan out of sight",
            )
            found = _header_and_loans(lines)
            assert found is not None
            await page.key("Tab", "Tab", 9)  # the INTX pane
            for _ in range(12):  # a column at a time, each press seen on the screen before the next
                shown = found[0]
                await page.key("ArrowRight", "ArrowRight", 39)
                lines = await page.until_screen(
                    lambda lines, shown=shown: (now := _header_and_loans(lines)) is not None and now[0] != shown,
                    "the INTX pane's columns moved",
                )
                found = _header_and_loans(lines)
                assert found is not None
                if re.search(r"\bloan\b", found[0]):
                    return found
            raise AssertionError("→ never brought the loan column into view:\n" + "\n".join(await page.screen()))

    with tempfile.TemporaryDirectory() as profile:
        port = free_port()
        chromium = browser(port, profile)
        try:
            header, rows = asyncio.run(visit(port))
        finally:
            close_browser(chromium)
    assert header.lstrip(" │|").startswith("portfolio")  # the names kept
    # the loan column: from the end of the header before it to the end of "loan" (numbers align on their point)
    loan = re.search(r"\bloan\b", header)
    before = re.search(r"\S(?=\s+loan\b)", header)
    assert loan is not None and before is not None and rows
    intx = next(
        v for v in httpx.get(server.url + "/snapshot", timeout=PATIENCE).json()["venues"] if "INTX" in v["name"]
    )
    loans = {(a["name"], b["asset"]): Decimal(b["loan"]) for a in intx["accounts"] for b in a["balances"]}
    for row in rows:
        name, asset = re.split(r"\s{2,}", row.strip(" │|▃▆▇▅▂▁▄█"))[:2]
        cell = row[before.end() : loan.end()].split()
        assert len(cell) == 1 and Decimal(cell[0]) == loans[(name, asset)], "\n".join([header, row])
