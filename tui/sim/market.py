"""The simulator's venues' holdings: plausible, deterministic by seed, moving a step per tick."""

from __future__ import annotations

import decimal
import random
import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal

_CTX = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_LAST = "ACEGIKMOQSUWY246"
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
VAULT_STATUSES = ("created", "pending", "failed", "disabled")  # the custody docs' enum; most vaults are "created"
# Whether the venue answers GetCustodyBalance for a failed or disabled vault is not documented: we do.


@dataclass(frozen=True, slots=True)
class AssetSpec:
    kraken: str  # Kraken's spelling
    intx: str  # INTX's spelling
    price: Decimal  # USD
    kraken_dp: int
    intx_dp: int
    scale: Decimal  # a typical holding


ASSETS: tuple[AssetSpec, ...] = (
    AssetSpec("XBT", "BTC", Decimal("97250.10"), 10, 10, Decimal("12")),
    AssetSpec("ETH", "ETH", Decimal("3412.55"), 10, 10, Decimal("180")),
    AssetSpec("USDC", "USDC", Decimal("1.0000"), 8, 13, Decimal("2500000")),
    AssetSpec("ZUSD", "USD", Decimal("1"), 4, 4, Decimal("1500000")),
    AssetSpec("SOL", "SOL", Decimal("212.31"), 8, 9, Decimal("4000")),
    AssetSpec("XRP", "XRP", Decimal("2.3120"), 8, 6, Decimal("900000")),
    AssetSpec("DOT", "DOT", Decimal("7.412"), 10, 10, Decimal("50000")),
    AssetSpec("ADA", "ADA", Decimal("0.9832"), 8, 6, Decimal("750000")),
    AssetSpec("LTC", "LTC", Decimal("104.77"), 10, 8, Decimal("3000")),
    AssetSpec("LINK", "LINK", Decimal("23.15"), 10, 8, Decimal("20000")),
    AssetSpec("AVAX", "AVAX", Decimal("41.06"), 10, 8, Decimal("9000")),
    AssetSpec("XDG", "DOGE", Decimal("0.38211"), 8, 8, Decimal("3000000")),
)
# Kraken's spot markets that price the named assets in USD: pair name, base asset code, altname. Kraken's
# codes differ from the custody spellings (XXBT, XXDG...), as on the real venue. USD needs no market;
# the synthetic benchmark assets have none (they are unpriced).
USD_MARKETS: dict[str, tuple[str, str, str]] = {
    "XBT": ("XXBTZUSD", "XXBT", "XBTUSD"),
    "ETH": ("XETHZUSD", "XETH", "ETHUSD"),
    "USDC": ("USDCUSD", "USDC", "USDCUSD"),
    "SOL": ("SOLUSD", "SOL", "SOLUSD"),
    "XRP": ("XXRPZUSD", "XXRP", "XRPUSD"),
    "DOT": ("DOTUSD", "DOT", "DOTUSD"),
    "ADA": ("ADAUSD", "ADA", "ADAUSD"),
    "LTC": ("XLTCZUSD", "XLTC", "LTCUSD"),
    "LINK": ("LINKUSD", "LINK", "LINKUSD"),
    "AVAX": ("AVAXUSD", "AVAX", "AVAXUSD"),
    "XDG": ("XDGUSD", "XXDG", "XDGUSD"),
}
# The custody docs' example (GetCustodyVault) spells bitcoin "BTC" where the spot API says "XBT": vaults with
# an odd index spell it that way, so both spellings reach a client (one asset, one price, one total).
DOCS_SPELLINGS = {"XBT": "BTC"}
KRAKEN_ALIASES = {docs: ours for ours, docs in DOCS_SPELLINGS.items()}
PRICE_DECIMALS = 5  # Ticker's prices, as Kraken writes them ("97250.10000")
VAULT_NAMES = ("Treasury", "Cold storage", "Operations", "Client omnibus", "Staking", "Reserve", "OTC", "Settlement")
PORTFOLIO_NAMES = ("Main", "Hedging", "Market making", "Basis", "Funding", "Arbitrage")


