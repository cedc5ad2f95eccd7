"""How `serve` and `web` listen, so that nothing a stranger sends takes the desk down:

- the open-file soft limit is raised to the hard limit at start (as Go's runtime does): systemd's default
  soft limit of 1,024 is a few hundred viewers and a flood away from refusing everyone;
- a connection whose first request's headers are not complete within HEADER_TIMEOUT is closed (a TLS
  handshake gets as long), and a kept-alive connection idle for IDLE_TIMEOUT too;
- out of open files, the oldest connections still waiting for their headers are shed (they are what a
  flood is made of), so that `/healthz` and the desk's viewers get in again;
- the event loop's and aiohttp's error reports are one line each, and the same report at most once a
  minute, with a count: a flood once wrote one traceback per failed accept, 317 MB of them in a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

HEADER_TIMEOUT = 10.0  # seconds a new connection has to send its first request's headers (or finish TLS)
IDLE_TIMEOUT = 30.0  # seconds a kept-alive connection may wait for its next request (viewers ask every 1 s)
REPORT_EVERY = 60.0  # the same error report at most this often, with how many were not said meanwhile
BACKLOG = 128  # connections the kernel holds for us while we are not accepting
SHED_EVERY = 1.0  # asyncio retries accepting a second after running out of files: shed once per retry
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
Say = Callable[[str], None]


def raise_open_files() -> tuple[int, int]:
    """Raise this process's soft limit on open files to its hard limit; returns (soft, hard) after. A limit
    that cannot be raised is left as it is: the server then sheds what a flood opens, as it would anyway."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return soft, hard
    for wanted in (hard, 1 << 20):  # an unlimited hard limit cannot be a soft one on Linux: take a million
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return wanted, hard
    return soft, hard


