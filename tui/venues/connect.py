"""Build a venue client from its config section and loaded secrets."""

from __future__ import annotations

import httpx

from tui.credentials import Secret
from tui.venues.base import VenueClient
from tui.venues.intx import IntxClient
from tui.venues.kraken import KrakenCustodyClient


def connect(
    kind: str, client: httpx.AsyncClient, secrets: dict[str, Secret], *, keep_nonces: bool = True
) -> VenueClient:
    """`keep_nonces`: each key's ledger (Kraken's last nonce, what either venue counts) is kept on disk and
    shared with every balance-tui process on this machine (False for the demo's throwaway keys)."""
    if kind == "kraken-custody":
        return KrakenCustodyClient(client, secrets["api_key"], secrets["api_secret"], keep_nonces=keep_nonces)
    if kind == "coinbase-intx":
        return IntxClient(client, secrets["api_key"], secrets["api_secret"], secrets["passphrase"], shared=keep_nonces)
    raise ValueError(f"unknown venue kind {kind!r}")
