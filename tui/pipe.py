"""When the reader of our standard output goes away (`balance-tui --once | head -1`), every command ends
quietly: no traceback, no "Exception ignored" line, exit 0. `tui.cli.run` catches the BrokenPipeError once for
every command; this is what it (and `--watch`, which ends itself on it) does then."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
from collections.abc import Callable
from typing import TextIO


def reader_gone() -> None:
    """Point stdout's file descriptor at /dev/null: what is still buffered, and Python's own flush of stdout at
    exit (which would raise BrokenPipeError again, where nothing can catch it), then go nowhere."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)


def when_reader_leaves(loop: asyncio.AbstractEventLoop, out: TextIO, gone: Callable[[], None]) -> None:
    """Call `gone` once the reader of `out` (a pipe) goes away, even if nothing is written any more:
    `--watch | head -1` on quiet balances would otherwise wait, its reader long gone, until the next change.
    The kernel reports the write end of a pipe whose reader closed as in error, which wakes a reader callback.
    Anything else is left alone: a terminal is readable when someone types, a socket when its peer sends."""
    try:
        fd = out.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):
        return
    if not stat.S_ISFIFO(mode):
        return

    def once() -> None:
        loop.remove_reader(fd)
        gone()

    with contextlib.suppress(OSError, ValueError, NotImplementedError):
        loop.add_reader(fd, once)
