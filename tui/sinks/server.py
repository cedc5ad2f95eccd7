"""`balance-tui serve`: one poller for every configured key (one nonce sequence and one rate budget per key),
served to any number of viewers over HTTP, GET only:

    /                what is served here, a line each (ENDPOINTS)
    /snapshot        the `--once --format json` document
    /events          the `--watch` lines (application/x-ndjson): the whole state first, then each change, and a
                     heartbeat whenever nothing else went out for 15 s
    /metrics         Prometheus text format
    /healthz         {"status", "release", "contract", "venues": {name: up}}
    /detail/intx     ?venue=&account=&asset=  {"balance", "summary"}, from the server's own INTX client
    /detail/kraken   ?venue=&account=         the vault's details, from the server's own Kraken client

Nothing served can change anything, and nothing served holds a secret. Every response says the release and
the contract (X-Balance-TUI-Release, X-Balance-TUI-Contract); errors are JSON: {"error": ...}.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from aiohttp import web
from prometheus_client import CollectorRegistry

from tui.config import Config, ConfigError, is_loopback
from tui.credentials import Secret
from tui.engine.engine import Engine
from tui.monitor.history import History, HistoryError, path_for
from tui.sinks.access import (
    DEFAULT_LISTEN,
    AccessError,
    addressed_locally,
    authorized,
    parse_listen,
    read_token,
    require_token,
)
from tui.sinks.audience import VIEWER_HEADER, Audience
from tui.sinks.details import Answer, Details
from tui.sinks.fanout import HEARTBEAT, QUEUE_LINES, Fanout
from tui.sinks.listener import HEADER_TIMEOUT, IDLE_TIMEOUT, Door, raise_open_files
from tui.sinks.metrics import exposition, registry
from tui.sinks.poller import Poller
from tui.snapshot.contract import CONTRACT
from tui.stderr import say
from tui.tls import TLSError, server_context

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
NDJSON = "application/x-ndjson"
MAX_VIEWERS = 500  # streams at once: each holds a connection and up to its queue's bound
GRACE = 2.0  # seconds a dropped (or, at shutdown, any) viewer has to take its last line before it is cut off
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ENDPOINTS = {  # what `/` answers: every path served, a line each
    "/snapshot": "every venue, account and balance with its value: the `--once --format json` document",
    "/events": "the `--watch` lines as application/x-ndjson: the whole state, then each change as it comes, "
    "and a heartbeat whenever nothing else went out for 15 s",
    "/metrics": "Prometheus text format: balances, values, prices, venues' health, alerts, viewers (floats)",
    "/healthz": "status, release, contract, and whether each venue answered",
    "/detail/intx": "?venue=&account=&asset=: one INTX balance and its portfolio's summary, asked now",
    "/detail/kraken": "?venue=&account=: one Kraken vault's details, asked now",
}


def release() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("balance-tui")
    except PackageNotFoundError:
        return "unknown"


def run_serve(
    config: Config,
    listen: str = DEFAULT_LISTEN,
    token_file: Path | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> int:
    """Poll every configured key once, serve what it sees to any number of viewers; exit code 0 on
    SIGTERM/SIGINT, 2 on a usage problem (message on stderr, one line, no traceback)."""
    try:
        host, port = parse_listen(listen)
        token = read_token(token_file) if token_file is not None else None
        require_token(host, token)
        tls = _tls(tls_cert, tls_key)
    except (AccessError, TLSError) as exc:
        _usage(str(exc))
        return EXIT_USAGE
    raise_open_files()
    return asyncio.run(_until_signalled(Server(config, host, port, token, tls=tls)))


def _tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise TLSError("--tls-cert and --tls-key go together: the server's certificate and its private key")
    return server_context(cert, key)


async def _until_signalled(server: Server) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await server.run(stop)


def _usage(message: str) -> None:
    say(message)


class Server:
    """The whole server; `run(stop)` serves until `stop` is set (a signal, or a test) and returns the exit code."""

    def __init__(
        self,
        config: Config,
        host: str,
        port: int,
        token: Secret | None,
        *,
        queue_lines: int = QUEUE_LINES,
        grace: float = GRACE,
        max_viewers: int = MAX_VIEWERS,
        tls: ssl.SSLContext | None = None,
        header_timeout: float = HEADER_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        heartbeat: float = HEARTBEAT,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.config = config
        self.host = host
        self.port = port  # the port bound, once listening (when asked for port 0)
        self.token = token
        self.grace = grace
        self.max_viewers = max_viewers
        self.tls = tls
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.heartbeat = heartbeat
        self.audience = Audience()
        self.release = release()
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self.fanout = Fanout(queue_lines, self.say)
        self.poller: Poller | None = None
        self.details: Details | None = None
        self._registry: CollectorRegistry | None = None
        self.on_ready: Callable[[int], None] | None = None  # called with the port once listening
        self.door: Door | None = None

    def say(self, message: str) -> None:
        say(message, who="balance-tui serve", to=self._err)

    async def run(self, stop: asyncio.Event) -> int:
        try:
            engine = Engine(self.config)  # loads every secret: a bad one is a usage error before listening
        except ConfigError as exc:
            _usage(str(exc))
            return EXIT_USAGE
        history = self._history()
        async with engine:
            self.poller = poller = Poller(self.config, engine, self.fanout, history, self.say)
            self.details = details = Details(engine)
            runner = web.AppRunner(
                self._app(),
                access_log=None,
                handler_cancellation=True,
                shutdown_timeout=self.grace,
                keepalive_timeout=self.idle_timeout,
            )
            with Door(self.say, self.header_timeout) as door:
                self.door = door
                try:
                    await runner.setup()
                    try:
                        self.port = await door.open(runner, self.host, self.port, self.tls)
                    except OSError as exc:
                        _usage(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}")
                        return EXIT_USAGE
                    scheme = "https" if self.tls is not None else "http"
                    print(f"balance-tui serve: listening on {scheme}://{_netloc(self.host, self.port)}", file=self._out)
                    self._out.flush()
                    if self.tls is None and not is_loopback(self.host):
                        self.say(
                            f"listening on {self.host} without TLS: the token and every balance cross the network "
                            "in clear text. Pass --tls-cert and --tls-key, or listen on 127.0.0.1 and let viewers "
                            f"come through SSH (ssh -L {self.port}:127.0.0.1:{self.port} this-host)"
                        )
                    here = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # a URL viewers here use
                    for line in await engine.join_pollers(f"{scheme}://{_netloc(here, self.port)}"):
                        self.say(line)
                    return await self._serve(poller, stop)
                finally:
                    door.close()
                    self.fanout.close()  # every viewer's stream ends; one that does not read is cut off
                    await runner.cleanup()
                    details.close()
                    await poller.close()

    async def _serve(self, poller: Poller, stop: asyncio.Event) -> int:
        polling = asyncio.create_task(poller.run())
        stopping = asyncio.create_task(stop.wait())
        if self.on_ready is not None:
            self.on_ready(self.port)
        await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        polling.cancel()
        outcome = (await asyncio.gather(polling, return_exceptions=True))[0]
        if isinstance(outcome, Exception):
            self.say(f"the poller stopped: {type(outcome).__name__}: {outcome}")
            return EXIT_FAILED
        return EXIT_OK

    def _history(self) -> History | None:
        if not self.config.history.enabled:
            return None
        try:
            history = History(path_for(self.config))
        except HistoryError as exc:
            self.say(f"{exc}: balances are served but not recorded")
            return None
        for note in history.notes:  # a history file others could read, made private
            self.say(note)
        return history

    # --- the web application ---------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=4096)
        for path, handler in (
            ("/", self._index),
            ("/snapshot", self._snapshot),
            ("/events", self._events),
            ("/metrics", self._metrics),
            ("/healthz", self._healthz),
            ("/detail/intx", self._intx),
            ("/detail/kraken", self._kraken),
        ):
            app.router.add_get(path, handler, allow_head=False)
        app.on_response_prepare.append(self._stamp)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The token first (a stranger learns the release and contract, not even which paths exist), then GET
        only. Without a token, only requests addressed to a loopback name (a rebinding web page's are not)."""
        if self.token is None and not addressed_locally(request.headers.get("Host")):
            return _refusal(
                403,
                "without a token this server answers only requests addressed to it on this machine "
                "(Host: 127.0.0.1, localhost or [::1]); to serve other names, run it with --token-file",
            )
        if self.token is not None and not authorized(request.headers.get("Authorization"), self.token):
            return _refusal(
                401,
                "this server needs its bearer token: send Authorization: Bearer <token>",
                {"WWW-Authenticate": 'Bearer realm="balance-tui"'},
            )
        if request.method != "GET":
            return _error(405, f"{request.method} is not served here: this server only reads (GET)", {"Allow": "GET"})
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return _error(exc.status, f"{exc.reason}: {request.path[:80]}")

    async def _stamp(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Balance-TUI-Release"] = self.release
        response.headers["X-Balance-TUI-Contract"] = str(CONTRACT)

    async def _index(self, request: web.Request) -> web.Response:
        body = {"service": "balance-tui serve", "release": self.release, "contract": CONTRACT, "endpoints": ENDPOINTS}
        return web.json_response(body)

    async def _snapshot(self, request: web.Request) -> web.Response:
        self.audience.saw(request.headers.get(VIEWER_HEADER), request.remote or "", request.headers.get("User-Agent"))
        return web.Response(body=self._poller().contract(), content_type="application/json")

    async def _healthz(self, request: web.Request) -> web.Response:
        venues = {v.name: v.ok for v in self._poller().snapshot().venues}
        body = {"status": "ok", "release": self.release, "contract": CONTRACT, "venues": venues}
        return web.json_response(body)

    async def _metrics(self, request: web.Request) -> web.Response:
        if self._registry is None:
            self._registry = registry(self._poller(), self.fanout, self.audience, self.release)
        body, content_type = exposition(self._registry, request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _intx(self, request: web.Request) -> web.Response:
        venue, account, asset = (request.query.get(k, "") for k in ("venue", "account", "asset"))
        if not (venue and account and asset):
            return _error(400, "/detail/intx needs venue, account and asset: ?venue=NAME&account=ID&asset=ASSET")
        return _answer(await self._details().intx(venue, account, asset))

    async def _kraken(self, request: web.Request) -> web.Response:
        venue, account = (request.query.get(k, "") for k in ("venue", "account"))
        if not (venue and account):
            return _error(400, "/detail/kraken needs venue and account: ?venue=NAME&account=VAULT_ID")
        return _answer(await self._details().kraken(venue, account))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """The whole state, then every line as it happens, until the viewer leaves, falls too far behind
        (dropped: told so if it can still be told), or the server stops."""
        if len(self.fanout.viewers) >= self.max_viewers:
            return _error(503, f"this server already streams to {self.max_viewers} viewers: try again later")
        viewer = self.fanout.join(_peer(request), self._poller().state())
        response = web.StreamResponse(headers={"Content-Type": NDJSON, "Cache-Control": "no-store"})
        response.force_close()  # the stream ends with its connection
        task = asyncio.current_task()
        writing = stopped = False

        def unblock() -> None:  # the viewer ended while a write waits on its socket: stop waiting
            nonlocal stopped
            if writing and task is not None and not stopped:
                stopped = True
                task.cancel()

        viewer.on_end = unblock
        try:
            await response.prepare(request)
            while (chunk := await viewer.next(self.heartbeat)) is not None:
                writing = True
                await response.write(chunk)
                writing = False
        except asyncio.CancelledError:
            if task is None or not stopped or task.uncancel() > 0:
                raise
        except ConnectionError:
            return response
        finally:
            viewer.on_end = None
            self.fanout.leave(viewer)
        if viewer.dropped:
            with contextlib.suppress(ConnectionError):
                await response.write(viewer.last_line())  # the writer's drain was just reset: this does not wait
        if request.transport is not None:  # whatever it has not read by then is not waited for
            asyncio.get_running_loop().call_later(self.grace, request.transport.abort)
        return response

    def _poller(self) -> Poller:
        if self.poller is None:
            raise web.HTTPServiceUnavailable(reason="starting")
        return self.poller

    def _details(self) -> Details:
        if self.details is None:
            raise web.HTTPServiceUnavailable(reason="starting")
        return self.details


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error that also ends the connection: a stranger keeps no connection open by asking wrongly."""
    response = _error(status, message, headers)
    response.force_close()
    return response


def _answer(answer: Answer) -> web.Response:
    status, body = answer
    return web.json_response(body, status=status)


def _peer(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    if isinstance(peer, tuple) and len(peer) >= 2:
        return _netloc(str(peer[0]), int(peer[1]))
    return request.remote or "unknown"


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
