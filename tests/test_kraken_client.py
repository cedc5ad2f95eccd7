"""The Kraken custody client over real HTTP against the simulator."""

from __future__ import annotations

import asyncio
import itertools
import json
from decimal import Decimal

import httpx
import pytest

from tests.conftest import kraken_for
from tui.sim import Simulator
from tui.venues import http
from tui.venues.errors import ErrorKind, VenueError
from tui.venues.kraken import CustodyCounter, KrakenCustodyClient, read_payload
from tui.venues.nonces import NonceSource


def first_vault(sim: Simulator) -> str:
    return next(iter(sim.market.vaults))


def assert_clean(err: VenueError, sim: Simulator) -> None:
    text = f"{err} {err!r}"
    assert sim.kraken_keys.api_secret not in text
    assert sim.kraken_keys.api_key not in text
    assert "API-Sign" not in text


@pytest.mark.parametrize("numbers", [False, True], ids=["strings", "json-numbers"])
async def test_exact_decimals_come_out_digit_for_digit(sim: Simulator, web: httpx.AsyncClient, numbers: bool) -> None:
    sim.kraken_numbers = numbers
    vault = first_vault(sim)
    sim.market.set_kraken(vault, "XBT", "100.000000000000000001", "0.000000000000000001")
    sim.market.set_kraken(vault, "ETH", "12345678901234567890.123456789", "0.5")
    client = kraken_for(sim, web)
    balances = {b.asset: b for b in await client.balances(vault)}
    xbt, eth = balances["XBT"], balances["ETH"]
    assert str(xbt.amount("balance")) == "100.000000000000000001"
    assert str(xbt.amount("available")) == "100.000000000000000000"
    assert str(eth.amount("balance")) == "12345678901234567890.123456789"
    # 30 significant digits: the default 28-digit context would have rounded this
    assert str(eth.amount("available")) == "12345678901234567889.623456789"
    assert xbt.as_record()["balance"] == "100.000000000000000001"


async def test_list_vaults_follows_pagination() -> None:
    with Simulator(seed=3, vaults=8) as sim:
        async with http.new_client(sim.url) as web:
            vaults = await kraken_for(sim, web).list_vaults(page_size=3)
        assert [v.id for v in vaults] == list(sim.market.vaults)
        assert [v.name for v in vaults][:2] == ["Treasury", "Cold storage"]
        assert sim.count("kraken", "ListCustodyVaults", "ok") == 3


async def test_fifty_concurrent_calls_arrive_with_strictly_increasing_nonces(
    sim: Simulator, web: httpx.AsyncClient
) -> None:
    sim.kraken_rate_limit = False
    client = kraken_for(sim, web, counter=CustodyCounter(limit=10_000))
    vault = first_vault(sim)
    results = await asyncio.gather(*(client.balances(vault) for _ in range(50)))
    assert all(results)
    log = sim.nonce_log()
    assert len(log) == 50
    assert all(a < b for a, b in itertools.pairwise(log))
    assert sim.count("kraken", verdict="bad-nonce") == 0


async def test_invalid_vault_id_is_refused_before_any_request(sim: Simulator, web: httpx.AsyncClient) -> None:
    with pytest.raises(VenueError) as caught:
        await kraken_for(sim, web).balances("VNOTAVAULT")
    assert caught.value.kind is ErrorKind.REQUEST
    assert not caught.value.retryable
    assert sim.count() == 0


async def test_wrong_key(sim: Simulator, web: httpx.AsyncClient) -> None:
    with pytest.raises(VenueError) as caught:
        await kraken_for(sim, web, key="someone-else").balances(first_vault(sim))
    assert caught.value.kind is ErrorKind.AUTH and not caught.value.retryable
    assert "Invalid key" in caught.value.message
    assert_clean(caught.value, sim)


async def test_wrong_secret_is_a_signature_error(sim: Simulator, web: httpx.AsyncClient) -> None:
    wrong = "A" * 86 + "=="
    with pytest.raises(VenueError) as caught:
        await kraken_for(sim, web, secret=wrong).balances(first_vault(sim))
    assert caught.value.kind is ErrorKind.SIGNATURE
    assert "check the API secret" in caught.value.message
    assert wrong not in str(caught.value)
    assert sim.count("kraken", verdict="bad-signature") == 1


async def test_secret_that_is_not_base64_is_refused_without_echoing_it(sim: Simulator, web: httpx.AsyncClient) -> None:
    with pytest.raises(VenueError) as caught:
        kraken_for(sim, web, secret="not base64 at all!!")
    assert caught.value.kind is ErrorKind.SIGNATURE
    assert "not base64 at all" not in str(caught.value)


