"""The config file: where it lives, reading and validating it (naming file, key and line of every
problem), the commented template, and writing files only the owner can read."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tui.credentials import CredentialError, Secret, SecretSource, group_or_world_readable, load_secret
from tui.money import MAX_PLACES, AmountError, parse_amount
from tui.monitor.rules import BALANCE_VALUES, RULE_KINDS, SCOPE_VALUES, SUMMARY, TOTALS
from tui.paths import private_folder
from tui.venues import KINDS, VenueKind

if TYPE_CHECKING:
    from tui.monitor.rule import Rule
    from tui.sim import Simulator
    from tui.statements_config import StatementsConfig

ENV_VAR = "BALANCE_TUI_CONFIG"
SIM_MARKER = "# balance-tui simulator config"
MIN_REFRESH = 1.0
MAX_REFRESH = 3600.0
TOP_KEYS = {"refresh_seconds", "venue", "history", "assets", "alert", "prices", "statements"}
HISTORY_KEYS = {"enabled", "path"}
STATEMENTS_KEYS = {"at", "timezone", "folder"}
PRICES_KEYS = {"source", "base_url", "refresh_seconds"}
PRICE_SOURCES = ("kraken", "none")
PRICES_DEFAULT_URL = "https://api.kraken.com"
MIN_PRICE_REFRESH = 10.0  # Kraken's public endpoints limit each IP: about once a minute is the polite pace
ALERT_KEYS = {"name", "venue", "account", "asset", "field", "window", "command", *RULE_KINDS}
SPAN_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
VENUE_KEYS = {"kind", "name", "base_url", "api_key", "api_secret", "passphrase", "vaults", "portfolios", "columns"}
PANE_COLUMNS = ("usd_value", "change")  # a pane's columns beside the venue's amount fields


class ConfigError(ValueError):
    """A problem in the config, as one line: file:line: key: what is wrong and what to do."""

    def __init__(self, path: Path | None, problem: str, *, key: str | None = None, line: int | None = None):
        self.path, self.key, self.line, self.problem = path, key, line, problem
        where = str(path) if path is not None else "config"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {key + ': ' if key else ''}{problem}")


@dataclass(frozen=True, slots=True)
class VenueConfig:
    """A `[[venue]]` table, checked: its kind, name, URL, where its secrets are read from, the accounts it names."""

    kind: VenueKind
    name: str
    base_url: str
    secrets: dict[str, SecretSource]
    accounts: tuple[str, ...]
    index: int  # position among [[venue]] tables, for messages
    columns: tuple[str, ...] | None = None  # the pane's amount columns, in order (None: its default ones)


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """`[history]`: whether every change is recorded, and where."""

    enabled: bool = True
    path: Path | None = None  # None: the platform's data directory


@dataclass(frozen=True, slots=True)
class PricesConfig:
    """`[prices]`: where USD prices come from, and how often."""

    source: str = "kraken"  # or "none"
    base_url: str = PRICES_DEFAULT_URL
    refresh_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class Config:
    """The config file, read and checked, with the line of each key (for messages)."""

    path: Path | None
    refresh_seconds: float
    venues: tuple[VenueConfig, ...]
    lines: dict[tuple[str | int, ...], int]
    history: HistoryConfig = HistoryConfig()
    assets: dict[str, str] = field(default_factory=dict)  # venue spelling -> the name totals use
    alerts: tuple[Rule, ...] = ()
    prices: PricesConfig = PricesConfig()
    statements: StatementsConfig | None = None  # None: no daily statements

    def line_of(self, *key: str | int) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return None


def default_path() -> Path:
    import platformdirs

    return platformdirs.user_config_path("balance-tui") / "config.toml"


def resolve_path(explicit: str | None) -> Path:
    """--config, else $BALANCE_TUI_CONFIG, else the platform's config directory."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return default_path()


