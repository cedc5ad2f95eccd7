"""What an alert rule may say, as the config reads it: its kinds and the fields it may name (the rule itself is
`tui.monitor.rule.Rule`).

Kept apart from `tui.monitor.alerts` (what evaluates rules, and the totals it reads) so that reading a
config, which every command does, loads none of that: `--once` never evaluates a rule, and builds the `Rule`
class only when the config has an [[alert]] (a dataclass costs ~0.5 ms to build, issue 24).
"""

from __future__ import annotations

TOTALS = "totals"
SUMMARY = "summary."  # a rule's field "summary.in_liquidation" is about an account as a whole
RULE_KINDS = ("below", "above", "change", "is")
BALANCE_VALUES = ("usd_value", "loan_usd_value")  # a balance's worth (the loan's, at INTX)
SCOPE_VALUES = ("usd_total", "usd_loans", "usd_net")  # a venue's (or an account's, or the firm's) worth


def span(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