async def test_nonce_going_backwards_is_a_nonce_error(sim: Simulator, web: httpx.AsyncClient) -> None:
    await kraken_for(sim, web).balances(first_vault(sim))
    stale = KrakenCustodyClient(web, *_secrets(sim), nonces=NonceSource(clock=lambda: 1000))
    with pytest.raises(VenueError) as caught:
        await stale.balances(first_vault(sim))
    assert caught.value.kind is ErrorKind.NONCE and caught.value.retryable
    assert "another program" in caught.value.message


async def test_eleventh_call_is_rate_limited_unless_the_counter_holds_it_back(
    sim: Simulator, web: httpx.AsyncClient
) -> None:
    careless = kraken_for(sim, web, counter=CustodyCounter(limit=100))
    for _ in range(10):
        await careless.balances(first_vault(sim))
    with pytest.raises(VenueError) as caught:
        await careless.balances(first_vault(sim))
    assert caught.value.kind is ErrorKind.RATE_LIMIT
    assert caught.value.retry_after is not None and caught.value.retry_after >= 10
    # our own counter model knows it must now wait a whole window
    assert careless.counter.delay_for(1) >= 10


def test_custody_counter_model() -> None:
    now = [0.0]
    counter = CustodyCounter(limit=10, window=10.0, margin=0.5, clock=lambda: now[0])
    for i in range(10):
        now[0] = i * 1.0
        assert counter.delay_for(1) == 0
        counter.record()
    assert counter.delay_for(1) == pytest.approx(10.5)  # last call at 9 s: free at 19.5 s
    now[0] = 19.5
    assert counter.level() == 0 and counter.delay_for(10) == 0
    counter.record()
    assert counter.delay_for(10) == pytest.approx(10.5)
    now[0] = 21.5  # that call's answer took two seconds: the venue may have counted it just now
    counter.settle()
    assert counter.delay_for(10) == pytest.approx(10.5)  # free at 32 s, not at 30 s


async def test_a_slow_answer_does_not_let_the_next_call_cross_the_venues_counter(
    sim: Simulator, web: httpx.AsyncClient
) -> None:
    """The simulator counts a call when it handles it, here 1.5 s after it was sent (as a distant or
    loaded venue would): the wait for the eleventh call must start from the tenth's answer."""
    client = kraken_for(sim, web)
    for _ in range(9):
        await client.balances(first_vault(sim))
    sim.faults.set("latency", venue="kraken", value=1.5)
    await client.balances(first_vault(sim))  # the tenth: the counter is full once the venue counts it
    sim.faults.clear()  # the eleventh is counted as soon as it is sent
    await client.balances(first_vault(sim))  # and must wait for ten seconds of silence, as counted there
    assert sim.count("kraken", "GetCustodyBalance", "ok") == 11
    assert sim.count("kraken", "GetCustodyBalance", "rate-limited") == 0


@pytest.mark.parametrize(
    ("message", "kind", "retry_after"),
    [
        ("EGeneral:Temporary lockout", ErrorKind.LOCKOUT, 900.0),
        ("EGeneral:Permission denied", ErrorKind.PERMISSION, None),
        ("EAPI:Rate limit exceeded", ErrorKind.RATE_LIMIT, 10.0),
        ("EGeneral:Too many requests", ErrorKind.RATE_LIMIT, 10.0),
        ("EService:Unavailable", ErrorKind.SERVER, None),
        ("EQuery:Something new", ErrorKind.VENUE, None),
    ],
)
async def test_error_strings_in_a_200(
    sim: Simulator, web: httpx.AsyncClient, message: str, kind: ErrorKind, retry_after: float | None
) -> None:
    sim.faults.set("kraken-error", venue="kraken", value=message)
    with pytest.raises(VenueError) as caught:
        await kraken_for(sim, web).balances(first_vault(sim))
    assert caught.value.kind is kind
    assert caught.value.retry_after == retry_after
    assert message in caught.value.message


async def test_throttled_until_a_timestamp(sim: Simulator, web: httpx.AsyncClient) -> None:
    import time

    sim.faults.set("kraken-error", venue="kraken", value=f"EService:Throttled: {int(time.time()) + 42}")
    with pytest.raises(VenueError) as caught:
        await kraken_for(sim, web).balances(first_vault(sim))
    assert caught.value.kind is ErrorKind.RATE_LIMIT
    assert 40 <= (caught.value.retry_after or 0) <= 43