def load(path: Path) -> Config:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            path, "no config file here: run `balance-tui config init` to write one, or try `balance-tui --demo`"
        ) from None
    except OSError as exc:
        raise ConfigError(path, f"cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, "is not UTF-8 text") from None
    return parse(text, path)


def parse(text: str, path: Path | None = None) -> Config:
    try:
        data = tomllib.loads(text, parse_float=Decimal)  # thresholds are money: never through float
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError(path, f"invalid TOML: {message}", line=int(match.group(1)) if match else None) from None
    lines = _locate(text)

    def fail(problem: str, *key: str | int) -> ConfigError:
        return ConfigError(path, problem, key=_shown(key) or None, line=_line(lines, key))

    for key in data:
        if key not in TOP_KEYS:
            raise fail(f"unknown key (known: {', '.join(sorted(TOP_KEYS))})", key)
    refresh = data.get("refresh_seconds", 5)
    if isinstance(refresh, bool) or not isinstance(refresh, (int, Decimal)):
        raise fail("must be a number of seconds", "refresh_seconds")
    if not MIN_REFRESH <= refresh <= MAX_REFRESH:
        raise fail(f"must be between {MIN_REFRESH:g} and {MAX_REFRESH:g} seconds", "refresh_seconds")
    tables = data.get("venue", [])
    if not isinstance(tables, list):
        raise fail("must be a list of [[venue]] tables", "venue")
    venues = [_venue(table, i, path, fail) for i, table in enumerate(tables)]
    names = [v.name for v in venues]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise fail(f"two venues are named {name!r}: give each a different name", "venue", i, "name")
        if name.strip().lower() == TOTALS:
            raise fail(f"{name!r} names the cross-venue totals: give this venue another name", "venue", i, "name")
    literal = next((v for v in venues for s in v.secrets.values() if s.kind == "literal"), None)
    if literal is not None and path is not None and path.exists() and group_or_world_readable(path):
        key = next(k for k, s in literal.secrets.items() if s.kind == "literal")
        raise fail(
            f"a literal secret is allowed only when the file is private: run `chmod 600 {path}` "
            'or use { env = "NAME" } instead',
            "venue",
            literal.index,
            key,
        )
    assets = _assets(data.get("assets", {}), fail)
    alerts = data.get("alert", [])
    if not isinstance(alerts, list):
        raise fail("must be a list of [[alert]] tables", "alert")
    rules = tuple(_alert(table, i, venues, fail) for i, table in enumerate(alerts))
    history = _history(data.get("history", {}), fail)
    if "history" not in data and text.startswith(SIM_MARKER):
        history = HistoryConfig(enabled=False)  # a simulator's config that says nowhere: simulated money stays out
    prices = _prices(data.get("prices", {}), fail)
    statements = _statements(data["statements"], history, fail) if "statements" in data else None
    return Config(path, float(refresh), tuple(venues), lines, history, assets, rules, prices, statements)


def parse_span(text: str | int | Decimal) -> float:
    """Seconds from `90`, `"30s"`, `"10m"`, `"24h"` or `"7d"`; ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError(text)
    if isinstance(text, (int, Decimal)):
        seconds = float(text)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
        if not match:
            raise ValueError(text)
        seconds = float(match.group(1)) * SPAN_UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(text)
    return seconds


def _assets(table: Any, fail: Any) -> dict[str, str]:
    if not isinstance(table, dict):
        raise fail('must be a table of spellings: [assets] XBT = "BTC"', "assets")
    for spelled, name in table.items():
        if not isinstance(name, str) or not name.strip():
            raise fail("must be the asset name to show, as a string", "assets", spelled)
    return {k: v.strip() for k, v in table.items()}


def _alert(table: Any, i: int, venues: list[VenueConfig], fail: Any) -> Rule:
    from tui.monitor.rule import Rule  # here: a config without [[alert]] never builds the class

    def bad(problem: str, key: str | None = None) -> ConfigError:
        return fail(problem, "alert", i, *((key,) if key else ()))  # type: ignore[no-any-return]

    if not isinstance(table, dict):
        raise bad("must be a table")
    for key in table:
        if key not in ALERT_KEYS:
            raise bad(f"unknown key (known: {', '.join(sorted(ALERT_KEYS))})", key)
    for key in ("name", "venue", "account", "asset", "field", "command"):
        if key in table and (not isinstance(table[key], str) or not table[key].strip()):
            raise bad("must be a non-empty string", key)
    venue = table.get("venue")
    names = [v.name for v in venues]
    if venue is not None and venue != TOTALS and venue not in names:
        raise bad(
            f"no venue is named {venue!r} (venues: {', '.join(map(repr, names)) or 'none'}; or {TOTALS!r})", "venue"
        )
    if "field" not in table:
        raise bad('missing: which field to watch, e.g. field = "max_withdraw_amount"')
    known = _fields_of(venue, venues)
    if table["field"] not in known:
        raise bad(f"not a field of that venue (fields: {', '.join(known)})", "field")
    kinds = [k for k in RULE_KINDS if k in table]
    if len(kinds) != 1:
        raise bad("give exactly one of below, above, change or is")
    kind = kinds[0]
    raw = table[kind]
    flag = table["field"].removeprefix(SUMMARY) in _flags_of(venue, venues)
    if table["field"].startswith(SUMMARY) and "asset" in table:
        raise bad("a summary field is about a whole account: drop asset", "asset")
    if table["field"] in SCOPE_VALUES and "asset" in table:
        raise bad(f"{table['field']} is what a whole venue or account is worth: drop asset", "asset")
    if flag != (kind == "is"):
        hint = "is = true (or false)" if flag else "below, above or change"
        raise bad(f"{table['field']} is {'a yes/no' if flag else 'an amount'}: use {hint}", kind)
    if kind == "is":
        if not isinstance(raw, bool):
            raise bad("must be true or false", "is")
        return Rule(
            name=table.get("name") or f"{venue or 'any venue'}: {table['field']} is {str(raw).lower()}",
            field=table["field"],
            kind="is",
            threshold=Decimal(0),
            venue=venue,
            account=table.get("account"),
            command=table.get("command"),
            expected=raw,
        )
    percent = kind == "change" and isinstance(raw, str) and raw.strip().endswith("%")
    try:
        if isinstance(raw, bool) or not isinstance(raw, (str, int, Decimal)):
            raise InvalidOperation
        threshold = Decimal(str(raw).strip().rstrip("%") if percent else str(raw).strip())
        if not threshold.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise bad(
            'must be a number, e.g. 10000 or "10000.50"' + (' or a percentage "5%"' if kind == "change" else ""), kind
        ) from None
    try:
        parse_amount(threshold)  # the same range as an amount from a venue: it is compared exactly with them
    except AmountError:
        raise bad(f"must be below 10^{MAX_PLACES} with at most {MAX_PLACES} decimal places", kind) from None
    window = 300.0
    if "window" in table:
        if kind != "change":
            raise bad("applies only to change rules", "window")
        try:
            window = parse_span(table["window"])
        except ValueError:
            raise bad('must be a span such as "5m", "1h" or a number of seconds', "window") from None
    name = (
        table.get("name")
        or f"{table.get('venue') or 'any venue'}: {table.get('asset') or 'any asset'} {table['field']} {kind} {raw}"
    )
    return Rule(
        name=name,
        field=table["field"],
        kind=kind,
        threshold=threshold.copy_abs() if kind == "change" else threshold,
        percent=percent,
        window=window,
        venue=venue,
        account=table.get("account"),
        asset=table.get("asset"),
        command=table.get("command"),
    )


def _kinds_of(venue: str | None, venues: list[VenueConfig]) -> list[VenueKind]:
    return [v.kind for v in venues if venue is None or v.name == venue] or list(KINDS.values())


def _fields_of(venue: str | None, venues: list[VenueConfig]) -> tuple[str, ...]:
    """What a rule on this venue may watch: balance amounts and values, a venue's (or an account's) worth,
    and "summary." + account-wide fields; on the totals, an asset's total and value, and the firm's worth."""
    if venue == TOTALS:
        return ("total", "usd_value", *SCOPE_VALUES)
    fields: list[str] = []
    for kind in _kinds_of(venue, venues):
        values = [f for f in BALANCE_VALUES if f == "usd_value" or "loan" in kind.amounts]
        for field_name in (*kind.amounts, *values, *SCOPE_VALUES, *(SUMMARY + f for f in kind.summary_fields)):
            if field_name not in fields:
                fields.append(field_name)
    return tuple(fields)


def _flags_of(venue: str | None, venues: list[VenueConfig]) -> set[str]:
    return {flag for kind in _kinds_of(venue, venues) if venue != TOTALS for flag in kind.summary_flags}


def _history(table: Any, fail: Any) -> HistoryConfig:
    if not isinstance(table, dict):
        raise fail("must be a table: [history]", "history")
    for key in table:
        if key not in HISTORY_KEYS:
            raise fail(f"unknown key (known: {', '.join(sorted(HISTORY_KEYS))})", "history", key)
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("must be true or false", "history", "enabled")
    where = table.get("path")
    if where is not None and (not isinstance(where, str) or not where.strip()):
        raise fail("must be a file path", "history", "path")
    return HistoryConfig(enabled, Path(where).expanduser() if where else None)


def _prices(table: Any, fail: Any) -> PricesConfig:
    if not isinstance(table, dict):
        raise fail("must be a table: [prices]", "prices")
    for key in table:
        if key not in PRICES_KEYS:
            raise fail(f"unknown key (known: {', '.join(sorted(PRICES_KEYS))})", "prices", key)
    source = table.get("source", "kraken")
    if source not in PRICE_SOURCES:
        raise fail(f"must be one of {', '.join(map(repr, PRICE_SOURCES))}", "prices", "source")
    base_url = table.get("base_url", PRICES_DEFAULT_URL)
    problem = check_base_url(base_url) if isinstance(base_url, str) else "must be a URL string"
    if problem:
        raise fail(problem, "prices", "base_url")
    refresh = table.get("refresh_seconds", 60)
    if isinstance(refresh, bool) or not isinstance(refresh, (int, Decimal)):
        raise fail("must be a number of seconds", "prices", "refresh_seconds")
    if not MIN_PRICE_REFRESH <= refresh <= MAX_REFRESH:
        raise fail(f"must be between {MIN_PRICE_REFRESH:g} and {MAX_REFRESH:g} seconds", "prices", "refresh_seconds")
    return PricesConfig(source, base_url.rstrip("/"), float(refresh))


def _statements(table: Any, history: HistoryConfig, fail: Any) -> StatementsConfig:
    from tui.statements_config import StatementsConfig  # here: a config without [statements] never builds it

    if not isinstance(table, dict):
        raise fail('must be a table: [statements] at = "00:00"', "statements")
    for key in table:
        if key not in STATEMENTS_KEYS:
            raise fail(f"unknown key (known: {', '.join(sorted(STATEMENTS_KEYS))})", "statements", key)
    if "at" not in table:
        raise fail('missing: the local time of day to write the book, e.g. at = "00:00"', "statements", "at")
    at = table["at"]
    if isinstance(at, str) and _TIME_OF_DAY.fullmatch(at.strip()):
        at = dt.time.fromisoformat(at.strip())
    if not isinstance(at, dt.time) or at.tzinfo is not None:
        raise fail('must be a local time of day, "HH:MM" or "HH:MM:SS" (24 h), e.g. "00:00"', "statements", "at")
    zone = table.get("timezone", "UTC")
    if not isinstance(zone, str) or not _known_zone(zone.strip()):
        raise fail(
            f'{zone!r} is no time zone: an IANA name such as "Europe/London" or "America/New_York", or "UTC"',
            "statements",
            "timezone",
        )
    folder = table.get("folder")
    if folder is not None and (not isinstance(folder, str) or not folder.strip()):
        raise fail("must be a folder path", "statements", "folder")
    if not history.enabled:
        raise fail(
            "statements are written from the history, which is off ([history] enabled = false): turn it on, "
            "or remove [statements]",
            "statements",
        )
    return StatementsConfig(at.replace(microsecond=0), zone.strip(), Path(folder).expanduser() if folder else None)


_TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?")


def _known_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo

    if not name:
        return False
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # not found is a KeyError; a path-like key a ValueError
        return False
    return True


def _venue(table: Any, i: int, path: Path | None, fail: Any) -> VenueConfig:
    if not isinstance(table, dict):
        raise fail("must be a table", "venue", i)
    for key in table:
        if key not in VENUE_KEYS:
            raise fail(f"unknown key (known: {', '.join(sorted(VENUE_KEYS))})", "venue", i, key)
    kind_name = table.get("kind")
    if not isinstance(kind_name, str) or kind_name not in KINDS:
        raise fail(f"must be one of {', '.join(repr(k) for k in KINDS)}", "venue", i, "kind")
    kind = KINDS[kind_name]
    name = table.get("name", kind.label)
    if not isinstance(name, str) or not name.strip():
        raise fail("must be a non-empty string", "venue", i, "name")
    base_url = table.get("base_url", kind.default_base_url)
    if not isinstance(base_url, str):
        raise fail("must be a URL string", "venue", i, "base_url")
    problem = check_base_url(base_url)
    if problem:
        raise fail(problem, "venue", i, "base_url")
    secrets: dict[str, SecretSource] = {}
    for key in kind.secrets:
        if key not in table:
            raise fail(f"missing: a {kind.label} venue needs {', '.join(kind.secrets)}", "venue", i, key)
        secrets[key] = _secret_source(table[key], lambda p, k=key: fail(p, "venue", i, k))
    for other in ("vaults", "portfolios", "passphrase"):
        if other in table and other != kind.accounts_key and other not in kind.secrets:
            raise fail(f"does not apply to {kind.kind} venues", "venue", i, other)
    accounts = table.get(kind.accounts_key, [])
    if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
        raise fail(f"must be a list of {kind.account_word} ids", "venue", i, kind.accounts_key)
    for account in accounts:
        if not kind.account_pattern.fullmatch(account):
            raise fail(
                f"{account!r} is not a {kind.account_word} id ({kind.account_hint})", "venue", i, kind.accounts_key
            )
    columns = _columns(table.get("columns"), kind, lambda p: fail(p, "venue", i, "columns"))
    return VenueConfig(kind, name.strip(), base_url.rstrip("/"), secrets, tuple(dict.fromkeys(accounts)), i, columns)


def _columns(value: Any, kind: VenueKind, fail: Any) -> tuple[str, ...] | None:
    """The amount columns a venue's pane shows, in order: any of its amount fields, `usd_value` and `change`
    (the names always come first). None when not given: the pane's default columns."""
    if value is None:
        return None
    known = (*kind.amounts, *PANE_COLUMNS)
    if not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value):
        raise fail(f"must be a non-empty list of column names, from: {', '.join(known)}")
    unknown = [c for c in value if c not in known]
    if unknown:
        raise fail(f"unknown column {unknown[0]!r} for a {kind.kind} venue (known: {', '.join(known)})")
    return tuple(dict.fromkeys(value))


