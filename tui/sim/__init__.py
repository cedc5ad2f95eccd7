"""The embedded venue simulator: Kraken custody and INTX over real HTTP on 127.0.0.1.

with Simulator(seed=7) as sim:
    sim.faults.set("http-5xx", venue="intx")
    ... point clients at sim.url with sim.kraken_credentials / sim.intx_credentials ...
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from tui.sim.faults import Fault, FaultBoard, FaultKind, parse_fault_flag
from tui.sim.market import Market
from tui.sim.server import IntxKey, KrakenKey, VenueState, demo_secret, start_server

__all__ = ["Fault", "FaultBoard", "FaultKind", "Market", "Simulator", "parse_fault_flag"]


@dataclass(frozen=True, slots=True)
class DemoKeys:
    api_key: str
    api_secret: str
    passphrase: str | None = None


class Simulator:
    """Both venues, on one port. Start and stop it, or use it as a context manager."""

    def __init__(
        self,
        seed: int = 7,
        *,
        port: int = 0,
        tick_seconds: float = 0.0,
        vaults: int = 3,
        portfolios: int = 3,
        assets: int = 12,
        assets_per_account: int = 8,
        activity: float = 0.3,
    ) -> None:
        self.seed = seed
        self.port = port
        self.tick_seconds = tick_seconds
        self.market = Market(
            seed,
            vaults=vaults,
            portfolios=portfolios,
            assets=assets,
            assets_per_account=assets_per_account,
            activity=activity,
        )
        self.faults = FaultBoard(seed)
        self.state = VenueState(self.market, self.faults)
        self.kraken_keys = DemoKeys(f"demo-kraken-{seed}", demo_secret(seed, "kraken"))
        self.intx_keys = DemoKeys(f"demo-intx-{seed}", demo_secret(seed, "intx"), f"demo-pass-{seed}")
        self.add_kraken_key(self.kraken_keys.api_key, self.kraken_keys.api_secret)
        self.add_intx_key(self.intx_keys.api_key, self.intx_keys.api_secret, self.intx_keys.passphrase or "")
        self._server: Any = None
        self._threads: list[threading.Thread] = []

    # --- knobs --------------------------------------------------------------------------------

    def add_kraken_key(self, api_key: str, api_secret: str) -> None:
        self.state.kraken_keys[api_key] = KrakenKey(api_secret)

    def add_intx_key(self, api_key: str, api_secret: str, passphrase: str) -> None:
        self.state.intx_keys[api_key] = IntxKey(api_secret, passphrase)

    @property
    def kraken_rate_limit(self) -> bool:
        return self.state.kraken_rate_limit

    @kraken_rate_limit.setter
    def kraken_rate_limit(self, on: bool) -> None:
        self.state.kraken_rate_limit = on

    @property
    def intx_numbers(self) -> bool:
        """Send INTX amounts as JSON numbers (as the docs' examples) instead of strings (as real traffic)."""
        return self.state.intx_numbers

    @intx_numbers.setter
    def intx_numbers(self, on: bool) -> None:
        self.state.intx_numbers = on

    @property
    def kraken_numbers(self) -> bool:
        """Send Kraken amounts as JSON numbers (seen on other Kraken endpoints) instead of decimal strings."""
        return self.state.kraken_numbers

    @kraken_numbers.setter
    def kraken_numbers(self, on: bool) -> None:
        self.state.kraken_numbers = on

    @property
    def kraken_null_messages(self) -> bool:
        """Send Kraken error objects with `errorMessage: null` (the custody schema allows it)."""
        return self.state.kraken_null_messages

    @kraken_null_messages.setter
    def kraken_null_messages(self, on: bool) -> None:
        self.state.kraken_null_messages = on

    def set_kraken_page_cap(self, vaults: int) -> None:
        """At most this many vaults per ListCustodyVaults page, whatever the client asks for."""
        self.state.kraken_page_cap = vaults

    def set_intx_rate_limit(self, per_second: int) -> None:
        self.state.intx_rate_limit = per_second

    def set_kraken_nonce_window(self, window: int) -> None:
        self.state.kraken_nonce_window = window

    def stats(self) -> Counter[tuple[str, str, str]]:
        """Requests served, by (venue, endpoint, verdict)."""
        with self.state.lock:
            return Counter(self.state.stats)

    def count(self, venue: str | None = None, endpoint: str | None = None, verdict: str | None = None) -> int:
        return sum(
            n
            for (v, e, d), n in self.stats().items()
            if venue in (None, v) and endpoint in (None, e) and verdict in (None, d)
        )

    def signatures(self) -> list[str]:
        """The last thousand signatures presented (API-Sign, CB-ACCESS-SIGN), oldest first."""
        with self.state.lock:
            return list(self.state.signatures)

    def nonce_log(self) -> list[int]:
        """Kraken nonces accepted, in arrival order."""
        with self.state.lock:
            return list(self.state.kraken_nonce_log)

    def tick(self, steps: int = 1) -> None:
        for _ in range(steps):
            self.market.tick()

    # --- life -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Simulator:
        self.state.stopping.clear()
        self._server, serve = start_server(self.state, port=self.port)
        self._threads = [serve]
        if self.tick_seconds > 0:
            ticker = threading.Thread(target=self._tick_loop, name="sim-ticker", daemon=True)
            ticker.start()
            self._threads.append(ticker)
        return self

    def _tick_loop(self) -> None:
        while not self.state.stopping.wait(self.tick_seconds):
            self.market.tick()

    def stop(self) -> None:
        if self._server is None:
            return
        self.state.stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._server = None
        self._threads = []

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def config_text(self, refresh_seconds: float = 5) -> str:
        """A ready config pointing at this simulator, with the demo keys as literal strings."""
        from tui.config import simulator_config

        return simulator_config(self, refresh_seconds)

    def write_config(self, path: Path, refresh_seconds: float = 5) -> None:
        from tui.config import write_private

        write_private(path, self.config_text(refresh_seconds))
