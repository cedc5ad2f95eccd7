"""Instants people write on a command line: ISO 8601 in any of its forms and any time zone, and back.

`2026-11-30T23:59:59Z`, `2026-11-30T23:59:59+01:00`, `2026-11-30 23:59`, `20261130T235959Z`, a week date
(`2026-W48-1`) or an ordinal one (`2026-334`). A time without a zone is UTC; a date alone is its start (00:00)
in UTC. One reading for `history --since` and `book --at/--between`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta

_ORDINAL = re.compile(r"(\d{4})-?(\d{3})")


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
        raise ValueError(f"{text!r} is no ISO 8601 date or time (such as 2026-11-30T23:59:59Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso_instant(ts: float) -> str:
    """An instant as UTC ISO text: whole seconds as `2026-11-30T23:59:59Z`, a fraction kept to the microsecond."""
    whole = math.floor(ts)
    moment = datetime.fromtimestamp(ts, UTC)
    if ts == whole:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0") + "Z"
