"""What Kraken's GetCustodyVault says of a vault (a drill-down asks it): apart from `tui.venues.kraken`, so
that a refresh, and `--once`, never build these classes (a dataclass costs ~0.5 ms to build, issue 24)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tui.money import AmountError, parse_amount, total
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.kraken import _shape


@dataclass(frozen=True, slots=True)
class VaultAsset:
    """One of GetCustodyVault's `asset_details`: the venue's USD price and values, exact; None if not sent."""

    asset: str
    usd_price: Decimal | None
    quantity: Decimal | None  # total_balance.quantity
    usd_value: Decimal | None  # total_balance.current_usd_value
    available_quantity: Decimal | None
    available_usd_value: Decimal | None


@dataclass(frozen=True, slots=True)
class VaultDetails:
    """What GetCustodyVault says of a vault: each asset's worth, and the vault's own totals."""

    assets: Mapping[str, VaultAsset]
    balance_fiat: Decimal | None = None
    available_balance_fiat: Decimal | None = None
    status: str | None = None

    def share(self, asset: str) -> tuple[Decimal, Decimal] | None:
        """(this asset's USD value, the sum over the vault's assets), or None when either is unknown."""
        values = [a.usd_value for a in self.assets.values()]
        mine = self.assets.get(asset)
        if mine is None or mine.usd_value is None or any(v is None for v in values):
            return None
        whole = total(v for v in values if v is not None)
        return (mine.usd_value, whole) if whole else None


def parse_vault(result: Any) -> VaultDetails:
    """GetCustodyVault's result, as the docs' example shows it; unknown fields are ignored."""
    if not isinstance(result, Mapping):
        raise _shape("GetCustodyVault", "an object")
    details = result.get("asset_details") or []
    if not isinstance(details, list):
        raise _shape("GetCustodyVault", "a list of asset_details")
    assets: dict[str, VaultAsset] = {}
    try:
        for item in details:
            if not isinstance(item, Mapping) or not isinstance(item.get("asset"), str):
                raise _shape("GetCustodyVault", "asset_details naming their asset")
            total, available = _nested(item, "total_balance"), _nested(item, "available_balance")
            assets[item["asset"]] = VaultAsset(
                item["asset"],
                parse_amount(item.get("current_usd_price")),
                parse_amount(total.get("quantity")),
                parse_amount(total.get("current_usd_value")),
                parse_amount(available.get("quantity")),
                parse_amount(available.get("current_usd_value")),
            )
        return VaultDetails(
            assets,
            parse_amount(result.get("balance_fiat")),
            parse_amount(result.get("available_balance_fiat")),
            result["status"] if isinstance(result.get("status"), str) else None,
        )
    except AmountError as exc:
        raise VenueError(ErrorKind.BAD_RESPONSE, f"GetCustodyVault: {exc}") from None


def _nested(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = item.get(key)
    return value if isinstance(value, Mapping) else {}
