"""Who may read `serve`: where it listens, and the bearer token every request carries when it has one.

Loopback needs no token (only this machine can connect); any other address needs one, read from a file
kept as private as the venues' secret files. The token is a `Secret`: remembered for redaction, never
printed.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from tui.config import is_loopback
from tui.credentials import CredentialError, Secret, SecretSource, load_secret, remember

DEFAULT_LISTEN = "127.0.0.1:8765"
MIN_TOKEN = 32  # characters; token_urlsafe(32) gives 43 (256 random bits)
MAKE_TOKEN = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > token; chmod 600 token"


class AccessError(ValueError):
    """A listen address or token the server cannot start with: one line, saying what to do."""


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:8765` for IPv6) as (host, port)."""
    host, colon, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise AccessError(
            f"--listen {text!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN} (0.0.0.0:8765 for every interface)"
        )
    return host, int(port)


def addressed_locally(host_header: str | None) -> bool:
    """Whether a request's Host names this machine by a loopback name. Without a token, a loopback server
    answers only these: a web page that rebinds its own domain to 127.0.0.1 (DNS rebinding) sends its own
    domain as the Host, and is refused."""
    host = (host_header or "").strip()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return bool(host) and is_loopback(host)


def same_origin(origin: str | None, host_header: str | None) -> bool:
    """Whether a browser's Origin (absent when not a browser) is the page's own host: a page of another site
    opening a WebSocket or fetching from here is refused."""
    if origin is None:
        return True
    scheme, _, rest = origin.partition("://")
    return scheme in ("http", "https") and rest == (host_header or "").strip() and addressed_locally(rest)


def read_token(path: Path) -> Secret:
    """The token in `path`, stripped; the file must be private (chmod 600) and the token long enough that
    guessing it is hopeless (MIN_TOKEN characters)."""
    try:
        token = load_secret(SecretSource("file", str(path.expanduser())))
    except CredentialError as exc:
        raise AccessError(f"--token-file: {exc}") from None
    remember(token.reveal())  # already remembered by Secret; said here because it matters
    if len(token.reveal()) < MIN_TOKEN:
        raise AccessError(
            f"--token-file {path}: the token is {len(token.reveal())} characters, and at least {MIN_TOKEN} are "
            f"needed. Make one: {MAKE_TOKEN}"
        )
    return token


def require_token(host: str, token: Secret | None) -> None:
    if token is None and not is_loopback(host):
        raise AccessError(
            f"refusing to listen on {host} without a token: other machines could read every balance. "
            f"Pass --token-file PATH (a file holding a long random token: {MAKE_TOKEN}), or listen on 127.0.0.1"
        )


def authorized(header: str | None, token: Secret) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time. A header that is not UTF-8 (aiohttp keeps
    such bytes as lone surrogates) is compared as the bytes it was: never equal, never an error."""
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.reveal().encode())
