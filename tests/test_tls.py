"""`serve --tls-cert --tls-key` speaks HTTPS and every viewer verifies it: --once, --watch and `web`, against
a desk's own CA passed with --ca-file (made here with the `openssl` command). A certificate the viewer cannot
verify, a bad certificate or key file, are one line each; off loopback without TLS, `serve` says once that
the token and balances cross the network in clear text. Real processes, real TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import pytest

from tests.conftest import run_cli, start_cli, write_config
from tests.test_attach import PATIENCE, free_port
from tests.test_flood import closed_by_server
from tests.test_serve import Served
from tests.test_web import ANSI
from tui.sim import Simulator
from tui.tls import server_context

OPENSSL = shutil.which("openssl")
TOKEN = "tls-t0ken-8d6f4b2a0c9e7d5b3a1f2e4c"


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path  # a CA that signed nothing of this server's


def openssl(*args: str | Path, cwd: Path) -> None:
    if OPENSSL is None:
        pytest.fail("the openssl command is required for the TLS tests (apt install openssl)")
    done = subprocess.run([OPENSSL, *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-keyout", key, "-out", cert, "-subj", f"/CN={name}", cwd=folder)  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A desk's CA, and the server's certificate it signed for 127.0.0.1 and localhost (with the extensions a
    strict verifier asks for)."""
    folder = tmp_path_factory.mktemp("pki")
    ca, ca_key = make_ca(folder, "desk-ca")
    other, _ = make_ca(folder, "other-ca")
    (folder / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n"
    )
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=balance-tui", cwd=folder)  # fmt: skip
    openssl("x509", "-req", "-in", "server.csr", "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
            "-extfile", "server.ext", "-out", "server.pem", cwd=folder)  # fmt: skip
    return Pki(ca, folder / "server.pem", folder / "server.key", other)


class TlsServer:
    """`balance-tui serve` with TLS in its own process."""

    def __init__(self, config: Path, pki: Pki, *extra: str, listen: str | None = None) -> None:
        self.proc = start_cli("serve", "--config", str(config), "--listen", listen or f"127.0.0.1:{free_port()}",
                              "--tls-cert", str(pki.cert), "--tls-key", str(pki.key), *extra)  # fmt: skip
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert "listening on https://" in first, first + self.proc.communicate()[1]
        self.url = first.rsplit(" ", 1)[-1].strip()

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=PATIENCE)
        assert self.proc.returncode == 0, err
        return err


@pytest.fixture
def served(sim_config: Path, pki: Pki) -> Iterator[TlsServer]:
    server = TlsServer(sim_config, pki)
    yield server
    assert "Traceback" not in server.stop()


def test_tls_end_to_end_with_the_desks_ca(served: TlsServer, pki: Pki, sim: Simulator) -> None:
    url, ca = served.url, str(pki.ca)
    deadline = time.monotonic() + PATIENCE
    while True:  # until the server has polled every venue once
        once = run_cli("--attach", url, "--ca-file", ca, "--once", "--format", "json")
        assert once.returncode in (0, 1), once.stderr
        doc = json.loads(once.stdout)
        if all(v["fetched_at"] for v in doc["venues"]) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert once.returncode == 0, once.stderr
    held = sum(len(p.holdings) for p in sim.market.portfolios.values())
    assert sum(len(a["balances"]) for a in doc["venues"][1]["accounts"]) == held
    watch = start_cli("--attach", url, "--ca-file", ca, "--watch")
    try:
        assert watch.stdout is not None
        assert json.loads(watch.stdout.readline())["event"] == "new"
    finally:
        watch.terminate()
        _, err = watch.communicate(timeout=PATIENCE)
    assert watch.returncode == 0 and "Traceback" not in err, err
    trusting = ssl.create_default_context(cafile=str(pki.ca))
    assert httpx.get(url + "/healthz", verify=trusting, timeout=PATIENCE).status_code == 200


