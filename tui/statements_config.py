"""`[statements]` as the config states it: apart from `tui.config`, so that a config without it (and `--once`)
never builds the class (a dataclass costs ~0.5 ms to build, issue 24)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class StatementsConfig:
    """`[statements]`: the book written each day at a local time of day, as JSON and CSV, into a folder."""

    at: dt.time  # the local time of day (seconds allowed: "00:00" or "17:30:00")
    timezone: str = "UTC"  # an IANA name, read with zoneinfo
    folder: Path | None = None  # None: "statements" in the platform's data directory
