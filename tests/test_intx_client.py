"""The INTX client over real HTTP against the simulator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from decimal import Decimal

import httpx
import pytest

from tests.conftest import intx_for
from tests.seed import INTX_BALANCE_FIELDS
from tui.money import loads
from tui.sim import Simulator
from tui.venues import intx
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.intx import parse_balance


def first_portfolio(sim: Simulator) -> str:
    return next(iter(sim.market.portfolios))


def assert_clean(err: VenueError, sim: Simulator) -> None:
    text = f"{err} {err!r}"
    for secret in (sim.intx_keys.api_secret, sim.intx_keys.api_key, sim.intx_keys.passphrase or "-"):
        assert secret not in text


async def test_all_seventeen_fields_come_back_exactly_as_strings(sim: Simulator, web: httpx.AsyncClient) -> None:
    pid = first_portfolio(sim)
    sim.market.set_intx(pid, "BTC", quantity="100.000000000000000001", hold="0.5", loan="0")
    balance = await intx_for(sim, web).balance(pid, "BTC")
    assert str(balance.amount("quantity")) == "100.000000000000000001"
    record = balance.as_record()
    assert list(record) == ["asset", *INTX_BALANCE_FIELDS]  # the seed page's names, in its order
    assert record["quantity"] == "100.000000000000000001"
    assert record["asset_name"] == "BTC"


async def test_json_numbers_are_exact_too(sim: Simulator, web: httpx.AsyncClient) -> None:
    sim.intx_numbers = True
    pid = first_portfolio(sim)
    sim.market.set_intx(pid, "BTC", quantity="12345678901234567890.123456789", hold="1.75")
    balances = {b.asset: b for b in await intx_for(sim, web).balances(pid)}
    assert balances["BTC"].amount("quantity") == Decimal("12345678901234567890.123456789")
    assert str(balances["BTC"].amount("quantity")) == "12345678901234567890.123456789"
    assert balances["BTC"].as_record()["hold"] == "1.75"


async def test_missing_fields_are_none_not_zero(sim: Simulator, web: httpx.AsyncClient) -> None:
    pid = list(sim.market.portfolios)[1]  # odd portfolios lack the two newer fields
    balances = await intx_for(sim, web).balances(pid)
    assert balances and all(b.amount("unreconciled_amount") is None for b in balances)
    assert all(b.as_record()["max_undelegate_amount"] is None for b in balances)


async def test_asset_by_uuid_and_portfolio_by_uuid(sim: Simulator, web: httpx.AsyncClient) -> None:
    pid = first_portfolio(sim)
    portfolio = sim.market.portfolios[pid]
    asset = next(iter(portfolio.holdings))
    _, asset_uuid = sim.market.asset_ids[asset]
    balance = await intx_for(sim, web).balance(portfolio.uuid, asset_uuid)
    assert balance.asset == asset


async def test_portfolios_and_summary(sim: Simulator, web: httpx.AsyncClient) -> None:
    client = intx_for(sim, web)
    portfolios = await client.portfolios()
    assert [p.name for p in portfolios] == ["Main", "Hedging", "Market making"]
    summary = await client.summary(portfolios[0].id)
    assert summary.flags["in_liquidation"] is False
    assert summary.amounts["portfolio_initial_margin"] == Decimal("0.1")  # a JSON number, exact
    assert summary.amounts["collateral"] is not None


async def test_wrong_passphrase_is_auth(sim: Simulator, web: httpx.AsyncClient) -> None:
    with pytest.raises(VenueError) as caught:
        await intx_for(sim, web, passphrase="wrong-passphrase").portfolios()
    assert caught.value.kind is ErrorKind.AUTH and not caught.value.retryable
    assert "passphrase" in caught.value.message
    assert "wrong-passphrase" not in str(caught.value)


async def test_wrong_key_is_auth(sim: Simulator, web: httpx.AsyncClient) -> None:
    with pytest.raises(VenueError) as caught:
        await intx_for(sim, web, key="nobody").portfolios()
    assert caught.value.kind is ErrorKind.AUTH
    assert_clean(caught.value, sim)


async def test_wrong_secret_is_a_signature_error(sim: Simulator, web: httpx.AsyncClient) -> None:
    with pytest.raises(VenueError) as caught:
        await intx_for(sim, web, secret=base64.b64encode(b"x" * 32).decode()).portfolios()
    assert caught.value.kind is ErrorKind.SIGNATURE
    assert "check the API secret" in caught.value.message


async def test_clock_skew_is_diagnosed_with_the_offset(sim: Simulator, web: httpx.AsyncClient) -> None:
    sim.faults.set("skew", venue="intx", value=30)
    client = intx_for(sim, web)
    with pytest.raises(VenueError) as caught:
        await client.portfolios()
    assert caught.value.kind is ErrorKind.CLOCK
    assert client.clock_offset is not None and 28 <= client.clock_offset <= 32
    assert re.search(r"clock is (29|30|31) s behind the venue's", caught.value.message)


async def test_skew_within_five_seconds_is_accepted(sim: Simulator, web: httpx.AsyncClient) -> None:
    sim.faults.set("skew", venue="intx", value=3)
    assert await intx_for(sim, web).portfolios()


async def test_undecoded_secret_float_timestamp_and_bad_path_are_rejected(
    sim: Simulator, web: httpx.AsyncClient
) -> None:
    secret = sim.intx_keys.api_secret
    path = "/api/v1/portfolios"

    async def get(timestamp: str, signature: str) -> httpx.Response:
        return await web.get(
            path,
            headers={
                "CB-ACCESS-KEY": sim.intx_keys.api_key,
                "CB-ACCESS-PASSPHRASE": sim.intx_keys.passphrase or "",
                "CB-ACCESS-TIMESTAMP": timestamp,
                "CB-ACCESS-SIGN": signature,
            },
        )

    ts = str(int(time.time()))
    ok = intx.sign(secret, ts, "GET", path)
    assert (await get(ts, ok)).status_code == 200
    undecoded = base64.b64encode(hmac.new(secret.encode(), f"{ts}GET{path}".encode(), hashlib.sha256).digest())
    assert (await get(ts, undecoded.decode())).status_code == 401
    fts = f"{time.time():.3f}"
    assert (await get(fts, intx.sign(secret, fts, "GET", path))).status_code == 400
    with_query = intx.sign(secret, ts, "GET", path + "?x=1")
    assert (await get(ts, with_query)).status_code == 401
    assert sim.count("intx", verdict="bad-signature") == 2
    assert sim.count("intx", verdict="bad-timestamp") == 1


@pytest.mark.parametrize(
    ("fault", "value", "kind", "retry_after"),
    [
        ("http-5xx", 500, ErrorKind.SERVER, None),
        ("429", None, ErrorKind.RATE_LIMIT, None),
        ("429-retry-after", 7, ErrorKind.RATE_LIMIT, 7.0),
        ("html", None, ErrorKind.SERVER, None),
        ("truncated", None, ErrorKind.BAD_RESPONSE, None),
        ("reset", None, ErrorKind.UNREACHABLE, None),
    ],
)
async def test_faults_map_to_typed_errors(
    sim: Simulator, web: httpx.AsyncClient, fault: str, value: object, kind: ErrorKind, retry_after: float | None
) -> None:
    sim.faults.set(fault, venue="intx", value=value)  # type: ignore[arg-type]
    with pytest.raises(VenueError) as caught:
        await intx_for(sim, web).balances(first_portfolio(sim))
    assert caught.value.kind is kind and caught.value.retryable
    assert caught.value.retry_after == retry_after
    assert_clean(caught.value, sim)


async def test_html_error_page_is_excerpted(sim: Simulator, web: httpx.AsyncClient) -> None:
    sim.faults.set("html", venue="intx")
    with pytest.raises(VenueError) as caught:
        await intx_for(sim, web).portfolios()
    assert "502 Bad Gateway" in caught.value.message and len(caught.value.message) < 250


async def test_not_found(sim: Simulator, web: httpx.AsyncClient) -> None:
    with pytest.raises(VenueError) as caught:
        await intx_for(sim, web).balance(first_portfolio(sim), "NOPE")
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert "asset NOPE not found" in caught.value.message


async def test_path_injection_is_refused_before_any_request(sim: Simulator, web: httpx.AsyncClient) -> None:
    with pytest.raises(VenueError) as caught:
        await intx_for(sim, web).balance("../../portfolios", "BTC")
    assert caught.value.kind is ErrorKind.REQUEST
    assert sim.count() == 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"message": "m1", "title": "t"}', "m1"),
        (b'{"title": "Forbidden thing", "status": 400}', "Forbidden thing"),
        (b'{"title": "", "error": "e1"}', "e1"),
        (b'{"detail": "d1"}', "d1"),
        (b"plain words", "plain words"),
    ],
)
def test_error_body_shapes(body: bytes, expected: str) -> None:
    assert expected in intx.error_text(httpx.Response(400, content=body))


async def test_rate_limit_of_forty_per_second_is_respected(sim: Simulator, web: httpx.AsyncClient) -> None:
    import asyncio

    client = intx_for(sim, web)
    started = time.monotonic()
    await asyncio.gather(*(client.portfolios() for _ in range(60)))
    assert time.monotonic() - started >= 0.9  # the 41st request waited for the window
    assert sim.count("intx", verdict="rate-limited") == 0


async def test_rate_limited_by_venue_when_client_limit_is_lifted(sim: Simulator, web: httpx.AsyncClient) -> None:
    import asyncio

    client = intx_for(sim, web)
    client.rate = intx.RequestRate(limit=1000)
    results = await asyncio.gather(*(client.portfolios() for _ in range(60)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, VenueError)]
    assert errors and all(e.kind is ErrorKind.RATE_LIMIT for e in errors)
    assert "100 per second" in errors[0].message


def test_a_balance_s_labels_are_interned() -> None:
    """Issue 24 (RSS): the same asset id, name and uuid in every portfolio's answer are one string each."""
    answer = loads(b'[{"asset_id": "1", "asset_name": "BTC", "asset_uuid": "u-1", "quantity": "1"}]')
    again = loads(b'[{"asset_id": "1", "asset_name": "BTC", "asset_uuid": "u-1", "quantity": "2"}]')
    one, two = parse_balance(answer[0], "balances"), parse_balance(again[0], "balances")
    assert one.labels == {"asset_id": "1", "asset_name": "BTC", "asset_uuid": "u-1"}
    assert all(one.labels[name] is two.labels[name] for name in one.labels)
    assert one.asset is two.asset
