"""Instants people write on a command line: ISO 8601 in any of its forms and any time zone, and back.

`2026-11-30T23:59:59Z`, `2026-11-30T23:59:59+01:00`, `2026-11-30 23:59`, `20261130T235959Z`, a week date
(`2026-W48-1`) or an ordinal one (`2026-334`). A time without a zone is UTC; a date alone is its start (00:00)
in UTC. One reading for `history --since` and `book --at/--between`. An instant is kept only if it can be
written back as UTC (years 1 to 9999): `9999-12-31T23:59:59-14:00` is past that, and says so.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta

_ORDINAL = re.compile(r"(\d{4})-?(\d{3})")
QUOTED = 40  # characters of a rejected text quoted back: enough to recognise it, and the message stays one line


def parse_instant(text: str) -> float:
    """Seconds since the epoch; ValueError (with the text quoted) for anything that is no ISO instant."""
    raw = text.strip()
    ordinal = _ORDINAL.fullmatch(raw)
    try:
        if ordinal:
            day = date(int(ordinal.group(1)), 1, 1) + timedelta(days=int(ordinal.group(2)) - 1)
            if day.year != int(ordinal.group(1)):
                raise ValueError(raw)
            moment = datetime(day.year, day.month, day.day)
        else:
            moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{_quoted(text)} is no ISO 8601 date or time (such as 2026-11-30T23:59:59Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment.astimezone(UTC)  # the instant as UTC exists: iso_instant can write it
    except OverflowError:
        raise ValueError(f"{_quoted(text)} is outside the years 1 to 9999 in UTC") from None
    return moment.timestamp()


def _quoted(text: str) -> str:
    return repr(text) if len(text) <= QUOTED else f"{text[:QUOTED]!r}... ({len(text)} characters)"


def iso_instant(ts: float) -> str:
    """An instant as UTC ISO text: whole seconds as `2026-11-30T23:59:59Z`, a fraction kept to the microsecond."""
    moment = datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)
    if ts == math.floor(ts):
        return moment.isoformat(timespec="seconds") + "Z"
    return moment.isoformat(timespec="microseconds").rstrip("0") + "Z"  # the year in four digits, as ISO writes it
