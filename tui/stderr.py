"""What the program says to the operator on stderr: one place, so that every line is redacted (no secret)
and passed through the gate for text from outside (no escape sequence) before a terminal sees it."""

from __future__ import annotations

import sys
from typing import TextIO

from tui.credentials import redact
from tui.untrusted import visible

PREFIX = "balance-tui"


def say(message: object, *, who: str = PREFIX, to: TextIO | None = None) -> None:
    """One line on stderr (or `to`), `who: message`: secrets masked, then anything that could steer a
    terminal made visible (so a venue's newline cannot forge a second line either)."""
    print(f"{who}: {visible(redact(str(message)))}", file=to or sys.stderr, flush=True)
