"""`serve` under a flood of strangers: connections that never finish their headers are closed, idle ones too;
out of open files it sheds them, keeps answering /healthz and says so in one line a minute, never a
traceback per accept; it raises its own open-file limit; a token too short to be safe is refused; a header
that is not UTF-8 is a 401, not a 500. Over real sockets, against the real server, some in a process of its
own under a low open-file limit."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, _cli_env, run_cli, write_config
from tests.test_serve import Reader, Served, until
from tui.sim import Simulator
from tui.sinks.access import AccessError, read_token

TOKEN = "fl00d-t0ken-5c2e9a7b3d1f4e6a8b0c2d4e"


@pytest.fixture
def config(sim: Simulator, tmp_path: Path) -> Path:
    """Polled once an hour, no history: a server whose only open files are the flood's and a few of its own."""
    path = tmp_path / "flood.toml"
    sim.write_config(path, refresh_seconds=3600)
    with path.open("a") as out:
        out.write("\n[history]\nenabled = false\n")
    return path


def half_open(port: int, count: int) -> list[socket.socket]:
    """`count` connections that send part of a request's headers and never the rest."""
    opened = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        opened.append(sock)
    return opened


def closed_by_server(sock: socket.socket, patience: float = 30.0) -> bool:
    """Whether the server ends this connection (everything it sent read and dropped) within `patience` (a
    safety net: what is tested is that it ends at all)."""
    sock.settimeout(patience)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def test_a_connection_without_its_headers_is_closed_and_a_stream_is_not(
    config: Path, serve: Callable[..., Served]
) -> None:
    served = serve(config, header_timeout=0.5, idle_timeout=3600)
    reader = Reader(served.url + "/events")  # a viewer that is sent nothing for a while is no stranger
    until(lambda: reader.lines, "the stream flowing")
    [idle] = half_open(served.server.port, 1)
    dripping = socket.create_connection(("127.0.0.1", served.server.port))
    dripping.sendall(b"GET /healthz HTTP/1.1\r\n")

    def drip() -> None:  # a header byte every 0.1 s: busy, never done
        try:
            while True:
                dripping.sendall(b"X")
                time.sleep(0.1)
        except OSError:
            pass

    threading.Thread(target=drip, daemon=True).start()
    assert closed_by_server(idle) and closed_by_server(dripping)
    assert served.server.door is not None and served.server.door.doorman is not None
    assert served.server.door.doorman.closed == 2
    assert not reader.ended.is_set() and httpx.get(served.url + "/healthz", timeout=30).status_code == 200
    idle.close(), dripping.close()


def test_an_idle_kept_alive_connection_is_closed(config: Path, serve: Callable[..., Served]) -> None:
    served = serve(config, header_timeout=3600, idle_timeout=0.5)
    sock = socket.create_connection(("127.0.0.1", served.server.port))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    assert closed_by_server(sock)
    sock.close()


def test_a_stranger_is_refused_and_let_go_and_a_header_that_is_not_utf8_is_a_401(
    config: Path, serve: Callable[..., Served], tmp_path: Path
) -> None:
    served = serve(config, read_token(write_config(tmp_path / "token", TOKEN)), idle_timeout=3600)
    for authorization in (b"Bearer \xff\xfe\xfd", b"Bearer " + TOKEN.encode()[:-1] + b"\xe9", b"\xc3\x28 x"):
        sock = socket.create_connection(("127.0.0.1", served.server.port))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + authorization + b"\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 401"), authorization
        assert closed_by_server(sock), "a refused stranger keeps no connection open"
        sock.close()
    anyone = serve(config, idle_timeout=3600)  # without a token: a Host that is not UTF-8 is not this machine
    sock = socket.create_connection(("127.0.0.1", anyone.server.port))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: \xff\xfe:1\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 403") and closed_by_server(sock)
    sock.close()
    assert "Traceback" not in served.err.getvalue() + anyone.err.getvalue()


def test_a_token_shorter_than_32_characters_is_refused_saying_how_to_make_one(config: Path, tmp_path: Path) -> None:
    short = write_config(tmp_path / "short", "x" * 31 + "\n")
    with pytest.raises(AccessError, match="the token is 31 characters, and at least 32 are needed"):
        read_token(short)
    assert read_token(write_config(tmp_path / "long", "y" * 32)).reveal() == "y" * 32
    done = run_cli("serve", "--config", str(config), "--listen", "0.0.0.0:0", "--token-file", str(short))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > token; chmod 600 token" in done.stderr
    assert "x" * 31 not in done.stderr


def limited(soft: int, hard: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def listening(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "listening on http://127.0.0.1:" in first, first + (proc.stderr.read() if proc.stderr else "")
    return int(first.rsplit(":", 1)[1])


def test_serve_raises_its_open_file_limit_and_a_flood_past_the_old_one_is_answered(config: Path) -> None:
    """Systemd's default soft limit is 1,024 and a flood of 1,100 half-open connections once took /healthz
    down for a minute: here, 300 past a soft limit of 256."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "serve", "--config", str(config), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_cli_env(None),
        cwd=ROOT,
        preexec_fn=limited(256, 2048),
    )
    flood: list[socket.socket] = []
    try:
        port = listening(proc)
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        assert [line.split()[3:5] for line in limits.splitlines() if line.startswith("Max open files")] == [
            ["2048", "2048"]
        ]
        flood = half_open(port, 300)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200
    finally:
        for sock in flood:
            sock.close()
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == "", err


# Server() in a process of its own under a hard limit it cannot raise, with header and idle timeouts of an hour
# (aiohttp closes a connection that sent nothing after the idle timeout too): only shedding makes room
LIMITED = textwrap.dedent(
    """
    import asyncio, resource, sys
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}))
    from tui.config import load
    from tui.sinks.server import Server, _until_signalled
    server = Server(load(Path(sys.argv[1])), "127.0.0.1", 0, None, header_timeout=3600, idle_timeout=3600)
    sys.exit(asyncio.run(_until_signalled(server)))
    """
)


def test_out_of_open_files_it_sheds_the_flood_answers_healthz_and_says_so_in_one_line(config: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", LIMITED.format(limit=128), str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_cli_env(None),
        cwd=ROOT,
    )
    flood: list[socket.socket] = []
    try:
        port = listening(proc)
        flood = half_open(port, 200)  # more than the server has files for: the rest wait in its backlog
        for _ in range(3):  # and again, with the flood's newest still holding what was freed
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200
    finally:
        for sock in flood:
            sock.close()
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
    said = [line for line in err.splitlines() if "cannot accept connections: out of open files" in line]
    assert said and len(said) <= 2 and len(err) < 2000, err  # the first at once; the count at most once a minute
    assert "limit 128" in said[0] and "LimitNOFILE=" in said[0]