def test_a_certificate_the_viewer_cannot_verify_is_one_line_naming_ca_file(served: TlsServer, pki: Pki) -> None:
    for args in ((), ("--ca-file", str(pki.other_ca))):
        for mode in (("--once",), ("--watch",), ()):
            done = run_cli("--attach", served.url, *args, *mode, timeout=PATIENCE)
            assert done.returncode == 2, (args, mode, done.stderr)
            assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
            assert "certificate this viewer cannot verify" in done.stderr and "--ca-file" in done.stderr
    plain = run_cli("--attach", served.url.replace("https:", "http:"), "--once")
    assert plain.returncode == 1 and "attach to https://" in plain.stderr and plain.stderr.count("\n") == 1


def test_web_verifies_the_server_as_the_terminal_does(served: TlsServer, pki: Pki) -> None:
    port = free_port()
    refused = run_cli("web", "--attach", served.url, "--listen", f"127.0.0.1:{port}")
    assert refused.returncode == 2 and "--ca-file" in refused.stderr and refused.stderr.count("\n") == 1
    web = start_cli("web", "--attach", served.url, "--ca-file", str(pki.ca), "--listen", f"127.0.0.1:{port}")
    try:
        assert web.stdout is not None
        assert web.stdout.readline().startswith(f"balance-tui web on http://127.0.0.1:{port}/")  # its check passed
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and web.poll() is None, "web did not start"
                time.sleep(0.1)
        assert page.status_code == 200
        # a session is its own `balance-tui --attach`: it verifies the server too, and shows the balances
        assert "Kraken custody (simulated)" in asyncio.run(session_screen(port, "Kraken custody (simulated)"))
    finally:
        web.terminate()
        _, err = web.communicate(timeout=PATIENCE)
    assert "Traceback" not in err, err


async def session_screen(port: int, wanted: str) -> str:
    """What a browser session's terminal is sent, as text, once it holds `wanted`; what it had after 30 s
    otherwise (a session that can read the server shows it in seconds)."""
    screen = [""]

    async def read() -> None:
        async with aiohttp.ClientSession() as session:
            url, origin = f"ws://127.0.0.1:{port}/ws?width=160&height=50", f"http://127.0.0.1:{port}"
            async with session.ws_connect(url, headers={"Origin": origin}) as ws:
                while wanted not in screen[0]:
                    message = await ws.receive()
                    if message.type == aiohttp.WSMsgType.BINARY:
                        screen[0] = ANSI.sub("", screen[0] + message.data.decode("utf-8", "replace"))
                    elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        return

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            await read()
    return screen[0]


def test_off_loopback_without_tls_it_warns_once_and_with_tls_it_does_not(
    sim_config: Path, pki: Pki, tmp_path: Path
) -> None:
    token = str(write_config(tmp_path / "token", TOKEN))
    clear = start_cli("serve", "--config", str(sim_config), "--listen", "0.0.0.0:0", "--token-file", token)
    assert clear.stdout is not None and "listening on http://0.0.0.0:" in clear.stdout.readline()
    clear.terminate()
    _, err = clear.communicate(timeout=PATIENCE)
    warned = [line for line in err.splitlines() if "clear text" in line]
    assert len(warned) == 1, err
    assert "--tls-cert" in warned[0] and "ssh -L" in warned[0] and TOKEN not in err
    secure = TlsServer(sim_config, pki, "--token-file", token, listen="0.0.0.0:0")
    assert "clear text" not in secure.stop()


@pytest.mark.parametrize(
    ("files", "said"),
    [
        (("cert",), "--tls-cert and --tls-key go together"),
        (("cert", "absent"), "--tls-key {absent} does not exist"),
        (("garbage", "key"), "--tls-cert {garbage} holds no PEM certificate"),
        (("cert", "cert"), "--tls-key {cert} holds no PEM private key"),
        (("cert", "other_key"), "key values mismatch"),
        (("cert", "encrypted"), "--tls-key {encrypted} is encrypted"),
    ],
)
def test_a_bad_certificate_or_key_is_a_one_line_usage_error(
    sim_config: Path, pki: Pki, tmp_path: Path, files: tuple[str, ...], said: str
) -> None:
    paths = {"cert": pki.cert, "key": pki.key, "absent": tmp_path / "absent.pem", "garbage": tmp_path / "garbage.pem"}
    paths["garbage"].write_text("not a certificate\n")
    paths["other_key"] = tmp_path / "other.key"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", paths["other_key"],
            cwd=tmp_path)  # fmt: skip
    paths["encrypted"] = tmp_path / "encrypted.key"
    openssl("pkey", "-in", pki.key, "-aes256", "-passout", "pass:hunter2", "-out", paths["encrypted"], cwd=tmp_path)
    flags = [
        arg for flag, name in zip(("--tls-cert", "--tls-key"), files, strict=False) for arg in (flag, str(paths[name]))
    ]
    done = run_cli("serve", "--config", str(sim_config), "--listen", "127.0.0.1:0", *flags)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert said.format(**{k: str(v) for k, v in paths.items()}) in done.stderr


