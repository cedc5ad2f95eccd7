"""A hostile or broken "balance-tui server" for viewers to attach to: it answers /healthz as a real server of
this contract would, then misbehaves on the path it is told to — an answer far too large, an answer dripped
a byte at a time, an /events line that never ends, an answer that never starts. Raw sockets, so that nothing
between it and the viewer tidies up what it sends. Used by the tests and by bench/hostile.py."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from tui.snapshot.contract import CONTRACT

Behaviour = Callable[[socket.socket, threading.Event], None]
HEALTH = json.dumps({"status": "ok", "release": "0.2.0", "contract": CONTRACT, "venues": {}}).encode()
BLOCK = b'"' + b"x" * ((1 << 20) - 3) + b'",'  # a 1 MiB piece of a JSON list


def head(status: str = "200 OK", content_type: str = "application/json", length: int | None = None) -> bytes:
    """A response head; without a length the body runs until the connection closes. It always says the
    connection closes after it (it does: one request per connection), or a viewer could send its next request
    on a connection already closing ("disconnected without sending a response", seen in the full suite)."""
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", f"X-Balance-TUI-Contract: {CONTRACT}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def healthy(sock: socket.socket, stop: threading.Event) -> None:
    sock.sendall(head(length=len(HEALTH)) + HEALTH)


def huge(total: int, *, declared: bool) -> Behaviour:
    """`total` bytes of a JSON list, announced by Content-Length or not; stops when the viewer leaves."""

    def send(sock: socket.socket, stop: threading.Event) -> None:
        sock.sendall(head(length=total if declared else None) + b"[")
        sent = 1
        while sent < total and not stop.is_set():
            piece = BLOCK[: total - sent]
            sock.sendall(piece)
            sent += len(piece)

    return send


def drip(body: bytes = HEALTH, every: float = 5.0) -> Behaviour:
    """A whole, valid answer, one byte every `every` seconds: never silent long enough for a read timeout."""

    def send(sock: socket.socket, stop: threading.Event) -> None:
        for byte in head(length=len(body)) + body:
            sock.sendall(bytes([byte]))
            if stop.wait(every):
                return

    return send


def endless_line(cap: int = 64 << 20) -> Behaviour:
    """/events whose first line never ends (up to `cap` bytes, so that a viewer without a bound fails a test
    instead of the machine), then silence."""

    def send(sock: socket.socket, stop: threading.Event) -> None:
        sock.sendall(head(content_type="application/x-ndjson") + b'{"event": "new", "x": "')
        sent = 0
        while sent < cap and not stop.is_set():
            sock.sendall(BLOCK[2:-2])
            sent += len(BLOCK) - 4
        stop.wait()

    return send


def silent(sock: socket.socket, stop: threading.Event) -> None:
    """Accepts the request, never answers."""
    stop.wait()


def chunks(*pieces: bytes, pause: float = 0.05) -> Behaviour:
    """An /events answer sent in these pieces, a pause between them, then closed."""

    def send(sock: socket.socket, stop: threading.Event) -> None:
        sock.sendall(head(content_type="application/x-ndjson"))
        for piece in pieces:
            sock.sendall(piece)
            if stop.wait(pause):
                return

    return send


class HostileServer:
    """On 127.0.0.1, a free port; `paths` maps a path to what is sent (anything else: /healthz's answer)."""

    def __init__(self, paths: dict[str, Behaviour]) -> None:
        self.paths = {"/healthz": healthy, **paths}
        self.stop = threading.Event()
        self.requests: list[str] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                received = b""
                while b"\r\n\r\n" not in received:
                    data = sock.recv(65536)
                    if not data:
                        return
                    received += data
                path = received.split(b" ", 2)[1].decode().partition("?")[0]
                outer.requests.append(path)
                with contextlib.suppress(OSError):  # the viewer left, as it should
                    outer.paths.get(path, healthy)(sock, outer.stop)

        class Threaded(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 64

        self._server = Threaded(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="hostile-server", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()


# A child's peak RSS as the kernel counts it starts at its parent's RSS when it forked (the hiwater mark
# survives exec): measured from a test runner or a bench that holds 300 MB, every viewer "peaks" at 300 MB.
# So the viewer is started by this small launcher, which reports its child's peak.
LAUNCHER = """
import resource, signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGTERM, lambda *_: child.terminate())
code = child.wait()
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


@dataclass
class Ended:
    code: int
    out: str
    err: str
    peak_mb: float  # the program's peak RSS
    seconds: float


def run_measured(
    *args: str, folder: Path, env: dict[str, str], stop_when: str | None = None, timeout: float = 120
) -> Ended:
    """`balance-tui ARGS` in its own process, with its peak memory. With `stop_when`, it is sent SIGTERM once
    its stderr holds that text (for --watch, which does not end by itself); after `timeout` it is killed (a
    safety net: a program that hangs fails what waits for it, not the machine)."""
    stamp = time.monotonic_ns()
    out, err, peak = (folder / f"{name}-{stamp}" for name in ("out", "err", "peak"))
    started = time.monotonic()
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(peak), sys.executable, "-m", "tui", *args],
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
        )
    try:
        if stop_when is not None:
            wait_for(lambda: stop_when in err.read_text() or proc.poll() is not None, f"{stop_when!r} said", timeout)
            proc.terminate()
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    peak_kb = int(peak.read_text()) if peak.exists() else 0
    return Ended(proc.returncode, out.read_text(), err.read_text(), peak_kb / 1024, time.monotonic() - started)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Poll for a state; the timeout is a safety net, not what is measured."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)
