"""Run an alert rule's command (for paging) with the alert as one JSON document on stdin.

No shell: the command line is split as a shell would, and run directly. It gets 10 s; what it prints
is ignored unless it fails, and then the operator is told in one line. It never blocks the screen.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from typing import Any

from tui.credentials import redact

TIMEOUT = 10.0


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
        )
    except OSError as exc:
        return f"alert command {name!r} cannot start: {exc.strerror or exc}"
    data = (json.dumps(payload, ensure_ascii=False) + "\n").encode()
    try:
        _, err = await asyncio.wait_for(process.communicate(data), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return f"alert command {name!r} ran over {timeout:g} s and was stopped"
    if process.returncode:
        lines = err.decode(errors="replace").strip().splitlines()
        said = redact(lines[-1])[:160] if lines else ""
        return f"alert command {name!r} exited {process.returncode}" + (f": {said}" if said else "")
    return None