def _secret_source(value: Any, fail: Any) -> SecretSource:
    if isinstance(value, str):
        if not value:
            raise fail("is empty")
        return SecretSource("literal", value)
    if isinstance(value, dict) and len(value) == 1:
        ((kind, ref),) = value.items()
        if kind in ("env", "file", "command") and isinstance(ref, str) and ref:
            return SecretSource(kind, ref)
    raise fail('must be { env = "NAME" }, { file = "path" }, { command = "..." } or a string')


def check_base_url(url: str) -> str | None:
    """None if the URL is acceptable: https, or plain http to a loopback address only."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return f"{url!r} must be just scheme and host (the API paths are added by balance-tui)"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return f"{url!r} would send keys unencrypted: use https:// (plain http is allowed only to loopback)"
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_secrets(venue: VenueConfig, config: Config) -> dict[str, Secret]:
    """Load a venue's secrets; a failure is a `ConfigError` naming the key and its line."""
    loaded: dict[str, Secret] = {}
    for key, source in venue.secrets.items():
        try:
            loaded[key] = load_secret(source, config_path=config.path)
        except CredentialError as exc:
            raise ConfigError(
                config.path,
                str(exc),
                key=f"venue[{venue.index + 1}].{key}",
                line=config.line_of("venue", venue.index, key),
            ) from None
    return loaded


