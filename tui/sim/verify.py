"""What the venues verify, written independently of the clients' signers.

Shares no code with `tui.venues`: the simulator is the referee, and a referee that calls the player's
own function to check the player would prove nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from hashlib import new as new_hash


def _key(secret_b64: str) -> bytes | None:
    try:
        return base64.b64decode(secret_b64.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def _matches(expected: bytes, presented: str) -> bool:
    try:
        given = base64.b64decode(presented.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
    return hmac.compare_digest(expected, given)


def kraken_signature_ok(secret_b64: str, uri_path: str, nonce: str, body: bytes, presented: str) -> bool:
    """HMAC-SHA512 over uri_path ‖ SHA-256(nonce ‖ body), keyed by the decoded secret."""
    key = _key(secret_b64)
    if key is None:
        return False
    inner = new_hash("sha256")
    inner.update(nonce.encode("utf-8", "surrogateescape"))
    inner.update(body)
    outer = hmac.HMAC(key, digestmod="sha512")
    outer.update(uri_path.encode("utf-8", "surrogateescape"))
    outer.update(inner.digest())
    return _matches(outer.digest(), presented)


def intx_signature_ok(
    secret_b64: str, timestamp: str, method: str, request_path: str, body: bytes, presented: str
) -> bool:
    """HMAC-SHA256 over timestamp ‖ METHOD ‖ path ‖ body, keyed by the decoded secret."""
    key = _key(secret_b64)
    if key is None:
        return False
    mac = hmac.HMAC(key, digestmod="sha256")
    for part in (
        timestamp.encode("utf-8", "surrogateescape"),
        method.encode("utf-8", "surrogateescape"),
        request_path.encode("utf-8", "surrogateescape"),
        body,
    ):
        mac.update(part)
    return _matches(mac.digest(), presented)
