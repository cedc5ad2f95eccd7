"""TLS for `serve` and its viewers: the server's context from a certificate and key, and the one client
context every viewer in this process shares (building one loads the CA store: about 20 ms, paid once).

Viewers verify the server always: against the system's CA store, or against `--ca-file` for a desk's private
CA. Every failure is a `TLSError`: one line, saying which file and what to do.
"""

from __future__ import annotations

import re
import ssl
import threading
from pathlib import Path

_lock = threading.Lock()
_client: ssl.SSLContext | None = None
_trusted: Path | None = None


class TLSError(ValueError):
    """A certificate, key or CA file that cannot be used: one line, naming the file and what to do."""


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The context `serve --tls-cert --tls-key` listens with (TLS 1.2 at least). An encrypted key is refused:
    OpenSSL would otherwise ask for its passphrase on the terminal of a service that has none."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for flag, path, what, marker in (
        ("--tls-cert", cert, "certificate", "-----BEGIN CERTIFICATE-----"),
        ("--tls-key", key, "private key", "PRIVATE KEY-----"),
    ):
        _pem(flag, path, what, marker)
    asked: list[bool] = []

    def passphrase() -> bytes:
        asked.append(True)
        return b""

    try:
        context.load_cert_chain(cert, key, password=passphrase)
    except ssl.SSLError as exc:
        if asked:
            raise TLSError(
                f"--tls-key {key} is encrypted: serve cannot ask for its passphrase; decrypt it "
                f"(openssl pkey -in {key} -out KEY.pem, then chmod 600 KEY.pem)"
            ) from None
        raise TLSError(
            f"--tls-cert {cert} / --tls-key {key}: {_reason(exc)}: give the server's certificate (PEM, its chain "
            "after it) and the private key that goes with it"
        ) from None
    except OSError as exc:
        raise TLSError(f"--tls-cert {cert} / --tls-key {key}: {exc.strerror or exc}") from None
    return context


def _pem(flag: str, path: Path, what: str, marker: str) -> None:
    """`path` is a readable file holding a PEM `what` (found by its `marker`), or a TLSError saying so."""
    if not path.is_file():
        state = "does not exist" if not path.exists() else "is not a file"
        raise TLSError(f"{flag} {path} {state}: give the PEM file of the server's {what}")
    try:
        with path.open("rb") as pem:
            text = pem.read(1 << 20)
    except OSError as exc:
        raise TLSError(f"{flag} {path}: {exc.strerror or exc}") from None
    if marker.encode() not in text:
        raise TLSError(f"{flag} {path} holds no PEM {what} (a {marker.strip('-')} block): give the server's {what}")


def trust(ca_file: Path | None) -> None:
    """Make the shared client context trust only `ca_file` (a desk's private CA, PEM), or the system's CA
    store when None. Called once, by the command line, before any viewer connects."""
    global _client, _trusted
    context = _build(ca_file) if ca_file is not None else None
    with _lock:
        _client, _trusted = context, ca_file


def client_context() -> ssl.SSLContext:
    """The one context every viewer's HTTP client uses: the one `trust` made for a CA file, else the system's
    CA store, built on first use."""
    global _client
    with _lock:
        if _client is None:
            _client = _build(None)
        return _client


def trusted() -> Path | None:
    """The CA file viewers trust, if any (a browser session started by `web` is told the same)."""
    return _trusted


def _build(ca_file: Path | None) -> ssl.SSLContext:
    if ca_file is None:
        return ssl.create_default_context()
    if not ca_file.is_file():
        what = "does not exist" if not ca_file.exists() else "is not a file"
        raise TLSError(f"--ca-file {ca_file} {what}: give the PEM certificate of the CA that signed the server's")
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except ssl.SSLError as exc:
        raise TLSError(f"--ca-file {ca_file}: {_reason(exc)}: give a CA certificate in PEM form") from None
    except OSError as exc:
        raise TLSError(f"--ca-file {ca_file}: {exc.strerror or exc}") from None


def unverified(exc: BaseException | None) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind `exc` (httpx wraps it twice), if that is what it was."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def tls_failure(exc: BaseException | None) -> ssl.SSLError | None:
    """Any TLS failure behind `exc` (a plain-HTTP server answering a TLS hello, say)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ssl.SSLError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _reason(exc: ssl.SSLError) -> str:
    """OpenSSL's reason in words, without its source position: `KEY_VALUES_MISMATCH` -> `key values mismatch`,
    `[SSL] PEM lib (_ssl.c:3900)` -> `PEM lib`."""
    text = str(exc.reason or exc.strerror or exc)
    text = re.sub(r"^\[\w+\]\s*|\s*\(_ssl\.c:\d+\)$", "", text)
    return text.replace("_", " ").lower() if text.isupper() else text
