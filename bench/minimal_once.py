"""The floor for `--once`'s start-to-exit: the same signed calls with httpx and nothing else (no config
checks, no engine, no valuation, no table), the answers parsed as Decimal and one line printed per balance.

    python bench/minimal_once.py CONFIG

Reads a simulator config of one Kraken and one INTX venue (what `startup` in bench/run.py writes).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
import tomllib
from decimal import Decimal

import httpx


def kraken_headers(venue: dict[str, str], path: str, nonce: int, body: bytes) -> dict[str, str]:
    digest = hashlib.sha256(str(nonce).encode() + body).digest()
    mac = hmac.new(base64.b64decode(venue["api_secret"]), path.encode() + digest, hashlib.sha512)
    sign = base64.b64encode(mac.digest()).decode()
    return {"API-Key": venue["api_key"], "API-Sign": sign, "Content-Type": "application/json"}


def intx_headers(venue: dict[str, str], path: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    mac = hmac.new(base64.b64decode(venue["api_secret"]), (timestamp + "GET" + path).encode(), hashlib.sha256)
    return {
        "CB-ACCESS-KEY": venue["api_key"],
        "CB-ACCESS-PASSPHRASE": venue["passphrase"],
        "CB-ACCESS-SIGN": base64.b64encode(mac.digest()).decode(),
        "CB-ACCESS-TIMESTAMP": timestamp,
    }


async def kraken(client: httpx.AsyncClient, venue: dict[str, str]) -> list[str]:
    async def call(method: str, params: dict[str, object]) -> object:
        path = f"/0/private/{method}"
        nonce = time.time_ns() // 1_000_000
        body = json.dumps({"nonce": nonce, **params}, separators=(",", ":")).encode()
        response = await client.post(
            venue["base_url"] + path, content=body, headers=kraken_headers(venue, path, nonce, body)
        )
        return json.loads(response.content, parse_float=Decimal)["result"]

    vaults = await call("ListCustodyVaults", {"pagination": {"limit": 1000, "offset": 0}})
    lines = []
    for vault in vaults:  # type: ignore[attr-defined]
        held = await call("GetCustodyBalance", {"vault_id": vault["id"]})
        lines += [f"{vault['id']} {asset} {amounts['balance']}" for asset, amounts in held.items()]  # type: ignore[attr-defined]
    return lines


async def intx(client: httpx.AsyncClient, venue: dict[str, str]) -> list[str]:
    async def get(path: str) -> object:
        response = await client.get(venue["base_url"] + path, headers=intx_headers(venue, path))
        return json.loads(response.content, parse_float=Decimal)

    portfolios = await get("/api/v1/portfolios")
    answers = await asyncio.gather(*(get(f"/api/v1/portfolios/{p['portfolio_id']}/balances") for p in portfolios))  # type: ignore[attr-defined]
    return [f"{b['asset_name']} {b['quantity']}" for answer in answers for b in answer]  # type: ignore[attr-defined]


async def main(path: str) -> None:
    with open(path, "rb") as f:
        config = tomllib.load(f)
    by_kind = {v["kind"]: v for v in config["venue"]}
    async with httpx.AsyncClient(timeout=10) as client:
        found = await asyncio.gather(kraken(client, by_kind["kraken-custody"]), intx(client, by_kind["coinbase-intx"]))
        prices = config["prices"]["base_url"]
        await client.get(prices + "/0/public/AssetPairs")
        await client.get(prices + "/0/public/Ticker", params={"pair": "XBTUSD,ETHUSD"})
    sys.stdout.write("\n".join(line for lines in found for line in lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
