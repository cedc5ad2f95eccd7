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
from tui.venues import intx, intx_summary, kraken, kraken_vault

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


README = Path("README.txt")


def test_the_recordings_are_the_shared_ones_unchanged() -> None:
    """Every shared recording is here byte for byte; the README adds to the shared one and names every file
    the shared ones lack (with its source)."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside this checkout")
    ours = {p.relative_to(RECORDINGS): p.read_bytes() for p in RECORDINGS.rglob("*") if p.is_file()}
    theirs = {p.relative_to(SHARED): p.read_bytes() for p in SHARED.rglob("*") if p.is_file()}
    assert {k: ours.get(k) for k in theirs if k != README} == {k: v for k, v in theirs.items() if k != README}
    assert ours[README].startswith(theirs[README])
    added = ours[README][len(theirs[README]) :].decode()
    for extra in sorted(set(ours) - set(theirs)):
        assert extra.as_posix() in added or extra.name in added, f"{extra} is not named in the README"


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


@pytest.mark.parametrize(
    "name", ["nautilus/http_get_portfolios_summary.json", "nautilus/http_get_portfolios_detail.json"]
)
def test_intx_summary_parses_digit_for_digit(name: str) -> None:
    detail = name.endswith("_detail.json")
    sent = literal(name)["summary"] if detail else literal(name)
    decoded = json.loads((RECORDINGS / name).read_text(), parse_float=Decimal)
    summary = intx_summary.parse_summary(decoded["summary"] if detail else decoded)
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
    details = kraken_vault.parse_vault(json.loads((RECORDINGS / name).read_text())["result"])
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


def test_the_simulated_portfolio_list_has_the_recorded_id_forms(sim: Simulator) -> None:
    """Its fields: test_a_portfolio_alone_is_the_listed_one_with_the_recorded_fields_or_the_sdks_newer_two."""
    served = get(sim, "/api/v1/portfolios")
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
    # the fiat figures written as the docs' example writes them ("1000.0000": four places, trailing zeros kept)
    documented = recording("kraken_docs/GetCustodyVault.json")["result"]
    for field in ("balance_fiat", "available_balance_fiat"):
        places = len(documented[field].partition(".")[2])
        for served_vault in (*listed["result"], vault["result"]):
            whole, point, decimals = served_vault[field].partition(".")
            assert point and len(decimals) == places and whole.lstrip("-").isdigit(), (field, served_vault[field])


async def test_our_clients_read_the_recorded_id_forms_on_the_wire(sim: Simulator, web: httpx.AsyncClient) -> None:
    client = intx_for(sim, web)
    [portfolio, *_] = await client.portfolios()
    assert RECORDED_ID.match(portfolio.id)
    sim.market.set_intx(portfolio.id, "USDC", quantity="997.5000000000000", hold="0")
    by_id = await client.balance(portfolio.id, "0-0-1")  # USDC's asset_id in every recording
    assert by_id.asset == "USDC" and by_id.as_record()["quantity"] == "997.5000000000000"


# --- the endpoints other clients need before they ask for a balance (issue 22) --------------------------------


def served(sim: Simulator, path: str, *, as_text: bool = False) -> Any:
    """An unsigned GET (public market data), decoded keeping JSON's types, or with every number as its literal
    text (`as_text`, for the digits' form)."""
    response = httpx.get(sim.url + path)
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=str, parse_int=str) if as_text else json.loads(response.content)


def signed_literal(sim: Simulator, path: str) -> Any:
    """A signed INTX GET, decoded with every number as its literal text (for the digits' form)."""
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
    return json.loads(response.content, parse_float=str, parse_int=str)


def recording(name: str) -> Any:
    return json.loads((RECORDINGS / name).read_text())


def with_newer(recorded: dict[str, Any], added: dict[str, tuple[str | None, Any]]) -> dict[str, Any]:
    """A recorded shape with fields added, each after the field named (None: at the end), keeping the order."""
    out: dict[str, Any] = {}
    for key, value in recorded.items():
        out[key] = value
        out |= {name: kind for name, (after, kind) in added.items() if after == key}
    return out | {name: kind for name, (after, kind) in added.items() if after is None}


