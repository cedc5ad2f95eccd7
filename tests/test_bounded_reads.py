"""A viewer attached to a hostile or broken server: every read is bounded in size and in time, so the viewer
ends with one line on stderr, never a traceback, and its memory stays bounded — against an answer of
400 MB, an answer dripped one byte every 5 s, an /events line that never ends, an answer that never starts.
Real processes against a real (hostile) server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
from pathlib import Path

import pytest

from tests.conftest import _cli_env
from tests.hostile_server import (
    Ended,
    HostileServer,
    chunks,
    drip,
    endless_line,
    head,
    huge,
    run_measured,
    silent,
)
from tui.remote.client import AttachError, Limits, ServerClient

MB = 1_000_000


def measured(*args: str, tmp_path: Path, stop_when: str | None = None, timeout: float = 120) -> Ended:
    return run_measured(*args, folder=tmp_path, env=_cli_env(None), stop_when=stop_when, timeout=timeout)


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("declared", [False, True], ids=["streamed", "announced"])
def test_an_answer_of_400_mb_is_refused_in_one_line_with_memory_bounded(tmp_path: Path, declared: bool) -> None:
    with HostileServer({"/snapshot": huge(400 * MB, declared=declared)}) as server:
        ended = measured("--attach", server.url, "--once", tmp_path=tmp_path)
    assert ended.code == 1 and ended.out == ""
    said = one_line(ended.err)
    assert "/snapshot: the answer is larger than 100 MB" in said
    assert ("announced 400 MB" in said) == declared
    assert ended.peak_mb < 200, f"the viewer reached {ended.peak_mb:.0f} MB"


def test_a_server_that_drips_ends_once_watch_and_the_tui_within_a_minute(tmp_path: Path) -> None:
    """A byte every 5 s never trips a read timeout; the whole answer's deadline (30 s) does. Before it, the
    TUI stayed blank and --once never ended."""
    with HostileServer({"/healthz": drip(every=5.0)}) as server:
        modes = {"--once": ["--once"], "--watch": ["--watch"], "the TUI": []}
        ended: dict[str, Ended] = {}
        threads = [
            threading.Thread(
                target=lambda m=mode, a=args: ended.__setitem__(  # type: ignore[misc]
                    m, measured("--attach", server.url, *a, tmp_path=tmp_path, timeout=90)
                )
            )
            for mode, args in modes.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for mode in modes:
        assert ended[mode].code == 1, (mode, ended[mode])
        assert "/healthz: no whole answer within 30 s" in one_line(ended[mode].err), mode
        assert ended[mode].seconds < 60, (mode, ended[mode].seconds)


def test_an_events_line_that_never_ends_is_a_protocol_error(tmp_path: Path) -> None:
    with HostileServer({"/events": endless_line()}) as server:
        ended = measured(
            "--attach", server.url, "--watch", tmp_path=tmp_path, stop_when="a line longer than 8 MB", timeout=60
        )
    assert "/events: a line longer than 8 MB" in ended.err and "Traceback" not in ended.err
    assert "trying again" in ended.err  # a broken server may be mended: the viewer goes on trying, bounded each time
    assert ended.out == "" and ended.peak_mb < 200, f"the viewer reached {ended.peak_mb:.0f} MB"


async def test_an_answer_that_never_starts_ends_at_the_deadline() -> None:
    with HostileServer({"/events": silent, "/snapshot": silent}) as server:
        async with ServerClient(server.url, limits=Limits(deadline=0.5)) as client, asyncio.timeout(30):
            with pytest.raises(AttachError, match=r"/snapshot: no whole answer within 0\.5 s"):
                await client.snapshot()
            with pytest.raises(AttachError, match=r"/events: no whole answer within 0\.5 s"):
                async for _ in client.lines():
                    pass


async def test_lines_are_whole_whatever_the_pieces_they_come_in() -> None:
    pieces = (b'{"a": 1}\n{"b"', b": 2}\r\n\n", b'{"c":', b" 3}\n", b"x" * 90 + b"\n", b'{"d": 4}')
    with HostileServer({"/events": chunks(*pieces)}) as server:
        async with ServerClient(server.url, limits=Limits(line_bytes=100)) as client:
            lines = [line async for line in client.lines()]
        assert lines == ['{"a": 1}', '{"b": 2}', '{"c": 3}', "x" * 90, '{"d": 4}']
        async with ServerClient(server.url, limits=Limits(line_bytes=89)) as client:
            with pytest.raises(AttachError, match="a line longer than"):
                _ = [line async for line in client.lines()]


async def test_a_compressed_answer_it_did_not_ask_for_is_refused() -> None:
    def gzipped(sock: socket.socket, stop: threading.Event) -> None:
        body = gzip.compress(b"[" + b"0," * 5_000_000 + b"0]")  # 10 MB of JSON in about 10 KB
        sock.sendall(head(length=len(body))[:-2] + b"Content-Encoding: gzip\r\n\r\n" + body)

    with HostileServer({"/snapshot": gzipped}) as server:
        async with ServerClient(server.url, limits=Limits(answer_bytes=MB)) as client:
            with pytest.raises(AttachError, match=r"answered compressed \(gzip\)"):
                await client.snapshot()
