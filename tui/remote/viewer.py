"""What an attached viewer knows of the desk's config: only what the server's snapshot tells it (venue names
and kinds, asset names, whether there are prices). It holds no key, keeps no history and runs no alert
command: the server does all three, once for every viewer."""

from __future__ import annotations

import os
from pathlib import Path

from tui.config import Config, HistoryConfig, PricesConfig, VenueConfig
from tui.credentials import CredentialError, Secret, SecretSource, load_secret
from tui.snapshot.model import Snapshot
from tui.venues import KINDS

TOKEN_VARIABLE = "BALANCE_TUI_TOKEN"


def viewer_config(snapshot: Snapshot, via: str) -> Config:
    venues = tuple(
        VenueConfig(KINDS[v.kind], v.name, f"http://{via}", {}, (), i) for i, v in enumerate(snapshot.venues)
    )
    periods = [v.period for v in snapshot.venues if v.period]
    book = snapshot.appraisal.book if snapshot.appraisal is not None else None
    return Config(
        path=None,
        refresh_seconds=min(periods) if periods else 5.0,
        venues=venues,
        lines={},
        history=HistoryConfig(enabled=False),
        assets=dict(snapshot.names),
        alerts=(),
        prices=PricesConfig(source=book.source if book is not None else "none"),
    )


def load_token(token_file: str | None) -> Secret | None:
    """The desk's bearer token: --token-file (private, as secret files are), else $BALANCE_TUI_TOKEN, else none."""
    if token_file:
        try:
            return load_secret(SecretSource("file", str(Path(token_file).expanduser())))
        except CredentialError as exc:
            raise CredentialError(f"--token-file: {exc}") from None
    value = os.environ.get(TOKEN_VARIABLE, "").strip()
    return Secret(value) if value else None