NEWER_PORTFOLIO = {
    "margin_call_enabled": ("position_offsets_enabled", "bool"),
    "disable_overdraft_protection": (None, "bool"),
}
NEWER_SUMMARY = {
    "unrealized_pnl_notional": ("in_liquidation", "number"),
    "total_allocated_initial_margin_notional": (None, "number"),
}


def test_a_portfolio_alone_is_the_listed_one_with_the_recorded_fields_or_the_sdks_newer_two(sim: Simulator) -> None:
    """GET /portfolios/{portfolio} (by id or UUID) answers the object the list holds. Each has the recorded
    list's fields, or those and the two newer flags: `disable_overdraft_protection` typed as the docs' example
    types it, `margin_call_enabled` a bool as Coinbase's SDK models it (no recording shows it)."""
    recorded = recorded_shape("nautilus/http_get_portfolios.json")[0]
    newer = with_newer(recorded, NEWER_PORTFOLIO)
    documented = recorded_shape("intx_docs/get_portfolio.json")
    assert newer["disable_overdraft_protection"] == documented["disable_overdraft_protection"]
    listed = get(sim, "/api/v1/portfolios")
    shapes = [shape(p) for p in listed]
    assert recorded in shapes and newer in shapes
    for portfolio, found in zip(listed, shapes, strict=True):
        expected = recorded if found == recorded else newer
        assert found == expected and list(found) == list(expected)  # the fields, their types and their order
        assert get(sim, f"/api/v1/portfolios/{portfolio['portfolio_id']}") == portfolio
        assert get(sim, f"/api/v1/portfolios/{portfolio['portfolio_uuid']}") == portfolio


def test_the_simulated_summaries_and_details_have_the_recorded_fields_or_the_sdks_newer_two(sim: Simulator) -> None:
    recorded = recorded_shape("nautilus/http_get_portfolios_summary.json")
    newer = with_newer(recorded, NEWER_SUMMARY)
    detail = recorded_shape("nautilus/http_get_portfolios_detail.json")
    assert detail["summary"] == recorded
    seen = []
    for pid in sim.market.portfolios:
        summary = get(sim, f"/api/v1/portfolios/{pid}/summary")
        found = shape(summary)
        expected = recorded if found == recorded else newer
        assert found == expected and list(found) == list(expected)
        seen.append(found == newer)
        served_detail = get(sim, f"/api/v1/portfolios/{pid}/detail")
        assert list(served_detail) == list(detail) and served_detail["summary"] == summary
        assert served_detail["positions"] == [] and served_detail["balances"] == get(
            sim, f"/api/v1/portfolios/{pid}/balances"
        )
    assert set(seen) == {True, False}


def recorded_zeros(names: list[str], fields: tuple[str, ...]) -> dict[str, set[str]]:
    """How the recordings write nothing in each field ("0", "0.0"), from their literal text."""
    zeros: dict[str, set[str]] = {}
    for name in names:
        sent = literal(name)
        for item in sent if isinstance(sent, list) else [sent]:
            for field in fields:
                text = item.get(field)
                if isinstance(text, str) and Decimal(text) == 0:
                    zeros.setdefault(field, set()).add(text)
    return zeros


def trimmed(text: str) -> bool:
    """No trailing zero after the point but a lone ".0" ("997.5", "500000.0", "0")."""
    fraction = text.partition(".")[2]
    return fraction in ("", "0") or not fraction.endswith("0")


BALANCES = [
    "nautilus/http_get_portfolios_balances.json",
    "nautilus/http_get_portfolios_balances_BTC.json",
    "ccxt/fetch_balance.json",
]


def recorded_places(notionals: set[str]) -> dict[tuple[str, str], set[int]]:
    """(asset, quantity field) -> the places the recordings give it when not zero ("997.5000000000000": 13)."""
    places: dict[tuple[str, str], set[int]] = {}
    for name in BALANCES:
        sent = literal(name)
        for item in sent if isinstance(sent, list) else [sent]:
            for field in INTX_BALANCE_FIELDS[3:]:
                if field in item and field not in notionals and Decimal(item[field]) != 0:
                    places.setdefault((item["asset_name"], field), set()).add(len(item[field].partition(".")[2]))
    return places