# --- where each key sits in the file -------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)\s*=")


def _locate(text: str) -> dict[tuple[str | int, ...], int]:
    """Line numbers of top-level keys, of each [[venue]] table and of the keys inside it.

    tomllib reports no positions; this scan covers the shapes a config uses (tables, arrays of tables,
    key = value lines), which is enough to point an operator at the right line.
    """
    lines: dict[tuple[str | int, ...], int] = {}
    counts: dict[str, int] = {}
    prefix: tuple[str | int, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            name = header.group(2).strip().strip("\"'")
            if header.group(1) == "[[":
                index = counts.get(name, 0)
                counts[name] = index + 1
                prefix = (name, index)
            else:
                prefix = (name,)
            lines.setdefault(prefix, number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            lines.setdefault((*prefix, assign.group(1).strip("\"'")), number)
    return lines


def _shown(key: tuple[str | int, ...]) -> str:
    """("venue", 0, "kind") -> "venue[1].kind", as an operator counts tables."""
    parts: list[str] = []
    for part in key:
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part + 1}]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _line(lines: dict[tuple[str | int, ...], int], key: tuple[str | int, ...]) -> int | None:
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return None


# --- writing ------------------------------------------------------------------------------------

_COMMENTS = {
    "refresh_seconds": "the wish; each venue clamps it to what its rate limit allows",
    "kind": "kraken-custody or coinbase-intx; a kind may appear several times (several keys)",
    "name": "shown on the pane",
    "base_url": "https is required unless the host is loopback",
    "api_key": 'a secret: { env = "NAME" }, { file = "path" } (chmod 600), { command = "..." } or a literal',
    "vaults": "optional: without it, ListCustodyVaults discovers them",
    "portfolios": "optional: without it, GET /api/v1/portfolios discovers them",
}


