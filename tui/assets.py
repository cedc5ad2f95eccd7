"""One name per asset across venues: Kraken's legacy spellings (XBT, XXBT, ZUSD…) mapped to the
names INTX and everyone else use, overridable from the config's `[assets]` table."""

from __future__ import annotations

from collections.abc import Mapping

KRAKEN_SPELLINGS: dict[str, str] = {
    "XBT": "BTC",
    "XXBT": "BTC",
    "XBT.M": "BTC",
    "XDG": "DOGE",
    "XXDG": "DOGE",
    "XETH": "ETH",
    "XETC": "ETC",
    "XLTC": "LTC",
    "XXRP": "XRP",
    "XXLM": "XLM",
    "XXMR": "XMR",
    "XZEC": "ZEC",
    "XMLN": "MLN",
    "XREP": "REP",
    "ZUSD": "USD",
    "ZEUR": "EUR",
    "ZGBP": "GBP",
    "ZCAD": "CAD",
    "ZJPY": "JPY",
    "ZAUD": "AUD",
    "ZCHF": "CHF",
}


class AssetNames:
    """`canonical("XXBT")` is "BTC". The config's entries win; mapping a name to itself keeps it apart."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self.mapping = {**KRAKEN_SPELLINGS, **(overrides or {})}
        self.overrides = dict(overrides or {})

    def canonical(self, asset: str) -> str:
        return self.mapping.get(asset, asset)

    def spellings(self) -> dict[str, list[str]]:
        """Each canonical name with the spellings that map to it (for the totals view's legend)."""
        out: dict[str, list[str]] = {}
        for spelled, name in self.mapping.items():
            if spelled != name:
                out.setdefault(name, []).append(spelled)
        return out