def test_the_simulated_amounts_are_written_as_the_recordings_write_them(sim: Simulator) -> None:
    """Zeros as the recordings spell them field by field ("0" for a quantity, "0.0" for a notional); notionals
    trimmed as recorded ("997.5", "500000.0"); quantities with the places the recordings give that asset. The
    summary's strings trimmed ("997.5", "0"), its numbers 0 when nothing, with 16 places where recorded so."""
    zeros = recorded_zeros(BALANCES, INTX_BALANCE_FIELDS[3:])
    assert zeros["quantity"] == {"0"} and zeros["collateral_value"] == {"0.0"}
    notionals = {f for f, spelled in zeros.items() if spelled == {"0.0"}}
    places = recorded_places(notionals)
    assert places[("USDC", "quantity")] == {13, 10}  # nautilus "997.5000000000000", ccxt "500000.0000000000"
    pid, *_, last = list(sim.market.portfolios)
    sim.market.set_intx(pid, "USDC", quantity="997.5000000000000", hold="0", loan="0")
    for asset in list(sim.market.portfolios[last].holdings):  # a portfolio whose summary sums two notionals
        sim.market.remove_intx(last, asset)
    for asset in ("USDC", "BTC"):
        sim.market.set_intx(last, asset, quantity="0.5000000000000", hold="0", collateral_value="0.5", loan="0")
    assert signed_literal(sim, f"/api/v1/portfolios/{last}/summary")["collateral"] == "1"  # not "1.0"
    counted = {"zero": 0, "notional": 0, "places": 0}
    for pid in sim.market.portfolios:
        for balance in signed_literal(sim, f"/api/v1/portfolios/{pid}/balances"):
            for field, text in balance.items():
                if field in INTX_BALANCE_FIELDS[:3]:
                    continue
                if Decimal(text) == 0:
                    # a field no recording shows at zero (the two newest) is written as the quantities are
                    assert text in zeros.get(field, zeros["quantity"]), (balance["asset_name"], field, text)
                    counted["zero"] += 1
                elif field in notionals:
                    assert trimmed(text), (field, text)
                    counted["notional"] += 1
                elif (balance["asset_name"], field) in places:
                    assert len(text.partition(".")[2]) in places[balance["asset_name"], field], (field, text)
                    counted["places"] += 1
        recorded = literal("nautilus/http_get_portfolios_summary.json")
        for field, text in signed_literal(sim, f"/api/v1/portfolios/{pid}/summary").items():
            if isinstance(text, bool) or field not in recorded:
                continue
            if Decimal(text) == 0:
                assert text == "0", (field, text)
            elif len(recorded[field].partition(".")[2]) == 16:
                assert len(text.partition(".")[2]) == 16, (field, text)
            else:
                assert "." not in text or not text.endswith("0"), (field, text)
    assert min(counted.values()) > 3, counted


def test_the_simulated_asset_and_instrument_lists_have_the_recorded_fields(sim: Simulator) -> None:
    """Public (no key): each asset shaped as the recorded asset of its kind (USDC, which can be borrowed, or
    any other), its UUID the balances' and its id this endpoint's own ("1" for USDC, as recorded); each
    instrument shaped as the recorded one of its type, field order and quote included, its assets listed."""
    usdc, other = (shape(a) for a in recording("nautilus/http_get_assets.json"))
    assets = served(sim, "/api/v1/assets")
    assert {a["asset_name"] for a in assets} == set(sim.market.intx_specs)
    for asset in assets:
        expected = usdc if asset["asset_name"] == "USDC" else other
        assert shape(asset) == expected and list(asset) == list(expected), asset
        assert asset["asset_uuid"] == sim.market.asset_ids[asset["asset_name"]][1]
        assert asset["asset_id"].isdigit() and (asset["asset_id"] == "1") == (asset["asset_name"] == "USDC")
    recorded = {i["type"]: i for i in recording("nautilus/http_get_instruments.json")}
    instruments = served(sim, "/api/v1/instruments")
    assert {i["type"] for i in instruments} == {"SPOT", "PERP"}
    ids = {a["asset_id"] for a in assets}
    for instrument in instruments:
        theirs = recorded[instrument["type"]]
        assert shape(instrument) == shape(theirs) and list(instrument) == list(theirs), instrument["symbol"]
        assert list(instrument["quote"]) == list(theirs["quote"])
        assert {instrument["base_asset_id"], instrument["quote_asset_id"]} <= ids
    for item in served(sim, "/api/v1/instruments", as_text=True):
        assert all(trimmed(v) for k, v in item["quote"].items() if k.endswith("_price")), item["quote"]
    assert sim.count("intx", "assets", "ok") == 1 and sim.count("intx", "instruments", "ok") == 2