def test_a_bad_ca_file_is_a_one_line_usage_error(pki: Pki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for ca, said in ((tmp_path / "absent.pem", "does not exist"), (garbage, "give a CA certificate in PEM form")):
        done = run_cli("--attach", "https://127.0.0.1:1", "--ca-file", str(ca), "--once")
        assert done.returncode == 2 and said in done.stderr and done.stderr.count("\n") == 1, done.stderr
    plain = run_cli("--attach", "http://127.0.0.1:1", "--ca-file", str(pki.ca), "--once")
    assert plain.returncode == 2 and "--ca-file is for an https:// server" in plain.stderr


def test_a_tls_handshake_that_never_comes_is_given_up(sim_config: Path, pki: Pki) -> None:
    """The TLS handshake comes before any header: it has the same time, or a flood of silent connections to an
    HTTPS server would hold their files forever."""
    served = Served(sim_config, tls=server_context(pki.cert, pki.key), header_timeout=0.5, idle_timeout=3600)
    try:
        silent = socket.create_connection(("127.0.0.1", served.server.port))
        assert closed_by_server(silent)
        silent.close()
        trusting = ssl.create_default_context(cafile=str(pki.ca))
        url = f"https://127.0.0.1:{served.server.port}/healthz"
        assert httpx.get(url, verify=trusting, timeout=PATIENCE).status_code == 200
    finally:
        assert served.stop() == 0


def _handshake(pki: Pki, *, oldest: ssl.TLSVersion, newest: ssl.TLSVersion) -> str:
    """The TLS version `serve`'s context (server_context, as `serve --tls-cert --tls-key` builds it) agrees to with
    a client offering only `oldest`..`newest` at OpenSSL's most permissive security level (so only the server can
    refuse), or the reason the server gave for refusing. The server's side is read: asyncio's server closes
    without an alert, so a client would only see the connection end, whatever the cause."""
    server = server_context(pki.cert, pki.key)
    client = ssl.create_default_context(cafile=str(pki.ca))
    client.set_ciphers("DEFAULT:@SECLEVEL=0")
    client.minimum_version, client.maximum_version = oldest, newest
    ours, theirs = socket.socketpair()
    ours.settimeout(PATIENCE)
    theirs.settimeout(PATIENCE)
    refused: list[str] = []

    def serve() -> None:
        try:
            with server.wrap_socket(ours, server_side=True) as tls:
                tls.recv(1)
        except ssl.SSLError as exc:
            refused.append(str(exc.reason))
        except OSError:
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(theirs, server_hostname="localhost") as tls:
            agreed = str(tls.version())
            tls.sendall(b"x")
    except (ssl.SSLError, OSError):
        agreed = ""
    thread.join(PATIENCE)
    return refused[0] if refused else agreed


def test_serve_speaks_nothing_older_than_tls_1_2(pki: Pki) -> None:
    """A client offering only TLS 1.0/1.1 is refused for its protocol version (the server's minimum), not by
    the luck of a cipher list a platform may relax; TLS 1.2 and 1.3 are spoken."""
    with pytest.warns(DeprecationWarning):  # Python deprecates naming the old versions, as a client must here
        old = _handshake(pki, oldest=ssl.TLSVersion.TLSv1, newest=ssl.TLSVersion.TLSv1_1)
    assert old == "UNSUPPORTED_PROTOCOL", old
    assert _handshake(pki, oldest=ssl.TLSVersion.TLSv1_2, newest=ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(pki, oldest=ssl.TLSVersion.TLSv1_3, newest=ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
