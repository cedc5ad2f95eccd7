"""Facts written out by hand from the seed pages (../shared/seeds/), so tests compare against them
rather than against the code's own lists."""

from __future__ import annotations

# GET /api/v1/portfolios/{portfolio}/balances/{asset}: every field of a balance, in the page's order.
INTX_BALANCE_FIELDS = (
    "asset_id",
    "asset_name",
    "asset_uuid",
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
INTX_BALANCE_AMOUNTS = INTX_BALANCE_FIELDS[3:]  # after the three labels, every field is an amount

# POST /0/private/GetCustodyBalance: each asset's two amounts.
KRAKEN_BALANCE_FIELDS = ("balance", "hold_trade")