def asset_spec(index: int) -> AssetSpec:
    """The named assets, then synthetic ones for large benchmark worlds."""
    if index < len(ASSETS):
        return ASSETS[index]
    name = f"TK{index:03d}"
    return AssetSpec(name, name, Decimal(index % 97 + 1) / 4, 8, 8, Decimal(1000 + index))


def vault_id(rng: random.Random) -> str:
    return "V" + "".join(rng.choice(_B32) for _ in range(12)) + rng.choice(_LAST)


def intx_portfolio_id(rng: random.Random) -> str:
    """The form real accounts show (recordings: "9mnk39ap-5-23", "1ap32qsc-1-0"); the docs' examples show
    numbers. What the two trailing numbers mean is not documented: we draw small ones."""
    return "".join(rng.choice(_B36) for _ in range(8)) + f"-{rng.randint(1, 9)}-{rng.randint(0, 30)}"


def intx_asset_id(rng: random.Random, name: str) -> str:
    """USDC is "0-0-1" in every recording; other assets look like "t6umqck-1-0" (recorded BTC)."""
    if name == "USDC":
        return "0-0-1"
    return "".join(rng.choice(_B36) for _ in range(7)) + "-1-0"


def quantize(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), context=_CTX)


def intx_quantity(value: Decimal) -> Decimal:
    """An INTX quantity as the recordings write one: the asset's places ("997.5000000000000"), a zero as "0"."""
    return Decimal(0) if value == 0 else value


def intx_value(value: Decimal) -> Decimal:
    """An INTX notional (collateral_value, loan_collateral_requirement...) as the recordings write one: trailing
    zeros trimmed, one place kept ("997.5", "500000.0", "0.0")."""
    text = format(value.normalize(_CTX), "f")
    return Decimal(text if "." in text else text + ".0")


def intx_public_id(rng: random.Random, name: str) -> str:
    """The asset id GET /assets shows (recordings: USDC "1", BTC "118059611751202816"); not the one balances show."""
    return "1" if name == "USDC" else str(118059611751202816 + rng.randrange(1, 10**12) * 1024)


@dataclass
class Vault:
    id: str
    name: str
    holdings: dict[str, dict[str, Decimal]]  # asset -> balance, hold_trade
    status: str = "created"
    created_at: int = 1710877421  # the docs' example: seconds since the epoch, sent as a string


@dataclass
class Portfolio:
    id: str  # portfolio_id, in the form real accounts show ("9mnk39ap-5-23")
    uuid: str
    user_uuid: str  # the owner's, not the portfolio's (the recordings show two different UUIDs)
    name: str
    holdings: dict[str, dict[str, Decimal | None]]  # INTX asset name -> the 14 amounts
    in_liquidation: bool = False
    newer: bool = False  # sends the fields Coinbase's SDK models beyond the recorded ones (margin_call_enabled...)


