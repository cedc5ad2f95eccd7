"""`balance-tui web --attach URL`: the TUI in a browser (textual-serve). Every browser session runs its own
`balance-tui --attach URL`, a viewer of the server like any terminal: no keys here, one poller there. The
sessions say they are browsers (`$BALANCE_TUI_VIEWER`), so that the server counts them as such.
`balance-tui web --demo`: every session runs `balance-tui --demo` instead (its own simulator, no server).

It listens on loopback only: textual-serve has no login, so a desk reaches it through SSH port forwarding;
it answers only its own page, addressed to this machine, so no other web page open in a browser can. The
page is ours (tui/ui/web_page.py): every URL in it is relative, so any forwarded port works, and it asks
nothing of any other machine."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import sys
from typing import Any

from tui.config import is_loopback
from tui.credentials import Secret
from tui.remote.client import VIEWER_KIND, AttachError, ServerClient
from tui.remote.viewer import TOKEN_VARIABLE
from tui.sinks.access import addressed_locally, same_origin
from tui.sinks.listener import IDLE_TIMEOUT, Door, raise_open_files
from tui.stderr import say
from tui.tls import trusted
from tui.ui.web_page import CSP, index_html

EXIT_USAGE = 2
MAX_SESSIONS = 20  # browser sessions at once, each its own `balance-tui --attach` process
GRACE = 2.0  # seconds the sessions have to end when web stops


def run_web(url: str | None, token: Secret | None, listen: str, seed: int = 7) -> int:
    """Browsers' sessions attached to the server at `url`, or each its own demo (`url` None)."""
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return _usage(f"--listen {listen!r}: give HOST:PORT, e.g. 127.0.0.1:8766")
    if not is_loopback(host.strip("[]")):
        return _usage(
            f"--listen {listen}: web serves the TUI without a login, so it listens on loopback only; reach it "
            "through SSH port forwarding (ssh -L 8766:127.0.0.1:8766 ...)"
        )
    if url is None:
        command = f"{shlex.quote(sys.executable)} -m tui --demo --seed {int(seed)}"
        source = "the demo: each session its own simulator"
    else:
        try:
            asyncio.run(_check(url, token))
        except AttachError as exc:
            say(exc.message)
            return EXIT_USAGE if exc.usage else 1
        if token is not None:
            os.environ[TOKEN_VARIABLE] = token.reveal()  # the sessions' --attach reads it; never on a command line
        os.environ[VIEWER_KIND] = "browser"  # the server counts the sessions as browsers (tui/sinks/audience.py)
        command = f"{shlex.quote(sys.executable)} -m tui --attach {shlex.quote(url)}"
        if (ca_file := trusted()) is not None:  # the sessions verify the server as this check did
            command += f" --ca-file {shlex.quote(str(ca_file))}"
        source = f"attached to {url}"
    raise_open_files()
    print(f"balance-tui web on http://{listen}/ ({source}); Ctrl-C stops it", flush=True)
    try:
        _guarded_server(command, host.strip("[]"), int(port_text)).serve()
    except OSError as exc:
        return _usage(f"cannot listen on {listen}: {exc.strerror or exc}")
    return 0


def _guarded_server(command: str, host: str, port: int) -> Any:
    """textual-serve's server, answering only pages of its own origin addressed to this machine (any web
    page could otherwise open a session from the user's browser, DNS rebinding included), with at most
    MAX_SESSIONS sessions (each is a process) at once; listening as `serve` does (a connection has 10 s to
    send its headers, errors are throttled lines), not through textual-serve's own `run_app` and its
    tracebacks."""
    from aiohttp import web
    from textual_serve.server import Server

    class Guarded(Server):
        sessions = 0

        def serve(self, debug: bool = False) -> None:
            asyncio.run(self._serve())

        async def _serve(self) -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            app = await self._make_app()
            runner = web.AppRunner(app, access_log=None, keepalive_timeout=IDLE_TIMEOUT, shutdown_timeout=GRACE)
            with Door(
                lambda message: say(message, who="balance-tui web"), loggers=("aiohttp", "textual-serve")
            ) as door:
                await runner.setup()
                try:
                    await door.open(runner, self.host, self.port)
                    await stop.wait()
                finally:
                    door.close()
                    await runner.cleanup()

        async def handle_index(self, request: web.Request) -> web.Response:
            """Our page, every URL in it relative (textual-serve's names http://HOST:PORT/ it listens on)."""
            try:
                font_size = max(6, min(64, int(request.query.get("fontsize", "16"))))
            except ValueError:
                font_size = 16
            page = index_html(self.title, font_size)
            headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
            return web.Response(text=page, content_type="text/html", headers=headers)

        async def _make_app(self) -> web.Application:
            app: web.Application = await super()._make_app()
            app.middlewares.append(self._guard)
            return app

        @web.middleware
        async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
            host = request.headers.get("Host")
            if not addressed_locally(host) or not same_origin(request.headers.get("Origin"), host):
                return web.Response(status=403, text="balance-tui web answers only its own page on this machine\n")
            return await handler(request)  # type: ignore[no-any-return]

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            if Guarded.sessions >= MAX_SESSIONS:
                raise web.HTTPServiceUnavailable(text=f"already {MAX_SESSIONS} browser sessions: close one\n")
            Guarded.sessions += 1
            try:
                return await super().handle_websocket(request)
            finally:
                Guarded.sessions -= 1

    return Guarded(command, host=host, port=port, title="balance-tui")


async def _check(url: str, token: Secret | None) -> None:
    async with ServerClient(url, token) as client:
        await client.check()


def _usage(message: str) -> int:
    print(f"balance-tui: {message}", file=sys.stderr)
    return EXIT_USAGE
