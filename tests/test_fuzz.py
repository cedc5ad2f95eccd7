"""Property tests: parsers given anything return a typed record or a VenueError, never another exception;
amounts round-trip digit for digit."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui.config import ConfigError, parse
from tui.money import Balance, fmt, loads, parse_amount
from tui.venues import intx, intx_summary, kraken, kraken_vault
from tui.venues.errors import VenueError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

decimals = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=Decimal("-1e40"), max_value=Decimal("1e40"), places=None
)
amounts = decimals.filter(lambda d: d.as_tuple().exponent >= -60)  # at most 60 places, as money.MAX_PLACES
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=30),
    decimals.map(str),
    st.sampled_from(["1.75", "997.5000000000000", "NaN", "1e5", "", "-0"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.one_of(
                st.text(max_size=12),
                st.sampled_from(
                    [
                        "error",
                        "errors",
                        "result",
                        "balance",
                        "hold_trade",
                        "quantity",
                        "asset_name",
                        "items",
                        "total",
                        "message",
                        "title",
                    ]
                ),
            ),
            inner,
            max_size=6,
        ),
    ),
    max_leaves=25,
)


def kraken_shaped() -> st.SearchStrategy[Any]:
    entry = st.fixed_dictionaries({}, optional={"balance": scalars, "hold_trade": scalars})
    return st.fixed_dictionaries(
        {"error": st.just([])},
        optional={
            "result": st.one_of(
                st.dictionaries(st.text(max_size=6), st.one_of(entry, json_values), max_size=4), json_values
            )
        },
    )


def intx_shaped() -> st.SearchStrategy[Any]:
    fields = {name: scalars for name in intx.FIELDS}
    return st.one_of(st.fixed_dictionaries({}, optional=fields), json_values)


def respond(body: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=body)


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def kraken_parse(body: bytes, status: int = 200) -> list[Balance] | VenueError:
    try:
        return kraken.parse_balances(kraken.read_payload(respond(body, status), "GetCustodyBalance")["result"])
    except VenueError as exc:
        return exc


def intx_parse(body: bytes, status: int = 200) -> Any:
    response = respond(body, status)
    try:
        if status >= 400:
            return intx.error_text(response)
        payload = intx.http.decode_json(response)
        return intx.parse_balance(payload, "balance"), intx_summary.parse_summary(payload)
    except VenueError as exc:
        return exc


@FUZZ
@given(st.one_of(json_values, kraken_shaped()), st.sampled_from([200, 200, 400, 429, 500, 502]))
def test_kraken_parser_on_any_json(value: Any, status: int) -> None:
    outcome = kraken_parse(encode(value), status)
    assert isinstance(outcome, (list, VenueError))
    if isinstance(outcome, list):
        assert all(isinstance(b, Balance) and isinstance(b.amount("balance"), (Decimal, type(None))) for b in outcome)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([200, 401, 503]))
def test_parsers_on_any_bytes(body: bytes, status: int) -> None:
    assert isinstance(kraken_parse(body, status), (list, VenueError))
    assert intx_parse(body, status) is not None


@FUZZ
@given(intx_shaped(), st.sampled_from([200, 200, 401, 404, 429]))
def test_intx_parsers_on_any_json(value: Any, status: int) -> None:
    outcome = intx_parse(encode(value), status)
    if status >= 400:
        assert isinstance(outcome, str) and len(outcome) <= 200
    else:
        assert isinstance(outcome, (tuple, VenueError))


@FUZZ
@given(
    st.one_of(
        json_values,
        st.lists(st.fixed_dictionaries({"id": st.text(max_size=8)}, optional={"name": scalars}), max_size=4),
    ),
    json_values,
)
def test_vault_pages_on_any_json(value: Any, total: Any) -> None:
    try:
        items, count = kraken.vault_page({"result": value, "errors": [], "start": 1, "total": total})
    except VenueError:
        return
    assert isinstance(items, list) and (count is None or isinstance(count, int))


@FUZZ
@given(json_values)
def test_vault_details_on_any_json(value: Any) -> None:
    try:
        details = kraken_vault.parse_vault(value)
    except VenueError:
        return
    for asset in details.assets:
        share = details.share(asset)
        assert share is None or all(isinstance(v, Decimal) for v in share)


@FUZZ
@given(amounts)
def test_amounts_round_trip_exactly_as_strings_and_as_numbers(value: Decimal) -> None:
    text = format(value, "f")
    assert fmt(parse_amount(text)) == text
    number = loads(f'{{"q": {text}}}'.encode())["q"]
    assert parse_amount(number) == value and fmt(parse_amount(number)) == text
    assert "e" not in fmt(parse_amount(str(value))).lower()


@FUZZ
@given(st.text(max_size=400))
def test_config_parser_on_any_text(text: str) -> None:
    try:
        parse(text)
    except ConfigError as exc:
        assert "\n" not in str(exc)


toml_scalars = st.one_of(
    st.booleans(),
    st.integers(-10, 10**6),
    st.text(max_size=20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["kraken-custody", "coinbase-intx", "https://x.example", "http://1.2.3.4"]),
    st.fixed_dictionaries({"env": st.text(max_size=8)}),
    st.lists(st.text(max_size=16), max_size=3),
)
venue_tables = st.dictionaries(
    st.sampled_from(
        sorted(["kind", "name", "base_url", "api_key", "api_secret", "passphrase", "vaults", "portfolios", "surprise"])
    ),
    toml_scalars,
    max_size=8,
)


@FUZZ
@given(
    st.fixed_dictionaries({}, optional={"refresh_seconds": toml_scalars, "venue": st.lists(venue_tables, max_size=3)})
)
def test_config_validation_on_any_valid_toml(data: dict[str, Any]) -> None:
    import tomli_w

    try:
        config = parse(tomli_w.dumps(data))
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(v.kind.kind in ("kraken-custody", "coinbase-intx") for v in config.venues)