def test_warnings_are_not_failures_and_both_error_keys_and_item_forms_are_read() -> None:
    from tui.venues.kraken import read_payload

    def answer(payload: object) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(payload).encode())

    warn = {"severity": "W", "errorClass": "EGeneral", "type": "Deprecated", "errorMessage": "old"}
    assert read_payload(answer({"error": [warn], "result": {"ok": 1}}), "X")["result"] == {"ok": 1}
    obj = {"severity": "E", "errorClass": "EAPI", "type": "InvalidNonce", "errorMessage": "Invalid nonce"}
    for payload in ({"errors": [obj], "result": None}, {"error": ["EAPI:Invalid nonce"]}):
        with pytest.raises(VenueError) as caught:
            read_payload(answer(payload), "X")
        assert caught.value.kind is ErrorKind.NONCE


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("http-5xx", ErrorKind.SERVER),
        ("429", ErrorKind.RATE_LIMIT),
        ("html", ErrorKind.SERVER),
        ("truncated", ErrorKind.BAD_RESPONSE),
        ("reset", ErrorKind.UNREACHABLE),
    ],
)
async def test_transport_and_http_faults(sim: Simulator, web: httpx.AsyncClient, fault: str, kind: ErrorKind) -> None:
    sim.faults.set(fault, venue="kraken")
    with pytest.raises(VenueError) as caught:
        await kraken_for(sim, web).balances(first_vault(sim))
    assert caught.value.kind is kind
    assert caught.value.retryable
    assert_clean(caught.value, sim)


async def test_hang_is_a_timeout(sim: Simulator) -> None:
    sim.faults.set("hang", venue="kraken")
    async with http.new_client(sim.url, timeout=httpx.Timeout(0.5)) as web:
        with pytest.raises(VenueError) as caught:
            await kraken_for(sim, web).balances(first_vault(sim))
    assert caught.value.kind is ErrorKind.TIMEOUT


async def test_unreachable_host() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with http.new_client(f"http://127.0.0.1:{port}") as web:
        client = KrakenCustodyClient(web, *_secrets_plain())
        with pytest.raises(VenueError) as caught:
            await client.balances("VN2F7NJJWKJHI2")
    assert caught.value.kind is ErrorKind.UNREACHABLE
    assert "127.0.0.1" in caught.value.message


async def test_empty_result_is_an_empty_list(sim: Simulator, web: httpx.AsyncClient) -> None:
    sim.faults.set("empty", venue="kraken")
    assert await kraken_for(sim, web).balances(first_vault(sim)) == []


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2],
        {"result": []},
        {"result": {"XBT": "12"}},
        {"result": {"XBT": {"balance": "abc"}}},
        {"result": {"XBT": {"balance": "1e999999"}}},  # would make every product with it raise
        {"result": {"XBT": {"balance": True}}},
        {"error": 5},
        {"nothing": 1},
    ],
)
def test_wrong_shapes_are_bad_responses(payload: object) -> None:
    from tui.venues.kraken import parse_balances, read_payload

    with pytest.raises(VenueError) as caught:
        parse_balances(
            read_payload(httpx.Response(200, content=json.dumps(payload).encode()), "GetCustodyBalance")["result"]
        )
    assert caught.value.kind in (ErrorKind.BAD_RESPONSE, ErrorKind.VENUE)


def _secrets(sim: Simulator) -> tuple[object, object]:
    from tui.credentials import Secret

    return Secret(sim.kraken_keys.api_key), Secret(sim.kraken_keys.api_secret)


def _secrets_plain() -> tuple[object, object]:
    from tui.credentials import Secret

    return Secret("k"), Secret("c2VjcmV0")


def test_json_number_amounts_are_exact() -> None:
    from tui.venues.kraken import parse_balances, read_payload

    raw = b'{"error":[],"result":{"XBT":{"balance":12345678901234567890.123456789,"hold_trade":1}}}'
    [balance] = parse_balances(read_payload(httpx.Response(200, content=raw), "GetCustodyBalance")["result"])
    assert balance.amount("balance") == Decimal("12345678901234567890.123456789")
    assert str(balance.amount("available")) == "12345678901234567889.123456789"


