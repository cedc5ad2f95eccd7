"""Clients we did not write, against the simulator: Coinbase's official INTX SDK (intx-sdk-py) and
python-kraken-sdk's generic signed request. They are the closest thing to the real venues we can run:
if the simulator drifts from what the venues send, or its checks from what they check, these fail.

Each reads the same accounts as our clients, and the digits must agree.
"""

from __future__ import annotations

import asyncio
import base64
import time
from decimal import Decimal
from typing import Any

import pytest
from intx_sdk.client import Client as IntxSdkClient
from intx_sdk.credentials import Credentials
from intx_sdk.services.portfolios.get_balance_for_portfolio_asset import GetBalanceForPortfolioAssetRequest
from intx_sdk.services.portfolios.get_portfolio_summary import GetPortfolioSummaryRequest
from intx_sdk.services.portfolios.list_portfolio_balances import ListPortfolioBalancesRequest
from intx_sdk.services.portfolios.list_portfolios import ListPortfoliosRequest
from intx_sdk.services.portfolios.service import PortfoliosService
from kraken.spot import SpotClient

from tests.conftest import intx_for, kraken_for
from tests.sdk import IntegerNonceSpotClient
from tests.seed import INTX_BALANCE_AMOUNTS
from tui.credentials import Secret
from tui.sim import Simulator
from tui.venues import http
from tui.venues.kraken import KrakenCustodyClient

SDK_SECRET = base64.b64encode(b"python-kraken-sdk's own key" * 2).decode()


def coinbase_sdk(sim: Simulator) -> PortfoliosService:
    keys = sim.intx_keys
    credentials = Credentials(access_key=keys.api_key, passphrase=keys.passphrase or "", signing_key=keys.api_secret)
    return PortfoliosService(IntxSdkClient(credentials, base_url=f"{sim.url}/api/v1"))


async def ours_intx(sim: Simulator) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    async with http.new_client(sim.url) as web:
        client = intx_for(sim, web)
        portfolios = await client.portfolios()
        balances = {p.id: await client.balances(p.id) for p in portfolios}
        summaries = {p.id: await client.summary(p.id) for p in portfolios}
    return portfolios, balances, summaries


def same_digits(sdk_value: object, ours: str | None) -> bool:
    """The SDK keeps strings as sent and turns JSON numbers into floats: compare text, or value."""
    if ours is None:
        return sdk_value is None
    if isinstance(sdk_value, str):
        return sdk_value == ours
    return isinstance(sdk_value, (int, float)) and Decimal(repr(sdk_value)) == Decimal(ours)


def test_coinbase_sdk_reads_portfolios_balances_and_summaries_with_our_digits(sim: Simulator) -> None:
    pid = next(iter(sim.market.portfolios))
    sim.market.set_intx(pid, "BTC", quantity="100.000000000000000001", hold="0.5", loan="0.000000000000000001")
    sdk = coinbase_sdk(sim)
    portfolios, balances, summaries = asyncio.run(ours_intx(sim))

    listed = sdk.list_portfolios(ListPortfoliosRequest()).portfolios
    assert [(p.portfolio_id, p.portfolio_uuid, p.name) for p in listed] == [
        (p.id, p.details["portfolio_uuid"], p.name) for p in portfolios
    ]
    for portfolio in listed:
        theirs = sdk.list_portfolio_balances(ListPortfolioBalancesRequest(portfolio.portfolio_id)).balances
        mine = {b.asset: b.as_record() for b in balances[portfolio.portfolio_id]}
        assert sorted(b.asset_name for b in theirs) == sorted(mine)
        for balance in theirs:
            record = mine[balance.asset_name]
            assert (balance.asset_id, balance.asset_uuid) == (record["asset_id"], record["asset_uuid"])
            for field in INTX_BALANCE_AMOUNTS:
                assert same_digits(getattr(balance, field), record[field]), (balance.asset_name, field)
            one = sdk.get_balance_for_portfolio_asset(
                GetBalanceForPortfolioAssetRequest(portfolio.portfolio_id, balance.asset_id)
            ).balance
            assert one == balance
        summary = sdk.get_portfolio_summary(GetPortfolioSummaryRequest(portfolio.portfolio_uuid)).portfolio_summary
        record = summaries[portfolio.portfolio_id].as_record()
        for field in ("collateral", "balance", "buying_power", "borrow", "portfolio_initial_margin", "margin_override"):
            assert same_digits(getattr(summary, field), record[field]), field  # type: ignore[arg-type]
        assert summary.in_liquidation is record["in_liquidation"]
    btc = next(b for b in balances[pid] if b.asset == "BTC")
    assert btc.as_record()["quantity"] == "100.000000000000000001"


