"""`config check`: validate the config, make one signed call per venue, and say what each failure means."""

from __future__ import annotations

import asyncio
import sys
import time

from tui.config import Config, ConfigError, resolve_secrets
from tui.untrusted import visible
from tui.venues.errors import ErrorKind, VenueError

ADVICE: dict[ErrorKind, str] = {
    ErrorKind.AUTH: "the venue does not accept this API key (or passphrase): check that the key is copied whole, "
    "is still active, and belongs to this venue",
    ErrorKind.SIGNATURE: "the signature was rejected: the API secret is wrong; copy it again (it is base64)",
    ErrorKind.NONCE: "Kraken refused the nonce: another program is using this key, or one once used larger "
    "nonces (microseconds, nanoseconds; balance-tui before 0.2 did) and Kraken never lets them go back down; "
    "create a key for balance-tui alone",
    ErrorKind.CLOCK: "the request timestamp was rejected: this machine's clock is off; enable NTP "
    "(timedatectl set-ntp true)",
    ErrorKind.PERMISSION: "the key lacks permission: on the venue's API page, allow it to query balances "
    "(read-only is enough)",
    ErrorKind.RATE_LIMIT: "rate limited: something else is using this key heavily, or it was just used; "
    "wait a minute and check again",
    ErrorKind.LOCKOUT: "Kraken has locked this key out for about 15 minutes after repeated errors: wait, "
    "then check again",
    ErrorKind.UNREACHABLE: "cannot reach the venue: check the base_url, DNS, proxy and firewall",
    ErrorKind.TIMEOUT: "the venue did not answer in time: check the network, or try again",
    ErrorKind.SERVER: "the venue is failing right now (server error): try again later",
    ErrorKind.BAD_RESPONSE: "the answer was not what the venue's API returns: is base_url pointing at the venue "
    "(not a proxy or login page)?",
    ErrorKind.NOT_FOUND: "not found: check the configured account ids",
    ErrorKind.REQUEST: "the venue refused the request: check the configured account ids",
    ErrorKind.VENUE: "the venue reported an error",
}


def diagnose(error: VenueError) -> str:
    return f"{ADVICE.get(error.kind, 'failed')}\n      venue said: {visible(error.message)}"


def run_check(config: Config) -> int:
    """Exit 0 when every venue answered a signed call, 1 otherwise (each failure explained)."""
    print(f"{visible(config.path)}: valid; {len(config.venues)} venue(s), refresh every {config.refresh_seconds:g} s")
    if not config.venues:
        print("no [[venue]] configured yet: add one (see the template from `balance-tui config init`)")
        return 1
    results = asyncio.run(_check_all(config))
    failed = 0
    for venue, (outcome, took, key) in zip(config.venues, results, strict=True):
        label = visible(f"{venue.name} ({venue.kind.kind}, {venue.base_url})")
        if isinstance(outcome, str):
            print(f"  ok    {label}: {outcome} in {took * 1000:.0f} ms")
        elif isinstance(outcome, ConfigError):
            failed += 1
            print(f"  FAIL  {label}: a secret is not loaded, so the venue was not called\n      {visible(outcome)}")
        else:
            failed += 1
            print(f"  FAIL  {label}: {diagnose(outcome)}")
        if key:
            print(f"        this key on this machine: {visible(key)}")
    if config.prices.source != "none":
        print(f"  {_check_prices(config)}")
    sys.stdout.flush()
    return 1 if failed else 0


def _check_prices(config: Config) -> str:
    """One public call to the price source; a failure warns (values are extra: balances still flow)."""
    from tui.assets import AssetNames
    from tui.venues import http
    from tui.venues.kraken_prices import KrakenPrices

    label = visible(f"prices ({config.prices.source}, {config.prices.base_url})")

    async def pairs() -> int:
        async with http.new_client(config.prices.base_url) as web:
            return len(await KrakenPrices(web, AssetNames(config.assets)).usd_markets())

    try:
        markets = asyncio.run(pairs())
    except VenueError as exc:
        return f"warn  {label}: values will be unknown until it answers: {diagnose(exc)}"
    return f"ok    {label}: {markets} assets have a USD market"


Outcome = str | VenueError | ConfigError  # what the venue said, or why it was not asked


async def _check_all(config: Config) -> list[tuple[Outcome, float, str | None]]:
    return await asyncio.gather(*(_check_one(config, i) for i in range(len(config.venues))))


async def _check_one(config: Config, index: int) -> tuple[Outcome, float, str | None]:
    """What the venue said to one signed call, how long it took, and the key's ledger (what every balance-tui
    process on this machine spends of its budget, and who else polls it)."""
    from tui.venues import http
    from tui.venues.connect import connect

    venue = config.venues[index]
    started = time.monotonic()
    try:
        secrets = resolve_secrets(venue, config)
    except ConfigError as exc:
        return exc, 0.0, None
    async with http.new_client(venue.base_url) as web:
        client = None
        try:
            client = connect(venue.kind.kind, web, secrets)
            accounts = await client.discover(fresh=True)  # a signed call, whatever others know
        except VenueError as exc:
            return exc, time.monotonic() - started, _key_state(client)
    took = time.monotonic() - started
    key = _key_state(client)
    words = venue.kind.account_word
    found = {a.id for a in accounts} | {a.details.get("portfolio_uuid", "") for a in accounts}
    missing = [a for a in venue.accounts if a not in found]
    if missing:
        return (
            VenueError(
                ErrorKind.NOT_FOUND,
                f"configured {words}(s) not visible to this key: {', '.join(missing)}",
                retryable=False,
            ),
            took,
            key,
        )
    return f"signed call accepted, {len(accounts)} {words}(s) visible", took, key


def _key_state(client: object) -> str | None:
    state = getattr(client, "key_state", None)
    return state() if callable(state) else None
