"""Clients we did not write, against the simulator: Coinbase's official INTX SDK (intx-sdk-py),
python-kraken-sdk (its generic signed request, and its Market client) and ccxt (`kraken`,
`coinbaseinternational`). They are the closest thing to the real venues we can run: if the simulator drifts
from what the venues send, or its checks from what they check, these fail.

Each reads the same accounts or prices as our clients, and the digits must agree: exactly where the client
keeps the venue's strings (the SDKs, and ccxt's `info`), at float precision where it turns them into floats
(ccxt's unified fields, intx-sdk-py's JSON numbers), compared then with the float nearest our exact decimal.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest
from intx_sdk.client import Client as IntxSdkClient
from intx_sdk.credentials import Credentials
from intx_sdk.services.portfolios.get_balance_for_portfolio_asset import GetBalanceForPortfolioAssetRequest
from intx_sdk.services.portfolios.get_portfolio import GetPortfolioRequest
from intx_sdk.services.portfolios.get_portfolio_summary import GetPortfolioSummaryRequest
from intx_sdk.services.portfolios.list_portfolio_balances import ListPortfolioBalancesRequest
from intx_sdk.services.portfolios.list_portfolios import ListPortfoliosRequest
from intx_sdk.services.portfolios.service import PortfoliosService
from kraken.spot import Market, SpotClient

from tests.conftest import intx_for, kraken_for, run_cli
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


# --- before a balance: markets, currencies, tickers, a portfolio (issue 22) -----------------------------------


def once(config: Path) -> dict[str, Any]:
    """What `balance-tui --once --format json` prints for the simulator the config points at."""
    done = run_cli("--once", "--format", "json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["prices"]["error"] is None and out["prices"]["usd_prices"]
    return out


def balances_of(out: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(account id, balance record) for every balance of the venues of this kind in a --once document."""
    return [(a["id"], b) for v in out["venues"] if v["kind"] == kind for a in v["accounts"] for b in a["balances"]]


def ccxt_kraken(sim: Simulator) -> Any:
    """ccxt's kraken pointed at the simulator (its `urls['api']`, as a user points it at a proxy)."""
    exchange = ccxt.kraken({"enableRateLimit": False, "timeout": 30_000})
    exchange.urls["api"] = {**exchange.urls["api"], "public": sim.url, "private": sim.url}
    return exchange


def ccxt_intx(sim: Simulator) -> Any:
    keys = sim.intx_keys
    config = {"apiKey": keys.api_key, "secret": keys.api_secret, "password": keys.passphrase, "enableRateLimit": False}
    exchange = ccxt.coinbaseinternational({**config, "timeout": 30_000})
    exchange.urls["api"] = {**exchange.urls["api"], "rest": f"{sim.url}/api"}
    return exchange


def same_float(theirs: object, ours: str | Decimal) -> bool:
    """ccxt's float against our exact decimal: equal at float precision (the float nearest our digits)."""
    return isinstance(theirs, (int, float)) and float(theirs) == float(Decimal(ours))


def test_ccxt_kraken_loads_markets_and_reads_every_ticker_with_our_prices(sim: Simulator, sim_config: Path) -> None:
    """load_markets (Assets, AssetPairs), fetch_ticker('BTC/USD'), fetch_tickers() (Ticker with no pair),
    fetch_time and fetch_status: each price ccxt reports is the one --once valued with: exactly in its `info`,
    at float precision in `last`. Both vault spellings of bitcoin (XBT, the docs' BTC) are priced by it."""
    out = once(sim_config)
    prices = out["prices"]["usd_prices"]
    exchange = ccxt_kraken(sim)
    markets = exchange.load_markets()
    assert markets["BTC/USD"]["id"] == prices["BTC"]["pair"] == "XXBTZUSD"
    assert exchange.currencies["BTC"]["id"] == "XXBT" and exchange.currencies["BTC"]["precision"] == 1e-10

    ticker = exchange.fetch_ticker("BTC/USD")
    assert ticker["info"]["c"][0] == prices["BTC"]["usd"] and same_float(ticker["last"], prices["BTC"]["usd"])
    kraken_btc = [b for _, b in balances_of(out, "kraken-custody") if b["asset"] in ("XBT", "BTC")]
    assert {b["asset"] for b in kraken_btc} == {"XBT", "BTC"}
    assert {b["usd_price"] for b in kraken_btc} == {ticker["info"]["c"][0]}

    tickers = {exchange.market(symbol)["id"]: t for symbol, t in exchange.fetch_tickers().items()}
    assert set(tickers) == {m["id"] for m in markets.values()}  # every listed market quoted, none refused
    for asset, price in prices.items():
        assert tickers[price["pair"]]["info"]["c"][0] == price["usd"], asset
        assert same_float(tickers[price["pair"]]["last"], price["usd"]), asset
    for _, balance in balances_of(out, "kraken-custody") + balances_of(out, "coinbase-intx"):
        if balance["usd_price"] is not None and balance["asset"] not in ("USD", "ZUSD"):
            assert balance["usd_price"] in {t["info"]["c"][0] for t in tickers.values()}, balance["asset"]
    assert abs(exchange.fetch_time() / 1000 - time.time()) < 60
    assert exchange.fetch_status()["status"] == "ok"
    assert sim.count("prices", verdict="refused") == 0


