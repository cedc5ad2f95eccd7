"""Run an alert rule's command (for paging) with the alert as one JSON document on stdin.

No shell: the command line is split as a shell would, and run directly. It gets 10 s; what it prints
is ignored unless it fails, and then the operator is told in one line. It never blocks the screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from typing import Any

from tui.credentials import kill_group, redact
from tui.untrusted import json_text

TIMEOUT = 10.0
STDERR_TAIL = 4096


async def run_hook(command: str, payload: dict[str, Any], timeout: float = TIMEOUT) -> str | None:
    """None when the command ran and exited 0; otherwise what went wrong, for the operator."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return f"alert command cannot be parsed ({exc}): check its quotes in the config"
    if not argv:
        return "alert command is empty"
    name = argv[0]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: what it starts ends with it
        )
    except OSError as exc:
        return f"alert command {name!r} cannot start: {exc.strerror or exc}"
    data = (json_text(payload) + "\n").encode()
    try:
        err = await asyncio.wait_for(_fed(process, data), timeout)
    except BaseException as exc:  # over its time, or we stop waiting (shutting down): the whole group ends
        kill_group(process.pid)
        await process.wait()
        if isinstance(exc, TimeoutError):
            return f"alert command {name!r} ran over {timeout:g} s and was stopped"
        raise
    if process.returncode:
        lines = err.decode(errors="replace").strip().splitlines()
        said = redact(lines[-1])[:160] if lines else ""
        return f"alert command {name!r} exited {process.returncode}" + (f": {said}" if said else "")
    return None


async def _fed(process: asyncio.subprocess.Process, data: bytes) -> bytes:
    """Give the command the alert, wait for it to end, and keep the last STDERR_TAIL bytes it wrote to
    stderr (only its last line is ever shown: a command that writes without end costs no memory)."""
    assert process.stdin is not None and process.stderr is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it may exit without reading
        process.stdin.write(data)
        await process.stdin.drain()
    process.stdin.close()
    tail = b""
    while chunk := await process.stderr.read(65536):
        tail = (tail + chunk)[-STDERR_TAIL:]
    await process.wait()
    return tail
