"""The venues balance-tui knows. Adding one: a module with a client and an adapter, and a line in KINDS."""

from __future__ import annotations

import re
from dataclasses import dataclass

KRAKEN_AMOUNTS = ("balance", "hold_trade", "available")
# INTX ids are opaque: real accounts show "9mnk39ap-5-23" and "0-0-1", the docs numbers, the API also
# takes UUIDs. Anything that is one safe path segment is accepted, in the config and on the wire.
INTX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
INTX_AMOUNTS = (
    "quantity",
    "hold",
    "hold_available_for_collateral",
    "transfer_hold",
    "collateral_value",
    "max_withdraw_amount",
    "loan",
    "loan_collateral_requirement",
    "pledged_collateral_quantity",
    "loan_initial_margin_contribution",
    "collateral_backed_overdraft_loan",
    "user_requested_loan",
    "unreconciled_amount",
    "max_undelegate_amount",
)

INTX_SUMMARY_AMOUNTS = (
    "collateral",
    "balance",
    "buying_power",
    "unrealized_pnl",
    "unrealized_pnl_percent",
    "position_notional",
    "open_position_notional",
    "pending_fees",
    "borrow",
    "accrued_interest",
    "rolling_debt",
    "loan_collateral_requirement",
    "portfolio_initial_margin",
    "portfolio_current_margin",
    "portfolio_maintenance_margin",
    "portfolio_close_out_margin",
    "portfolio_initial_margin_notional",
    "portfolio_current_margin_notional",
    "portfolio_maintenance_margin_notional",
    "portfolio_close_out_margin_notional",
    "margin_override",
    "lock_up_initial_margin",
    "position_offset_notional",
)
INTX_SUMMARY_FLAGS = ("in_liquidation",)


@dataclass(frozen=True, slots=True)
class VenueKind:
    """What balance-tui knows of a kind of venue: its config keys, its accounts' ids, its amount fields."""

    kind: str
    label: str  # the default pane name
    default_base_url: str
    accounts_key: str  # the config key that lists accounts
    account_word: str  # "vault", "portfolio"
    account_pattern: re.Pattern[str]
    account_hint: str
    secrets: tuple[str, ...]
    quantity: str  # the balance field that says how much of the asset the account holds
    amounts: tuple[str, ...]  # every amount field of a balance, in the venue's order
    summary_amounts: tuple[str, ...] = ()  # amounts of an account as a whole (INTX portfolio summary)
    summary_flags: tuple[str, ...] = ()  # yes/no facts about an account as a whole

    @property
    def summary_fields(self) -> tuple[str, ...]:
        return self.summary_amounts + self.summary_flags


KINDS: dict[str, VenueKind] = {
    "kraken-custody": VenueKind(
        "kraken-custody",
        "Kraken custody",
        "https://api.kraken.com",
        "vaults",
        "vault",
        re.compile(r"^V[A-Z2-7]{12}[ACEGIKMOQSUWY246]$"),
        "V followed by 13 characters of A-Z and 2-7",
        ("api_key", "api_secret"),
        "balance",
        KRAKEN_AMOUNTS,
    ),
    "coinbase-intx": VenueKind(
        "coinbase-intx",
        "Coinbase INTX",
        "https://api.international.coinbase.com",
        "portfolios",
        "portfolio",
        INTX_ID,
        "the portfolio_id INTX shows, such as 9mnk39ap-5-23, or its UUID",
        ("api_key", "api_secret", "passphrase"),
        "quantity",
        INTX_AMOUNTS,
        INTX_SUMMARY_AMOUNTS,
        INTX_SUMMARY_FLAGS,
    ),
}