def test_the_simulated_kraken_market_data_has_the_documented_shapes(sim: Simulator) -> None:
    """Assets, Time and SystemStatus as the docs' examples; Ticker entries as the recorded one; every pair
    AssetPairs lists is quoted by Ticker, by name or altname, one at a time or all at once (no pair named), and
    none of them is a dark pool's (".d": Kraken has listed none for years)."""
    assets = served(sim, "/0/public/Assets")["result"]
    documented = recording("kraken_docs/Assets.json")["result"]
    entry = shape(documented["XXBT"])
    assert all(shape(a) == entry and list(a) == list(entry) for a in assets.values())
    for code in ("XXBT", "ZUSD", "ZEUR"):
        assert {k: assets[code][k] for k in ("altname", "decimals")} == {
            k: documented[code][k] for k in ("altname", "decimals")
        }
    pairs = served(sim, "/0/public/AssetPairs")["result"]
    assert not [name for name in pairs if name.endswith(".d")]
    assert {c for p in pairs.values() for c in (p["base"], p["quote"])} <= set(assets)
    everything = served(sim, "/0/public/Ticker")
    assert everything["error"] == [] and set(everything["result"]) == set(pairs)
    ticker_entry = shape(recording("ccxt/kraken_fetchTicker_XBTUSDT.json")["result"]["XBTUSDT"])
    assert all(shape(t) == ticker_entry for t in everything["result"].values())
    for name, pair in pairs.items():
        for asked in (name, pair["altname"]):
            assert served(sim, f"/0/public/Ticker?pair={asked}") == {
                "error": [],
                "result": {name: everything["result"][name]},
            }
    assert served(sim, f"/0/public/Ticker?pair={','.join(pairs)}") == everything
    for method in ("Time", "SystemStatus"):
        assert shape(served(sim, f"/0/public/{method}")) == recorded_shape(f"kraken_docs/{method}.json")
    clock = served(sim, "/0/public/Time")["result"]
    assert abs(clock["unixtime"] - time.time()) < 60
    assert time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime(clock["unixtime"])) == clock["rfc1123"]
    assert served(sim, "/0/public/SystemStatus")["result"]["status"] == "online"


def test_some_vaults_spell_bitcoin_as_the_custody_docs_do_and_every_spelling_has_a_price(sim: Simulator) -> None:
    """The custody docs' example (GetCustodyVault) names "BTC" where the spot API says XBT: both reach a client,
    and the vault's own USD figures price both alike."""
    documented = recording("kraken_docs/GetCustodyVault.json")["result"]["asset_details"][0]["asset"]
    assert documented == "BTC"
    spellings = {a for v in sim.market.vaults.values() for a in v.holdings if a in ("XBT", "BTC")}
    assert spellings == {"XBT", "BTC"}
    for vault_id, vault in sim.market.vaults.items():
        for asset in {"XBT", "BTC"} & set(vault.holdings):
            details = post(sim, "GetCustodyVault", f"id={vault_id}")["result"]["asset_details"]
            [item] = [d for d in details if d["asset"] == asset]
            assert Decimal(item["current_usd_price"]) == sim.market.prices["XBT"], (vault.name, asset)