def open_files_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Throttle:
    """Says each kind of report at once, then at most once every REPORT_EVERY seconds with how many of its
    kind were not said meanwhile; `flush` says what is still counted (at shutdown)."""

    MAX_KINDS = 64  # kinds are the reports' fixed texts: a bound in case one carries something variable

    def __init__(self, say: Say, every: float = REPORT_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self._say = say
        self._every = every
        self._clock = clock
        self._kinds: dict[str, tuple[float, int, str]] = {}  # kind -> (when last said, not said since, last text)

    def say(self, kind: str, message: str) -> None:
        now = self._clock()
        said = self._kinds.get(kind)
        if said is None or now - said[0] >= self._every:
            more = f" ({said[1]} more like it in the last {now - said[0]:.0f} s)" if said and said[1] else ""
            self._say(message + more)
            self._kinds[kind] = (now, 0, message)
            if len(self._kinds) > self.MAX_KINDS:
                del self._kinds[next(iter(self._kinds))]
        else:
            self._kinds[kind] = (said[0], said[1] + 1, message)

    def flush(self) -> None:
        for kind, (when, count, message) in list(self._kinds.items()):
            if count:
                self._say(f"{message} ({count} more like it in the last {self._clock() - when:.0f} s)")
                self._kinds[kind] = (self._clock(), 0, message)


class Doorman:
    """Closes a connection that has not sent its first request's headers within `header_timeout`, and sheds
    the oldest such connections when the process is out of open files.

    It watches through aiohttp's low-level server: `connection_made` (a connection came in) and
    `request_factory` (a request's headers are complete), both wrapped before the first connection."""

    def __init__(self, server: web.Server, header_timeout: float = HEADER_TIMEOUT) -> None:
        self.header_timeout = header_timeout
        self.closed = 0  # connections closed for want of headers, or shed
        self._waiting: dict[Any, float] = {}  # handler -> when it connected, oldest first
        self._shed_at = float("-inf")
        made, lost, factory = server.connection_made, server.connection_lost, server.request_factory

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            loop = asyncio.get_running_loop()
            self._waiting[handler] = loop.time()
            loop.call_later(self.header_timeout, self._expire, handler)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self._waiting.pop(handler, None)
            lost(handler, exc)

        def request_factory(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
            self._waiting.pop(protocol, None)
            return factory(message, payload, protocol, writer, task)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]
        server.request_factory = request_factory

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _expire(self, handler: Any) -> None:
        if self._waiting.pop(handler, None) is not None:
            self.closed += 1
            handler.force_close()

    def shed(self, count: int = BACKLOG) -> int:
        """Close up to `count` of the oldest connections still waiting for headers; at most once a second
        (asyncio's accept retry), however often it is asked. Returns how many were closed."""
        now = time.monotonic()
        if now - self._shed_at < SHED_EVERY:
            return 0
        self._shed_at = now
        oldest = list(self._waiting)[:count]
        for handler in oldest:
            del self._waiting[handler]
            handler.force_close()
        self.closed += len(oldest)
        return len(oldest)


class Door:
    """The listening side of a server: `with Door(say) as door:` puts the one-line, throttled error reports
    in place (the event loop's and aiohttp's) for as long as the server runs, its shutdown included;
    `await door.open(runner, host, port, tls)` listens and returns the port bound."""

    def __init__(
        self, say: Say, header_timeout: float = HEADER_TIMEOUT, loggers: tuple[str, ...] = ("aiohttp",)
    ) -> None:
        self.throttle = Throttle(say)
        self.header_timeout = header_timeout
        self.loggers = loggers  # whose error reports become throttled lines
        self.doorman: Doorman | None = None
        self._listening: asyncio.Server | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Door:
        loop = asyncio.get_running_loop()
        before = loop.get_exception_handler()
        loop.set_exception_handler(self._loop_error)
        self._stack.callback(self.throttle.flush)
        self._stack.callback(loop.set_exception_handler, before)
        for name in self.loggers:
            self._stack.enter_context(_errors_said(logging.getLogger(name), self.throttle))
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self._stack.close()

    async def open(self, runner: web.BaseRunner, host: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Listen on host:port (OSError if it cannot), guarded; `runner` is set up already."""
        assert runner.server is not None, "set the runner up first"
        self.doorman = Doorman(runner.server, self.header_timeout)
        self._listening = await asyncio.get_running_loop().create_server(
            runner.server,
            host,
            port,
            ssl=tls,
            backlog=BACKLOG,
            ssl_handshake_timeout=self.header_timeout if tls is not None else None,
        )
        return int(self._listening.sockets[0].getsockname()[1])

    def close(self) -> None:
        """Stop listening (the connections are the runner's to close)."""
        if self._listening is not None:
            self._listening.close()
            self._listening = None

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = str(context.get("message") or "error in the event loop")
        if isinstance(exc, OSError) and exc.errno in OUT_OF_RESOURCES:
            shed = self.doorman.shed() if self.doorman is not None else 0
            doing = "accept connections" if "accept" in message else message.rstrip(".").lower()
            self.throttle.say(f"resources: {doing}", _out_of_resources(exc, shed, doing))
            return
        detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        self.throttle.say(message, f"{message}{detail}"[:300])


def _out_of_resources(exc: OSError, shed: int, doing: str) -> str:
    """One line for a failure for want of files or memory: `doing` is what failed (accept connections, for
    a flood), the limit, and what was shed to make room."""
    what = "open files" if exc.errno in (errno.EMFILE, errno.ENFILE) else "memory for sockets"
    limit = f", limit {open_files_limit()}" if exc.errno == errno.EMFILE else ""
    closing = f"; closed {shed} connections that sent no request" if shed else ""
    return (
        f"cannot {doing}: out of {what} ({exc.strerror}{limit}){closing}. If this is not a flood, raise the "
        "limit (LimitNOFILE= in the systemd unit)"
    )


@contextlib.contextmanager
def _errors_said(logger: logging.Logger, throttle: Throttle) -> Iterator[None]:
    """A library's error reports (aiohttp's) as one line each, throttled, without tracebacks (a viewer cut
    off mid-write is routine)."""
    handler = _OneLine(throttle)
    logger.addHandler(handler)
    before = logger.propagate
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = before


class _OneLine(logging.Handler):
    def __init__(self, throttle: Throttle) -> None:
        super().__init__(logging.ERROR)
        self._throttle = throttle

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        source = "http" if record.name.startswith("aiohttp") else record.name  # "textual-serve" for web's sessions
        self._throttle.say(str(record.msg), f"{source}: {record.getMessage()}{detail}"[:300])