def test_kraken_sdk_custody_calls_are_accepted_with_our_balances(sim: Simulator) -> None:
    sim.kraken_rate_limit = False
    sim.add_kraken_key("sdk-key", SDK_SECRET)  # a key of its own: nonces are per key
    sdk = IntegerNonceSpotClient(key="sdk-key", secret=SDK_SECRET, url=sim.url)
    vault = next(iter(sim.market.vaults))
    sim.market.set_kraken(vault, "XBT", "12345678901234567890.123456789", "0.000000000000000001")

    listed = sdk.request("POST", "/0/private/ListCustodyVaults", params={}, do_json=True)
    details = sdk.request("POST", f"/0/private/GetCustodyVault?id={vault}", params={}, do_json=True)
    balances = sdk.request("POST", "/0/private/GetCustodyBalance", params={"vault_id": vault}, do_json=True)
    assert sim.count("kraken", verdict="ok") == 3 and sim.count("kraken") == 3

    async def ours() -> tuple[Any, Any, Any]:
        async with http.new_client(sim.url) as web:
            client = kraken_for(sim, web)
            return await client.list_vaults(), await client.vault(vault), await client.balances(vault)

    our_vaults, our_details, our_balances = asyncio.run(ours())
    assert [v["id"] for v in listed["result"]] == [v.id for v in our_vaults] == list(sim.market.vaults)
    assert listed["total"] == len(our_vaults)
    assert {d["asset"]: d["total_balance"]["quantity"] for d in details["result"]["asset_details"]} == {
        a: str(v.quantity) for a, v in our_details.assets.items()
    }
    assert {a: (v["balance"], v["hold_trade"]) for a, v in balances.items()} == {
        b.asset: (b.as_record()["balance"], b.as_record()["hold_trade"]) for b in our_balances
    }
    assert balances["XBT"]["balance"] == "12345678901234567890.123456789"


def test_kraken_sdk_with_its_own_string_nonce_is_refused_as_the_schema_says(sim: Simulator) -> None:
    """What the real venue does with a nonce sent as a JSON string is not documented; the schema says int64.
    The simulator refuses it, and the benchmark against the SDK therefore uses the integer nonce above."""
    sdk = SpotClient(key=sim.kraken_keys.api_key, secret=sim.kraken_keys.api_secret, url=sim.url)
    answer = sdk.request("POST", "/0/private/ListCustodyVaults", params={}, do_json=True)
    assert answer["errors"] and answer["errors"][0]["errorClass"] == "EAPI"
    assert sim.count("kraken", verdict="bad-nonce") == 1


@pytest.mark.parametrize("numbers", [False, True], ids=["strings", "json-numbers"])
def test_coinbase_sdk_accepts_both_number_forms(sim: Simulator, numbers: bool) -> None:
    sim.intx_numbers = numbers
    pid = next(iter(sim.market.portfolios))
    theirs = coinbase_sdk(sim).list_portfolio_balances(ListPortfolioBalancesRequest(pid)).balances
    assert len(theirs) == len(sim.market.portfolios[pid].holdings)
    assert all(isinstance(b.quantity, float if numbers else str) for b in theirs)


def test_our_kraken_client_and_the_sdk_share_the_nonce_scale(sim: Simulator) -> None:
    """Milliseconds both: after balance-tui used a key, a tool on the documented convention still can."""

    async def one_call() -> None:
        async with http.new_client(sim.url) as web:
            client = KrakenCustodyClient(web, Secret(sim.kraken_keys.api_key), Secret(sim.kraken_keys.api_secret))
            await client.balances(next(iter(sim.market.vaults)))

    asyncio.run(one_call())  # the client as the engine builds it: its nonces kept in the state directory
    ours = sim.nonce_log()[-1]
    assert abs(ours - time.time() * 1000) < 60_000  # milliseconds since the epoch, not ns or 1e-8 s
    while int(time.time() * 1000) <= ours:  # the documented convention's next nonce is the next millisecond
        pass
    sdk = IntegerNonceSpotClient(key=sim.kraken_keys.api_key, secret=sim.kraken_keys.api_secret, url=sim.url)
    assert sdk.request("POST", "/0/private/ListCustodyVaults", params={}, do_json=True)["result"]