TEMPLATE_EXTRAS = """
# A venue's pane shows its default columns; `columns = [...]` in its [[venue]] table picks and orders the
# amount columns instead (any amount field of the venue, "usd_value", "change"); `c` picks them live.
# columns = ["usd_value", "quantity", "loan", "max_withdraw_amount", "change"]

# Totals name assets alike across venues; Kraken's XBT, XXBT, XDG, ZUSD... are built in.
# [assets]
# "USDC.M" = "USDC"

# Alerts: below / above / change (absolute or "5%", within a window) on any field, or on a total;
# on what it is worth: usd_value of a balance, usd_total / usd_loans / usd_net of a venue (or, with
# account, of one account), and of every venue together with venue = "totals".
# [[alert]]
# name = "USDC withdrawable at INTX"
# venue = "Coinbase INTX"            # or "totals" with field = "total"
# asset = "USDC"
# field = "max_withdraw_amount"
# below = "10000"
# command = "/usr/local/bin/page-oncall"   # runs on fire and clear, the alert as JSON on stdin
#
# [[alert]]
# venue = "Coinbase INTX"
# field = "summary.in_liquidation"   # a portfolio as a whole (its summary is then fetched too)
# is = true
#
# [[alert]]
# name = "INTX worth under $10M"
# venue = "Coinbase INTX"
# field = "usd_total"                # usd_net subtracts loans; venue = "totals" is every venue together
# below = "10000000"

# Every change is recorded in the platform data directory; `balance-tui history` prints it.
# [history]
# enabled = true

# What it is worth in US dollars: Kraken's public market data (no key), or source = "none".
# [prices]
# source = "kraken"
# base_url = "https://api.kraken.com"
# refresh_seconds = 60

# End-of-day statements: `serve` (and the TUI) write the book at this local time each day, from the history,
# as book-YYYY-MM-DD.json and .csv (never overwritten); one missed while down is written on return.
# [statements]
# at = "00:00"
# timezone = "UTC"                  # an IANA name: "Europe/London", "America/New_York"...
# folder = "/var/lib/balance-tui/statements"   # default: statements/ in the platform data directory
"""


