"""What the real venues send, as other projects recorded it (tests/recordings/, copied verbatim from
../shared/reference/fixtures/): every payload goes through our parsers digit for digit, and the
simulator serves the same shapes, field for field and JSON type for JSON type.

The expected digits come from the recordings' own text (numbers read as their literal text), never from
our parsers or from the simulator.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import intx_for
from tests.seed import INTX_BALANCE_FIELDS
from tui.config import parse
from tui.sim import Simulator
from tui.venues import intx, kraken

RECORDINGS = Path(__file__).parent / "recordings"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "fixtures"

# The id forms the recordings show (portfolio_id "9mnk39ap-5-23", "1ap32qsc-1-0"; asset_id "t6umqck-1-0").
RECORDED_ID = re.compile(r"^[0-9a-z]{7,8}-[0-9]+-[0-9]+$")


def literal(name: str) -> Any:
    """A recording with every number as its literal text: the digits the venue sent, untouched."""
    return json.loads((RECORDINGS / name).read_text(), parse_float=str, parse_int=str)


def shape(value: Any) -> Any:
    """The JSON types of a payload: objects as {key: shape}, lists by their first item, scalars by type."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def recorded_shape(name: str) -> Any:
    return shape(json.loads((RECORDINGS / name).read_text()))


def test_the_recordings_are_the_shared_ones_unchanged() -> None:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside this checkout")
    ours = {p.relative_to(RECORDINGS): p.read_bytes() for p in RECORDINGS.rglob("*") if p.is_file()}
    theirs = {p.relative_to(SHARED): p.read_bytes() for p in SHARED.rglob("*") if p.is_file()}
    assert ours == theirs


# --- our parsers, digit for digit --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "nautilus/http_get_portfolios_balances.json",
        "nautilus/http_get_portfolios_balances_BTC.json",
        "ccxt/fetch_balance.json",
        "intx_docs_balance_BTC.json",
    ],
)
def test_intx_balances_parse_digit_for_digit(name: str) -> None:
    raw = (RECORDINGS / name).read_bytes()
    decoded = json.loads(raw, parse_float=Decimal)
    sent = literal(name)
    items = sent if isinstance(sent, list) else [sent]
    parsed = [intx.parse_balance(item, "balance") for item in (decoded if isinstance(decoded, list) else [decoded])]
    for item, balance in zip(items, parsed, strict=True):
        record = balance.as_record()
        for field in INTX_BALANCE_FIELDS:
            assert record[field] == item.get(field), f"{name}: {field}"  # None where the venue sent nothing
        assert balance.asset == item["asset_name"]


def test_intx_summary_parses_digit_for_digit() -> None:
    name = "nautilus/http_get_portfolios_summary.json"
    sent = literal(name)
    summary = intx.parse_summary(json.loads((RECORDINGS / name).read_text(), parse_float=Decimal))
    record = summary.as_record()
    for field, text in sent.items():
        if field == "in_liquidation":
            assert record[field] is (text is True)
        else:
            assert record.get(field) == text, field  # margins are JSON numbers: their digits kept too
    assert set(sent) - {"in_liquidation"} <= set(intx.SUMMARY_AMOUNTS)


@pytest.mark.parametrize("name", ["nautilus/http_get_portfolios.json", "ccxt/fetch_accounts.json"])
def test_intx_portfolios_keep_their_recorded_ids(name: str) -> None:
    sent = json.loads((RECORDINGS / name).read_text())
    accounts = intx.parse_portfolios(sent)
    assert [a.id for a in accounts] == [p["portfolio_id"] for p in sent]
    assert [a.name for a in accounts] == [p["name"] for p in sent]
    for account, item in zip(accounts, sent, strict=True):
        assert account.details["portfolio_uuid"] == item["portfolio_uuid"]
        assert account.details["user_uuid"] == item["user_uuid"]
        assert account.details["is_default"] == str(item["is_default"]).lower()


def test_kraken_vault_list_as_documented() -> None:
    name = "kraken_docs/ListCustodyVaults.json"
    sent = json.loads((RECORDINGS / name).read_text())
    vaults, total = kraken.vault_page(sent)
    assert total == sent["total"] == 1
    assert [(v.id, v.name, v.details["status"]) for v in vaults] == [("VW44KPQC4C62K6", "My Vault 1", "created")]


def test_kraken_vault_details_as_documented() -> None:
    name = "kraken_docs/GetCustodyVault.json"
    sent = literal(name)["result"]
    details = kraken.parse_vault(json.loads((RECORDINGS / name).read_text())["result"])
    [(asset, item)] = [(a["asset"], a) for a in sent["asset_details"]]
    parsed = details.assets[asset]
    assert str(parsed.usd_price) == item["current_usd_price"] == "7.00"
    assert str(parsed.quantity) == item["total_balance"]["quantity"]
    assert str(parsed.usd_value) == item["total_balance"]["current_usd_value"]
    assert str(parsed.available_quantity) == item["available_balance"]["quantity"]
    assert str(parsed.available_usd_value) == item["available_balance"]["current_usd_value"]
    assert str(details.balance_fiat) == sent["balance_fiat"]
    assert details.share("BTC") == (parsed.usd_value, parsed.usd_value)  # the only asset: all of the vault


# --- the config takes the ids real accounts have ------------------------------------------------------


