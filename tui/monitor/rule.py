"""An alert rule, as the config states it (`tui.monitor.rules` holds the words it may use)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tui.money import fmt
from tui.monitor.rules import SUMMARY, span


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    field: str
    kind: str  # "below", "above", "change" or "is"
    threshold: Decimal  # unused by "is"
    percent: bool = False  # change rules: threshold is % of the earlier value (any in force within the window)
    window: float = 300.0  # change rules: seconds
    venue: str | None = None  # a venue name, TOTALS, or None for every venue
    account: str | None = None  # an account id or name
    asset: str | None = None  # canonical name or the venue's spelling
    command: str | None = None
    expected: bool | None = None  # "is" rules: the yes/no that raises the alert

    def wants_summary(self, venue: str) -> bool:
        return self.field.startswith(SUMMARY) and self.venue in (None, venue)

    def describe(self, hide: str | None = None) -> str:
        """The rule in words; `hide`: the mark shown instead of its threshold (the screen's mask)."""
        if self.kind == "is":
            return f"{self.field} is {'true' if self.expected else 'false'}"
        threshold = hide if hide is not None else fmt(self.threshold)
        if self.kind == "change":
            amount = f"{threshold}{'%' if self.percent else ''}"
            return f"{self.field} moves more than {amount} within {span(self.window)}"
        return f"{self.field} {self.kind} {threshold}"
