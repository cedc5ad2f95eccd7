"""python-kraken-sdk as a user would set it up for the custody calls, shared by the tests and bench/."""

from __future__ import annotations

import time
from typing import Any

from kraken.spot import SpotClient


class IntegerNonceSpotClient(SpotClient):  # type: ignore[misc]
    """The SDK's generic signed request with the custody schema's integer nonce, in the documented
    milliseconds and strictly increasing (the SDK's own is a string of 1e-8 s units)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last = 0

    def get_nonce(self) -> int:  # type: ignore[override]
        self._last = max(self._last + 1, int(time.time() * 1000))
        return self._last