def test_the_config_takes_every_recorded_portfolio_id() -> None:
    ids = [
        p["portfolio_id"]
        for name in ("nautilus/http_get_portfolios.json", "ccxt/fetch_accounts.json")
        for p in json.loads((RECORDINGS / name).read_text())
    ]
    ids += [json.loads((RECORDINGS / "ccxt/fetch_accounts.json").read_text())[0]["portfolio_uuid"]]
    ids += ["5189861793641175"]  # the docs' numeric form
    config = parse(
        '[[venue]]\nkind = "coinbase-intx"\napi_key = { env = "K" }\napi_secret = { env = "S" }\n'
        f'passphrase = {{ env = "P" }}\nportfolios = {json.dumps(ids)}\n'
    )
    assert config.venues[0].accounts == tuple(ids)


# --- the simulator serves what the venues send ---------------------------------------------------------


def get(sim: Simulator, path: str) -> Any:
    """A signed GET to the simulator's INTX, decoded without touching the numbers' types."""
    stamp = str(int(time.time()))
    key = base64.b64decode(sim.intx_keys.api_secret)
    sign = base64.b64encode(hmac.new(key, f"{stamp}GET{path}".encode(), hashlib.sha256).digest()).decode()
    headers = {
        "CB-ACCESS-KEY": sim.intx_keys.api_key,
        "CB-ACCESS-PASSPHRASE": sim.intx_keys.passphrase or "",
        "CB-ACCESS-SIGN": sign,
        "CB-ACCESS-TIMESTAMP": stamp,
    }
    response = httpx.get(sim.url + path, headers=headers)
    assert response.status_code == 200, response.text
    return json.loads(response.content)


def test_the_simulated_portfolio_list_has_the_recorded_fields_and_id_forms(sim: Simulator) -> None:
    served = get(sim, "/api/v1/portfolios")
    assert [shape(p) for p in served] == [recorded_shape("nautilus/http_get_portfolios.json")[0]] * len(served)
    for portfolio in served:
        assert RECORDED_ID.match(portfolio["portfolio_id"]), portfolio["portfolio_id"]
        assert portfolio["user_uuid"] != portfolio["portfolio_uuid"]


def test_the_simulated_balances_have_the_recorded_fields(sim: Simulator) -> None:
    older, newer = (
        recorded_shape("nautilus/http_get_portfolios_balances.json")[0],
        recorded_shape("intx_docs_balance_BTC.json"),
    )
    assert list(newer) == list(INTX_BALANCE_FIELDS)
    for pid in sim.market.portfolios:
        for balance in get(sim, f"/api/v1/portfolios/{pid}/balances"):
            # amounts as strings, as real traffic sends them; the two newest fields only on some accounts
            assert shape(balance) in (older, {k: "str" for k in INTX_BALANCE_FIELDS}), balance
            one = get(sim, f"/api/v1/portfolios/{pid}/balances/{balance['asset_id']}")
            assert one == balance
    ids = [b["asset_id"] for b in get(sim, f"/api/v1/portfolios/{next(iter(sim.market.portfolios))}/balances")]
    assert all(RECORDED_ID.match(i) or i == "0-0-1" for i in ids), ids


def test_the_simulated_summary_has_the_recorded_fields_and_types(sim: Simulator) -> None:
    pid = next(iter(sim.market.portfolios))
    assert shape(get(sim, f"/api/v1/portfolios/{pid}/summary")) == recorded_shape(
        "nautilus/http_get_portfolios_summary.json"
    )


def post(sim: Simulator, method: str, query: str = "") -> Any:
    """A signed custody call to the simulator's Kraken, decoded without touching the numbers' types."""
    path = f"/0/private/{method}" + (f"?{query}" if query else "")
    nonce = int(time.time() * 1000)  # the first call on this simulator's key: any current nonce will do
    body = json.dumps({"nonce": nonce}, separators=(",", ":")).encode()
    inner = hashlib.sha256(str(nonce).encode() + body).digest()
    key = base64.b64decode(sim.kraken_keys.api_secret)
    sign = base64.b64encode(hmac.new(key, path.encode() + inner, hashlib.sha512).digest()).decode()
    headers = {"API-Key": sim.kraken_keys.api_key, "API-Sign": sign, "Content-Type": "application/json"}
    response = httpx.post(sim.url + path, content=body, headers=headers)
    assert response.status_code == 200, response.text
    return json.loads(response.content)


def test_the_simulated_vault_calls_have_the_documented_shapes(sim: Simulator) -> None:
    listed = post(sim, "ListCustodyVaults")
    vault = post(sim, "GetCustodyVault", f"id={listed['result'][0]['id']}")
    documented_list = recorded_shape("kraken_docs/ListCustodyVaults.json")
    assert list(shape(listed)) == list(documented_list)  # result first, start and total beside it
    assert shape(listed) == documented_list
    assert shape(vault) == recorded_shape("kraken_docs/GetCustodyVault.json")
    assert {v["status"] for v in listed["result"]} <= {"pending", "created", "failed", "disabled"}


async def test_our_clients_read_the_recorded_id_forms_on_the_wire(sim: Simulator, web: httpx.AsyncClient) -> None:
    client = intx_for(sim, web)
    [portfolio, *_] = await client.portfolios()
    assert RECORDED_ID.match(portfolio.id)
    sim.market.set_intx(portfolio.id, "USDC", quantity="997.5000000000000", hold="0")
    by_id = await client.balance(portfolio.id, "0-0-1")  # USDC's asset_id in every recording
    assert by_id.asset == "USDC" and by_id.as_record()["quantity"] == "997.5000000000000"