def template() -> str:
    """The commented starting config `config init` writes: both venues, secrets from the environment."""
    data = {
        "refresh_seconds": 5,
        "venue": [
            {
                "kind": "kraken-custody",
                "name": "Kraken custody",
                "base_url": KINDS["kraken-custody"].default_base_url,
                "api_key": {"env": "KRAKEN_API_KEY"},
                "api_secret": {"env": "KRAKEN_API_SECRET"},
                "vaults": [],
            },
            {
                "kind": "coinbase-intx",
                "name": "Coinbase INTX",
                "base_url": KINDS["coinbase-intx"].default_base_url,
                "api_key": {"env": "INTX_API_KEY"},
                "api_secret": {"env": "INTX_API_SECRET"},
                "passphrase": {"env": "INTX_API_PASSPHRASE"},
                "portfolios": [],
            },
        ],
    }
    header = (
        "# balance-tui configuration. `balance-tui config check` validates it and tries each key.\n"
        "# Use a read-only API key that no other program uses: Kraken nonces must only ever increase,\n"
        "# so two programs sharing a key reject each other's requests.\n\n"
    )
    import tomli_w  # here: only writing a config needs it

    return header + _annotate(tomli_w.dumps(data)) + TEMPLATE_EXTRAS


def simulator_config(sim: Simulator, refresh_seconds: float = 5, history: Path | None = None) -> str:
    """A config that points at a running simulator, with its demo keys as literal strings.

    Simulated money never reaches the operator's history: with `history` (a file beside the written config,
    for `sim --config-out`) it is recorded there, so `balance-tui history --config` and the drill-downs'
    trends can be tried on it; without, the marker this text starts with turns history off (see `parse`)."""
    data: dict[str, Any] = {
        "refresh_seconds": refresh_seconds,
        # before the venues, so that a line appended to this text still lands in the last [[venue]]
        "prices": {"source": "kraken", "base_url": sim.url, "refresh_seconds": 60},
    }
    if history is not None:
        data["history"] = {"enabled": True, "path": str(history)}
    data["venue"] = [
        {
            "kind": "kraken-custody",
            "name": "Kraken custody (simulated)",
            "base_url": sim.url,
            "api_key": sim.kraken_keys.api_key,
            "api_secret": sim.kraken_keys.api_secret,
        },
        {
            "kind": "coinbase-intx",
            "name": "Coinbase INTX (simulated)",
            "base_url": sim.url,
            "api_key": sim.intx_keys.api_key,
            "api_secret": sim.intx_keys.api_secret,
            "passphrase": sim.intx_keys.passphrase or "",
        },
    ]
    import tomli_w  # here: only writing a config needs it

    where = f"in {history}" if history is not None else "nowhere"
    return (
        f"{SIM_MARKER} (seed {sim.seed}): demo keys, simulated money.\n"
        f"# Its history is kept {where}, never in your real history (the platform data folder).\n\n"
        + tomli_w.dumps(data)
    )


def _annotate(text: str) -> str:
    out = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        out.append(f"{line}  # {_COMMENTS[key]}" if "=" in line and key in _COMMENTS else line)
    return "\n".join(out) + "\n"


def write_private(path: Path, text: str, *, overwrite: bool = False) -> None:
    """Write atomically with mode 0600 (every folder we create for it 0700; an existing one is the operator's,
    left as it is)."""
    if path.exists() and not overwrite:
        raise FileExistsError(path)
    private_folder(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_simulator_config(path: Path) -> bool:
    try:
        return path.read_text(encoding="utf-8").startswith(SIM_MARKER)
    except (OSError, UnicodeDecodeError):
        return False
