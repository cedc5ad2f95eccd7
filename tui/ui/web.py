"""`balance-tui web --attach URL`: the TUI in a browser (textual-serve). Every browser session runs its own
`balance-tui --attach URL`, a viewer of the server like any terminal: no keys here, one poller there.

It listens on loopback only: textual-serve has no login, so a desk reaches it through SSH port forwarding
or a reverse proxy that authenticates."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys

from tui.config import is_loopback
from tui.credentials import Secret
from tui.remote.client import AttachError, ServerClient
from tui.remote.viewer import TOKEN_VARIABLE

EXIT_USAGE = 2


def run_web(url: str, token: Secret | None, listen: str) -> int:
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return _usage(f"--listen {listen!r}: give HOST:PORT, e.g. 127.0.0.1:8766")
    if not is_loopback(host.strip("[]")):
        return _usage(
            f"--listen {listen}: web serves the TUI without a login, so it listens on loopback only; reach it "
            "through SSH port forwarding (ssh -L 8766:127.0.0.1:8766 ...) or an authenticating reverse proxy"
        )
    try:
        asyncio.run(_check(url, token))
    except AttachError as exc:
        print(f"balance-tui: {exc.message}", file=sys.stderr)
        return EXIT_USAGE if exc.usage else 1
    if token is not None:
        os.environ[TOKEN_VARIABLE] = token.reveal()  # the sessions' own --attach reads it; never on a command line
    from textual_serve.server import Server

    command = f"{shlex.quote(sys.executable)} -m tui --attach {shlex.quote(url)}"
    print(f"balance-tui web on http://{listen}/ (attached to {url}); Ctrl-C stops it", flush=True)
    try:
        Server(command, host=host.strip("[]"), port=int(port_text), title="balance-tui").serve()
    except OSError as exc:
        return _usage(f"cannot listen on {listen}: {exc.strerror or exc}")
    return 0


async def _check(url: str, token: Secret | None) -> None:
    async with ServerClient(url, token) as client:
        await client.check()


def _usage(message: str) -> int:
    print(f"balance-tui: {message}", file=sys.stderr)
    return EXIT_USAGE
