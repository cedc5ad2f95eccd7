"""An INTX portfolio's summary (asked only for an alert on a summary field, and by a drill-down): apart from
`tui.venues.intx`, so that a refresh without one, and `--once`, never build the class (a dataclass costs ~0.5 ms
to build, issue 24)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tui.money import AmountError, parse_amount
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.intx import SUMMARY_AMOUNTS, SUMMARY_FLAGS, _shape


@dataclass(frozen=True, slots=True)
class PortfolioSummary:
    """Portfolio-level collateral and margin, exact, with `None` for what the venue did not send."""

    amounts: Mapping[str, Decimal | None]
    flags: Mapping[str, bool | None]

    def as_record(self) -> dict[str, str | bool | None]:
        record: dict[str, str | bool | None] = {
            name: None if value is None else format(value, "f") for name, value in self.amounts.items()
        }
        record.update(self.flags)
        return record


def parse_summary(item: Any) -> PortfolioSummary:
    if not isinstance(item, Mapping):
        raise _shape("summary", "an object")
    try:
        amounts = {name: parse_amount(item.get(name)) for name in SUMMARY_AMOUNTS}
    except AmountError as exc:
        raise VenueError(ErrorKind.BAD_RESPONSE, f"summary: {exc}") from None
    flags = {name: item[name] if isinstance(item.get(name), bool) else None for name in SUMMARY_FLAGS}
    return PortfolioSummary(amounts, flags)