def test_python_kraken_sdk_market_client_reads_assets_status_and_every_ticker(sim: Simulator, sim_config: Path) -> None:
    """get_assets, get_system_status, get_ticker() (no pair): the SDK keeps Kraken's strings, so each last trade
    is the very text --once valued with."""
    out = once(sim_config)
    market = Market(url=sim.url)
    assets = market.get_assets()
    assert assets["XXBT"]["altname"] == "XBT" and assets["ZUSD"]["altname"] == "USD"
    assert market.get_system_status()["status"] == "online"
    tickers = market.get_ticker()
    pairs = market.get_asset_pairs()
    assert set(tickers) == set(pairs) and {p["base"] for p in pairs.values()} <= set(assets)
    for asset, price in out["prices"]["usd_prices"].items():
        assert tickers[price["pair"]]["c"][0] == price["usd"], asset


def test_ccxt_coinbaseinternational_loads_markets_and_reads_every_balance_with_our_digits(
    sim: Simulator, sim_config: Path
) -> None:
    """load_markets (public /assets and /instruments, no key), then fetch_balance for the default portfolio
    (found through /portfolios) and for each other: ccxt's `info` holds the venue's strings, every field of every
    balance as --once prints it; its unified total, used and free equal ours at float precision."""
    out = once(sim_config)
    exchange = ccxt_intx(sim)
    exchange.load_markets()
    ours = {(pid, b["asset"]): b for pid, b in balances_of(out, "coinbase-intx")}
    assert {asset for _, asset in ours} <= set(exchange.currencies)
    assert {"BTC/USDC", "BTC/USDC:USDC", "ETH/USDC:USDC"} <= set(exchange.markets)
    default, *others = list(sim.market.portfolios)
    for pid in [default, *others]:
        balance = exchange.fetch_balance() if pid == default else exchange.fetch_balance({"portfolio": pid})
        raw = {item["asset_name"]: item for item in balance["info"]}
        assert set(raw) == {asset for p, asset in ours if p == pid}
        for asset, item in raw.items():
            record = ours[(pid, asset)]
            assert {k: record[k] for k in item} == item, (pid, asset)  # every field, digit for digit
            quantity, hold = Decimal(record["quantity"]), Decimal(record["hold"])
            assert same_float(balance[asset]["total"], quantity) and same_float(balance[asset]["used"], hold)
            assert same_float(balance[asset]["free"], quantity - hold)
    assert sim.count("intx", "assets", "ok") == sim.count("intx", "instruments", "ok") == 1
    assert sim.count("intx", verdict="bad-signature") == sim.count("intx", verdict="bad-key") == 0


def test_coinbase_sdk_gets_each_portfolio_and_its_summary_with_our_digits(sim: Simulator, sim_config: Path) -> None:
    """get_portfolio (by id and by UUID) builds Coinbase's own Portfolio model, the newer flags included, for the
    portfolios --once shows (--once reads no summary: the summary's every field is compared with our client's,
    strings exactly, the SDK's floats at float precision, the newer notionals where they are sent)."""
    out = once(sim_config)
    sdk = coinbase_sdk(sim)
    [intx_out] = [v for v in out["venues"] if v["kind"] == "coinbase-intx"]
    _, _, summaries = asyncio.run(ours_intx(sim))
    newer = []
    for account in intx_out["accounts"]:
        portfolio = sdk.get_portfolio(GetPortfolioRequest(account["id"])).portfolio
        assert (portfolio.portfolio_id, portfolio.name) == (account["id"], account["name"])
        assert sdk.get_portfolio(GetPortfolioRequest(portfolio.portfolio_uuid)).portfolio == portfolio
        newer.append(sim.market.portfolios[account["id"]].newer)
        summary = sdk.get_portfolio_summary(GetPortfolioSummaryRequest(account["id"])).portfolio_summary
        for field, ours in summaries[account["id"]].as_record().items():
            theirs = getattr(summary, field)
            if isinstance(ours, bool) or isinstance(theirs, str):
                assert theirs == ours, field
            else:
                assert ours is not None and same_float(theirs, ours), field
        assert (summary.total_allocated_initial_margin_notional is not None) == newer[-1]
        assert (summary.unrealized_pnl_notional is not None) == newer[-1]
    assert set(newer) == {True, False}