class Market:
    """Every vault and portfolio the simulator serves. Thread-safe; `tick()` moves balances a step."""

    def __init__(
        self,
        seed: int = 7,
        vaults: int = 3,
        portfolios: int = 3,
        assets: int = 12,
        assets_per_account: int = 8,
        activity: float = 0.3,
    ) -> None:
        """`activity`: the chance that a holding moves on each tick."""
        self.seed = seed
        self.activity = activity
        self.lock = threading.RLock()
        self.ticks = 0
        self._rng = random.Random(seed)
        rng = self._rng
        self.specs = {spec.kraken: spec for spec in (asset_spec(i) for i in range(assets))}
        self._price_rng = random.Random(seed ^ 0x5EED)  # apart from the balances' walk: seeds keep their worlds
        self.prices = {spec.kraken: spec.price for spec in self.specs.values() if spec.kraken in USD_MARKETS}
        self.intx_specs = {spec.intx: spec for spec in self.specs.values()}
        self.asset_ids = {
            spec.intx: (intx_asset_id(rng, spec.intx), str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            for spec in self.specs.values()
        }
        ids_rng = random.Random(seed ^ 0x1D5)  # its own draws: the public ids leave the seeds' worlds as they were
        self.public_ids = {name: intx_public_id(ids_rng, name) for name in self.intx_specs}
        per_account = min(assets_per_account, assets)
        self.vaults: dict[str, Vault] = {}
        for i in range(vaults):
            vid = vault_id(rng)
            name = VAULT_NAMES[i] if i < len(VAULT_NAMES) else f"Vault {i + 1}"
            chosen = rng.sample(sorted(self.specs), per_account)
            status = "created" if i < 8 or rng.random() < 0.9 else rng.choice(VAULT_STATUSES[1:])
            spelled = DOCS_SPELLINGS if i % 2 else {}
            holdings = {spelled.get(a, a): self._new_kraken(self.specs[a]) for a in chosen}
            self.vaults[vid] = Vault(vid, name, holdings, status, 1710877421 + i * 86400)
        self.portfolios: dict[str, Portfolio] = {}
        user_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for i in range(portfolios):
            pid = intx_portfolio_id(rng)
            puuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            name = PORTFOLIO_NAMES[i] if i < len(PORTFOLIO_NAMES) else f"Portfolio {i + 1}"
            chosen = rng.sample(sorted(self.intx_specs), per_account)
            newer_fields = i % 2 == 0
            self.portfolios[pid] = Portfolio(
                pid,
                puuid,
                user_uuid,
                name,
                {a: self._new_intx(self.intx_specs[a], newer_fields) for a in chosen},
                newer=newer_fields,
            )

    def _amount(self, spec: AssetSpec, dp: int, low: float = 0.2, high: float = 1.8) -> Decimal:
        factor = Decimal(str(round(self._rng.uniform(low, high), 6)))
        return quantize(spec.scale * factor, dp)

    def _new_kraken(self, spec: AssetSpec) -> dict[str, Decimal]:
        balance = self._amount(spec, spec.kraken_dp)
        hold = quantize(balance * Decimal(self._rng.choice((0, 0, 0, 1, 5, 12))) / 100, spec.kraken_dp)
        return {"balance": balance, "hold_trade": hold}

    def _new_intx(self, spec: AssetSpec, newer_fields: bool) -> dict[str, Decimal | None]:
        dp = spec.intx_dp
        quantity = self._amount(spec, dp)
        loan = self._amount(spec, dp, 0.01, 0.1) if self._rng.random() < 0.25 else Decimal(0)
        holding: dict[str, Decimal | None] = {"quantity": quantity, "loan": loan}
        holding["hold"] = intx_quantity(quantize(quantity * Decimal(self._rng.choice((0, 2, 5, 10))) / 100, dp))
        holding["transfer_hold"] = Decimal(0)
        holding["unreconciled_amount"] = Decimal(0) if newer_fields else None
        holding["max_undelegate_amount"] = quantity if newer_fields else None
        self._derive(spec, holding)
        return holding

    @staticmethod
    def _derive(spec: AssetSpec, h: dict[str, Decimal | None]) -> None:
        """The INTX fields that follow from quantity, hold and loan, written as the recordings write them."""
        dp = spec.intx_dp
        q, hold, loan = h["quantity"] or Decimal(0), h["hold"] or Decimal(0), h["loan"] or Decimal(0)
        transfer = h["transfer_hold"] or Decimal(0)
        free = max(Decimal(0), q - hold - transfer)

        def amount(value: Decimal) -> Decimal:
            return intx_quantity(quantize(value, dp))

        def notional(value: Decimal) -> Decimal:
            return intx_value(quantize(value, 4))

        h["hold_available_for_collateral"] = amount(hold / 2)
        h["collateral_value"] = notional(free * spec.price * Decimal("0.9"))
        h["max_withdraw_amount"] = amount(max(Decimal(0), free - loan))
        h["loan_collateral_requirement"] = notional(loan * spec.price * Decimal("0.1"))
        h["pledged_collateral_quantity"] = amount(free / 4)
        h["loan_initial_margin_contribution"] = notional(loan * spec.price * Decimal("0.05"))
        h["collateral_backed_overdraft_loan"] = amount(loan if spec.intx == "USDC" else Decimal(0))
        h["user_requested_loan"] = amount(Decimal(0) if spec.intx == "USDC" else loan)

    def tick(self) -> None:
        """One step of the random walk: small moves, now and then a deposit or a new loan."""
        with self.lock:
            self.ticks += 1
            rng = self._rng
            for vault in self.vaults.values():
                for asset, h in vault.holdings.items():
                    spec = self.kraken_spec(asset)
                    if spec is not None and rng.random() < self.activity:  # assets put in by hand stay put
                        h["balance"] = self._step(h["balance"], spec.kraken_dp)
                        h["hold_trade"] = min(h["hold_trade"], h["balance"])
            for portfolio in self.portfolios.values():
                for asset, holding in portfolio.holdings.items():
                    spec = self.intx_specs.get(asset)
                    if spec is not None and rng.random() < self.activity:
                        holding["quantity"] = intx_quantity(self._step(holding["quantity"] or Decimal(0), spec.intx_dp))
                        if rng.random() < 0.05:
                            holding["loan"] = self._amount(spec, spec.intx_dp, 0.01, 0.1)
                        self._derive(spec, holding)
            self._move_prices()

    def _move_prices(self) -> None:
        """Each market's last trade moves a little; USDC stays within a few hundredths of a cent of $1."""
        rng = self._price_rng
        for asset, price in self.prices.items():
            if asset == "USDC":
                self.prices[asset] = Decimal(1) + Decimal(rng.randint(-3, 3)) / 10000
            else:
                move = Decimal(str(round(rng.gauss(0, 0.001), 6)))
                self.prices[asset] = quantize(price * (1 + move), PRICE_DECIMALS)

    def _step(self, value: Decimal, dp: int) -> Decimal:
        rng = self._rng
        move = Decimal(str(round(rng.gauss(0, 0.002), 6)))
        if rng.random() < 0.03:
            move += Decimal(str(round(rng.uniform(0.05, 0.2), 4)))
        return quantize(max(Decimal(0), value * (1 + move)), dp)

    def set_kraken(self, vault: str, asset: str, balance: Decimal | str, hold_trade: Decimal | str = "0") -> None:
        with self.lock:
            self.vaults[vault].holdings[asset] = {"balance": Decimal(balance), "hold_trade": Decimal(hold_trade)}

    def set_intx(self, portfolio: str, asset: str, **fields: Decimal | str | None) -> None:
        """Put exact values into a portfolio's asset (creating it with zeros where needed)."""
        with self.lock:
            holding = self.portfolios[portfolio].holdings.setdefault(asset, {})
            for name, value in fields.items():
                holding[name] = None if value is None else Decimal(value)

    def remove_kraken(self, vault: str, asset: str) -> None:
        with self.lock:
            self.vaults[vault].holdings.pop(asset, None)

    def remove_intx(self, portfolio: str, asset: str) -> None:
        with self.lock:
            self.portfolios[portfolio].holdings.pop(asset, None)

    def price(self, intx_asset: str) -> Decimal:
        """The asset's price now in USD, by its INTX name (0 for an asset the simulator does not know)."""
        spec = self.intx_specs.get(intx_asset)
        return self.kraken_price(spec.kraken) if spec is not None else Decimal(0)

    def kraken_spec(self, kraken_asset: str) -> AssetSpec | None:
        """The asset a custody spelling names ("XBT", or the docs' "BTC")."""
        return self.specs.get(KRAKEN_ALIASES.get(kraken_asset, kraken_asset))

    def kraken_price(self, kraken_asset: str) -> Decimal:
        """The asset's price now in USD, by its Kraken spelling: its market's last trade, else its list price."""
        kraken_asset = KRAKEN_ALIASES.get(kraken_asset, kraken_asset)
        with self.lock:
            if kraken_asset in self.prices:
                return self.prices[kraken_asset]
            spec = self.specs.get(kraken_asset)
            return spec.price if spec is not None else Decimal(0)

    def set_price(self, kraken_asset: str, price: Decimal | str) -> None:
        """Put an exact last trade price on an asset's USD market (creating the market if it had none)."""
        with self.lock:
            self.prices[kraken_asset] = Decimal(price)

    def find_portfolio(self, ref: str) -> Portfolio | None:
        with self.lock:
            return self.portfolios.get(ref) or next((p for p in self.portfolios.values() if p.uuid == ref), None)

    def find_intx_asset(self, portfolio: Portfolio, ref: str) -> str | None:
        if ref in portfolio.holdings:
            return ref
        for name, (asset_id, asset_uuid) in self.asset_ids.items():
            if ref in (asset_id, asset_uuid) and name in portfolio.holdings:
                return name
        return None
