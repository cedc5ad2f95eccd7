"""The published vectors, through our signers and through the simulator's independent verifier."""

from __future__ import annotations

import base64
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.sim.verify import intx_signature_ok, kraken_signature_ok
from tui.venues import intx, kraken

KRAKEN_SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
NONCE = 1616492376594
SPOT_PATH = "/0/private/AddOrder"
SPOT_BODY = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
SPOT_SIGN = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
CUSTODY_PATH = "/0/private/GetCustodyTask?id=TGWOJ4JQPOTZT2"
CUSTODY_BODY = b'{"nonce":1616492376594}'
CUSTODY_SIGN = "2rM09q8HG7LvjivBitQUybwZ/DSeO8+i0U/at/wclH2Jma6gMaE/0Nw9dyLR+ykMd5eWCngSL4K58i6uJzXDCw=="
INTX_SECRET = "dGVzdF9zZWNyZXRfYmFzZTY0"
INTX_SIGN = "h/9tnYzD/nsEbH1sV7dkB5uJ3Vygr4TjmOOxJNQB8ts="


def test_kraken_spot_vector() -> None:
    assert kraken.sign(KRAKEN_SECRET, SPOT_PATH, NONCE, SPOT_BODY) == SPOT_SIGN


def test_kraken_custody_json_vector() -> None:
    body = kraken.encode_body({"nonce": NONCE})
    assert body == CUSTODY_BODY
    assert kraken.sign(KRAKEN_SECRET, CUSTODY_PATH, NONCE, body) == CUSTODY_SIGN


def test_intx_vector() -> None:
    assert intx.sign(INTX_SECRET, "1641890400", "GET", "/api/v1/fee-rate-tiers", "") == INTX_SIGN


def test_simulator_verifier_accepts_the_vectors() -> None:
    assert kraken_signature_ok(KRAKEN_SECRET, SPOT_PATH, str(NONCE), SPOT_BODY, SPOT_SIGN)
    assert kraken_signature_ok(KRAKEN_SECRET, CUSTODY_PATH, str(NONCE), CUSTODY_BODY, CUSTODY_SIGN)
    assert intx_signature_ok(INTX_SECRET, "1641890400", "GET", "/api/v1/fee-rate-tiers", b"", INTX_SIGN)


def flip_bit(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def flip_b64(text: str, bit: int) -> str:
    return base64.b64encode(flip_bit(base64.b64decode(text), bit)).decode()


@pytest.mark.parametrize("bit", [0, 7, 100, 511])
def test_simulator_rejects_a_one_bit_change_of_each_kraken_input(bit: int) -> None:
    for path, body, sign in ((SPOT_PATH, SPOT_BODY, SPOT_SIGN), (CUSTODY_PATH, CUSTODY_BODY, CUSTODY_SIGN)):
        b = bit % (len(body) * 8)
        assert not kraken_signature_ok(KRAKEN_SECRET, path, str(NONCE), body, flip_b64(sign, bit))
        assert not kraken_signature_ok(KRAKEN_SECRET, path, str(NONCE), flip_bit(body, b), sign)
        assert not kraken_signature_ok(flip_b64(KRAKEN_SECRET, bit), path, str(NONCE), body, sign)
        p = flip_bit(path.encode(), bit % (len(path) * 8)).decode("latin-1")
        assert not kraken_signature_ok(KRAKEN_SECRET, p, str(NONCE), body, sign)
        assert not kraken_signature_ok(KRAKEN_SECRET, path, str(NONCE ^ 1), body, sign)


@pytest.mark.parametrize("bit", [0, 7, 100, 255])
def test_simulator_rejects_a_one_bit_change_of_each_intx_input(bit: int) -> None:
    path = "/api/v1/fee-rate-tiers"
    assert not intx_signature_ok(INTX_SECRET, "1641890400", "GET", path, b"", flip_b64(INTX_SIGN, bit))
    assert not intx_signature_ok(flip_b64(INTX_SECRET, bit % 136), "1641890400", "GET", path, b"", INTX_SIGN)
    ts = flip_bit(b"1641890400", bit % 80).decode("latin-1")
    assert not intx_signature_ok(INTX_SECRET, ts, "GET", path, b"", INTX_SIGN)
    p = flip_bit(path.encode(), bit % (len(path) * 8)).decode("latin-1")
    assert not intx_signature_ok(INTX_SECRET, "1641890400", "GET", p, b"", INTX_SIGN)
    assert not intx_signature_ok(INTX_SECRET, "1641890400", "GEt", path, b"", INTX_SIGN)


def test_undecoded_secret_signature_differs_from_the_rule() -> None:
    """intx-sdk-ts HMACs with the base64 text itself: the simulator must not accept that."""
    import hashlib
    import hmac

    wrong = base64.b64encode(
        hmac.new(INTX_SECRET.encode(), b"1641890400GET/api/v1/fee-rate-tiers", hashlib.sha256).digest()
    ).decode()
    assert not intx_signature_ok(INTX_SECRET, "1641890400", "GET", "/api/v1/fee-rate-tiers", b"", wrong)


@given(
    timestamp=st.integers(min_value=0, max_value=10**11).map(str),
    method=st.sampled_from(["GET", "get", "POST", "DELETE"]),
    path=st.from_regex(r"/api/v1/[a-z0-9/_-]{0,40}", fullmatch=True),
    body=st.text(max_size=200),
)
def test_intx_signs_exactly_what_the_docs_say_for_any_request(
    timestamp: str, method: str, path: str, body: str
) -> None:
    """HMAC-SHA256 over timestamp + METHOD + path + body, keyed by the decoded secret (reference/venues.md), for
    any body too: the one published vector has an empty one, which a signer leaving the body out also meets."""
    expected = hmac.new(base64.b64decode(INTX_SECRET), f"{timestamp}{method.upper()}{path}{body}".encode(), "sha256")
    assert intx.sign(INTX_SECRET, timestamp, method, path, body) == base64.b64encode(expected.digest()).decode()