@pytest.mark.parametrize("page_cap", [1000, 25], ids=["one-page", "venue-pages-by-25"])
async def test_discovery_finds_every_vault_however_the_venue_pages(page_cap: int) -> None:
    """ListCustodyVaults as documented: `result` is the list, `total` stands beside it."""
    with Simulator(seed=5, vaults=150, assets=3, assets_per_account=1) as sim:
        sim.set_kraken_page_cap(page_cap)
        async with http.new_client(sim.url) as web:
            vaults = await kraken_for(sim, web).discover()
        assert [v.id for v in vaults] == list(sim.market.vaults)
        assert len(vaults) == 150
        assert sim.count("kraken", "ListCustodyVaults", "ok") == -(-150 // page_cap)


async def test_vault_details_give_each_asset_its_documented_value(sim: Simulator, web: httpx.AsyncClient) -> None:
    vault = first_vault(sim)
    for asset in list(sim.market.vaults[vault].holdings):
        sim.market.remove_kraken(vault, asset)
    sim.market.set_kraken(vault, "XBT", "2", "0.5")  # 97250.10 USD each in the simulated market
    sim.market.set_kraken(vault, "ETH", "10", "0")  # 3412.55 USD each
    details = await kraken_for(sim, web).vault(vault)
    assert details.assets["XBT"].usd_price == Decimal("97250.10")
    assert details.assets["XBT"].usd_value == Decimal("194500.20")
    assert details.assets["XBT"].available_quantity == Decimal("1.5")
    assert details.share("XBT") == (Decimal("194500.20"), Decimal("194500.20") + Decimal("34125.50"))


@pytest.mark.parametrize(
    "kind",
    ["InvalidNonce", "INVALID_NONCE", "invalid-nonce", "invalid nonce", "Invalid_Nonce"],
)
def test_an_error_with_a_null_message_is_known_by_its_type_whatever_its_case(kind: str) -> None:
    from tui.venues.kraken import read_payload

    item = {"severity": "E", "errorClass": "EAPI", "type": kind, "errorMessage": None}
    with pytest.raises(VenueError) as caught:
        read_payload(httpx.Response(200, content=json.dumps({"errors": [item], "result": None}).encode()), "X")
    assert caught.value.kind is ErrorKind.NONCE
    assert "EAPI:invalid nonce" in caught.value.message


async def test_null_messages_still_mean_nonce_and_rate_limit_over_http(sim: Simulator, web: httpx.AsyncClient) -> None:
    sim.kraken_null_messages = True
    await kraken_for(sim, web).balances(first_vault(sim))
    stale = KrakenCustodyClient(web, *_secrets(sim), nonces=NonceSource(clock=lambda: 1000))
    with pytest.raises(VenueError) as nonce:
        await stale.balances(first_vault(sim))
    assert nonce.value.kind is ErrorKind.NONCE
    assert "give balance-tui a key of its own" in nonce.value.message
    careless = kraken_for(sim, web, counter=CustodyCounter(limit=100))
    with pytest.raises(VenueError) as limited:
        for _ in range(11):
            await careless.balances(first_vault(sim))
    assert limited.value.kind is ErrorKind.RATE_LIMIT and (limited.value.retry_after or 0) >= 10
    assert careless.counter.delay_for(1) >= 10  # so the engine backs off instead of hammering


async def test_a_vault_list_that_stops_short_of_its_total_is_an_error_not_a_smaller_list() -> None:
    """A venue that ignores the offset keeps answering the first page: 3 of the 7 it announces."""
    first_page = [{"id": f"V{c * 12}A", "name": c} for c in "ABC"]
    calls = []

    def venue(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content)["pagination"])
        return httpx.Response(200, json={"result": first_page, "errors": [], "start": 1, "total": "7"})

    async with httpx.AsyncClient(base_url="http://venue.test", transport=httpx.MockTransport(venue)) as web:
        client = KrakenCustodyClient(web, *_secrets_plain(), nonces=NonceSource())
        with pytest.raises(VenueError) as caught:
            await client.discover()
    assert caught.value.kind is ErrorKind.BAD_RESPONSE
    assert "announced 7 vaults but listed 3" in caught.value.message
    assert [c["offset"] for c in calls] == [0, 3]


@pytest.mark.parametrize(
    ("cls", "kind", "expected"),
    [
        ("EAPI", "InvalidAPIKey", ErrorKind.AUTH),
        ("EAPI", "RateLimitExceeded", ErrorKind.RATE_LIMIT),
        ("EGeneral", "TemporaryLockout", ErrorKind.LOCKOUT),
        ("EGeneral", "Invalid", ErrorKind.VENUE),  # "invalid" and a class or type ending in "key" is no key error
    ],
)
def test_null_message_types_in_any_spelling(cls: str, kind: str, expected: ErrorKind) -> None:
    item = {"severity": "E", "errorClass": cls, "type": kind, "errorMessage": None}
    body = json.dumps({"error": [item], "result": None}).encode()
    with pytest.raises(VenueError) as caught:
        read_payload(httpx.Response(200, content=body), "X")
    assert caught.value.kind is expected
