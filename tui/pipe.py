"""When the reader of our standard output goes away (`balance-tui --once | head -1`), every command ends
quietly: no traceback, no "Exception ignored" line, exit 0. `tui.cli.run` catches the BrokenPipeError once for
every command; this is what it (and `--watch`, which ends itself on it) does then."""

from __future__ import annotations

import contextlib
import os
import sys


def reader_gone() -> None:
    """Point stdout's file descriptor at /dev/null: what is still buffered, and Python's own flush of stdout at
    exit (which would raise BrokenPipeError again, where nothing can catch it), then go nowhere."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
