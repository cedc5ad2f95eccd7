"""What moved between two snapshots of a venue, balance by balance and field by field.

One tracker feeds every sink that records or streams changes (`--watch`, the history database), so
"changed" means the same thing everywhere: a field's digits differ from the last good answer.
Accounts whose latest refresh failed are skipped: their balances are the kept last-good answer, and a
balance missing from a failed answer has not disappeared.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tui.money import Balance
from tui.snapshot.model import AccountSnapshot, VenueSnapshot

NEW, CHANGED, REMOVED = "new", "changed", "removed"


@dataclass(frozen=True, slots=True)
class Change:
    at: float  # wall time of the answer that showed it
    venue: str
    kind: str
    account_id: str
    account_name: str
    asset: str
    event: str  # NEW, CHANGED or REMOVED
    fields: tuple[str, ...]  # the amount fields whose digits changed (all of them when new or removed)
    balance: Balance | None  # the balance now; None once removed
    previous: Balance | None  # the balance before; None when new


class ChangeTracker:
    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], Balance] = {}

    def diff(self, venue: VenueSnapshot) -> list[Change]:
        changes: list[Change] = []
        for account in venue.accounts:
            if account.error is None and account.fetched_at is not None:
                changes.extend(self._account(venue, account, account.fetched_at))
        return changes

    def _account(self, venue: VenueSnapshot, account: AccountSnapshot, at: float) -> list[Change]:
        def change(asset: str, event: str, fields: tuple[str, ...], now: Balance | None, was: Balance | None) -> Change:
            return Change(at, venue.name, venue.kind, account.id, account.name, asset, event, fields, now, was)

        changes = []
        current = {b.asset: b for b in account.balances}
        for asset, balance in current.items():
            key = (venue.name, account.id, asset)
            before = self._seen.get(key)
            if before is None:
                changes.append(change(asset, NEW, tuple(balance.amounts), balance, None))
            elif not before.identical(balance):
                changes.append(change(asset, CHANGED, _moved(before, balance), balance, before))
            self._seen[key] = balance
        for key in [k for k in self._seen if k[:2] == (venue.name, account.id) and k[2] not in current]:
            before = self._seen.pop(key)
            changes.append(change(key[2], REMOVED, tuple(before.amounts), None, before))
        return changes


def _moved(before: Balance, after: Balance) -> tuple[str, ...]:
    names = list(after.amounts) + [n for n in before.amounts if n not in after.amounts]
    return tuple(n for n in names if not _same(before.amounts.get(n), after.amounts.get(n))) or tuple(after.amounts)


def _same(a: Decimal | None, b: Decimal | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.compare_total(b) == 0
