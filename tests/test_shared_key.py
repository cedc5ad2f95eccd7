"""One key, many processes, nobody refused: real balance-tui processes side by side on one Kraken key and one
INTX key of a strict simulator (nonces in order, the documented counters), the key's ledger between them."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import start_cli
from tests.crowd import run
from tests.test_attach import Server, free_port
from tui.credentials import Secret
from tui.sim import Simulator
from tui.venues import http
from tui.venues.intx import SharedRequestRate
from tui.venues.kraken import KrakenCustodyClient
from tui.venues.ledger import KeyBusy, KeyLedger, write_over
from tui.venues.nonces import NonceSource

ROOT = Path(__file__).resolve().parent.parent


def _on_the_key(sim: Simulator, web: http.ApiClient, store: Path) -> KrakenCustodyClient:
    """A Kraken client on the simulator's key, as one process has it: its nonces and the key's ledger at `store`."""
    return KrakenCustodyClient(
        web,
        Secret(sim.kraken_keys.api_key),
        Secret(sim.kraken_keys.api_secret),
        nonces=NonceSource(store),
        ledger=KeyLedger(store),
    )


def test_a_crowd_on_one_key_is_never_refused() -> None:
    """`serve`, `--watch` and three loops of `--once` for 25 s; half of Kraken's requests are held up 0.2 s on
    the way (what reorders two processes' requests sent a moment apart). Nothing refused, every `--once`
    answered, and `serve` counted no failed call."""
    crowd = run(25.0, 3, (0.5, 3.0), tui=False, faults=("latency:0.2@kraken%50",), measure_lone=False)
    assert crowd["once_runs"] >= 6, crowd  # a crowd, not a queue of one
    assert crowd["refused_by_the_simulator"] == {}, crowd
    assert crowd["once_failed_count"] == 0, crowd["once_failed"]
    failed = {labels: n for labels, n in crowd["serve_requests"].items() if 'outcome="ok"' not in labels and n}
    assert not failed, crowd["serve_requests"]


def test_a_second_poller_is_told_who_polls_the_key(sim_config: Path) -> None:
    port = free_port()
    server = Server(sim_config, port)
    try:
        server.ready()
        watch = start_cli("--watch", "--config", str(sim_config))
        try:
            lines = _first_lines(watch, 2)  # said at start, one per key
        finally:
            watch.terminate()
            watch.communicate(timeout=60)
    finally:
        server.stop()
    for line, venue in zip(lines, ("Kraken custody (simulated)", "Coinbase INTX (simulated)"), strict=True):
        assert line.startswith(f"balance-tui: {venue}: `serve` (PID {server.proc.pid}, since "), line
        assert f"already polls this key: `--attach http://127.0.0.1:{port}` shares its answers" in line


def _first_lines(proc: subprocess.Popen[str], count: int, patience: float = 60.0) -> list[str]:
    """The first `count` lines of the process's stderr, or what came of them within `patience` seconds."""
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        while len(lines) < count and (line := proc.stderr.readline()):
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(patience)
    return lines + [""] * (count - len(lines))


async def test_a_wait_for_the_key_says_who_holds_it_and_ends_when_the_holder_dies(tmp_path: Path) -> None:
    lock = tmp_path / "key"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import asyncio, sys, time\nfrom pathlib import Path\nfrom tui.venues.ledger import KeyLedger, set_role\n"
            "set_role('serve')\nledger = KeyLedger(Path(sys.argv[1]))\nasyncio.run(ledger.hold())\n"
            "print('holding', flush=True)\ntime.sleep(600)\n",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        ledger = KeyLedger(lock)
        with pytest.raises(KeyBusy, match=f"PID {holder.pid} \\(serve\\)"):
            await ledger.hold(patience=0.5)
        os.kill(holder.pid, signal.SIGKILL)  # it dies holding the key: the kernel frees the lock
        holder.wait(timeout=60)
        await ledger.hold(patience=30)
        assert ledger.fd is not None
        ledger.release()
    finally:
        if holder.poll() is None:
            holder.kill()


async def test_intx_requests_of_every_process_on_a_key_keep_within_its_rate(tmp_path: Path) -> None:
    """Two processes' rates on one key (two ledgers on one file, as two processes have), five a second between
    them: however many requests they make at once, no second sees more than five start."""
    started: list[float] = []

    async def request(rate: SharedRequestRate) -> None:
        async with rate.slot():
            started.append(time.time())
            await asyncio.sleep(0.01)

    rates = [SharedRequestRate(KeyLedger(tmp_path / "key"), "http://venue", limit=5) for _ in range(2)]
    await asyncio.gather(*(request(rates[i % 2]) for i in range(24)))
    started.sort()
    busiest = max(sum(1 for t in started if first <= t < first + 1.0) for first in started)
    assert len(started) == 24 and busiest <= 5, busiest


async def test_a_call_that_cuts_in_waits_for_the_answer_before_it_else_its_nonce_would_overtake(
    sim: Simulator, tmp_path: Path
) -> None:
    """Two processes on one key (two ledgers and nonce sources on one file, as two processes have): a poller's
    call is held up 0.5 s on the way; a `--once` that queues behind it and is put first (it is urgent) still
    waits for that answer before sending, or its larger nonce would reach Kraken first and the poller's be
    refused."""
    store = tmp_path / "nonces" / "key"
    store.parent.mkdir()
    sim.faults.set("latency", "kraken", "GetCustodyBalance", 0.5)
    vault = next(iter(sim.market.vaults))
    async with http.new_client(sim.url) as poller_web, http.new_client(sim.url) as once_web:
        poller, once = (_on_the_key(sim, web, store) for web in (poller_web, once_web))

        async def poll() -> None:
            async with poller.turn(urgent=False):
                await poller.balances(vault)

        polling = asyncio.create_task(poll())
        while sim.faults.arrived == 0:  # the poller's call is on its way
            await asyncio.sleep(0.01)
        await once.list_vaults()
        await polling
    assert sim.count("kraken", verdict="bad-nonce") == 0
    assert sim.nonce_log() == sorted(sim.nonce_log()) and len(sim.nonce_log()) == 2


async def test_the_tui_tells_of_another_poller_on_its_keys(sim: Simulator, sim_config: Path) -> None:
    from tests.test_app import loaded
    from tui.config import parse
    from tui.ui.app import BalanceApp

    watch = start_cli("--watch", "--config", str(sim_config))
    try:
        assert watch.stdout is not None and watch.stdout.readline()  # polling by now
        app = BalanceApp(parse(sim.config_text(60)), history=":memory:")
        async with app.run_test(size=(120, 40)) as pilot:
            await loaded(pilot)
            said = [str(n.message) for n in app._notifications]
    finally:
        watch.terminate()
        watch.communicate(timeout=60)
    assert any(f"`--watch` (PID {watch.pid}, since " in m and "already polls this key" in m for m in said), said


async def test_the_ledger_keeps_only_venues_in_use(tmp_path: Path) -> None:
    """Every write of the ledger reads and writes it whole, a few times a second: what it keeps of venues no
    process has written to for a day (another base URL once configured, each test simulator's port) is dropped,
    so the file stays the size of what is in use. A venue written to an hour ago is kept."""
    import json

    day = 24 * 3600.0
    now = 1_800_000_000.0
    lock = tmp_path / "key"
    ledger = KeyLedger(lock, clock=lambda: now)
    old = {f"http://127.0.0.1:{port}": {"counter": {"count": 1, "at": now - 2 * day}} for port in range(40000, 40300)}
    dated = {url: {**entry, "seen": now - 2 * day} for url, entry in list(old.items())[:150]}
    recent = {"http://recent": {"counter": {"count": 2, "at": now - 3600}, "seen": now - 3600}}
    lock.with_name("key.json").write_text(json.dumps({"venues": {**old, **dated, **recent}}))
    await ledger.hold()
    try:
        ledger.update_venue("https://api.kraken.com", counter={"count": 3, "at": now})
    finally:
        ledger.release()
    venues = json.loads(lock.with_name("key.json").read_text())["venues"]
    assert sorted(venues) == ["http://recent", "https://api.kraken.com"]
    assert venues["http://recent"]["counter"] == {"count": 2, "at": now - 3600}
    assert venues["https://api.kraken.com"]["counter"] == {"count": 3, "at": now}


async def test_a_call_on_the_wire_is_in_the_ledger_and_costs_two_writes(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a Kraken call is on the wire, another process reading the key's ledger sees who holds the key and
    the call counted (a process that dies there has spent it); the call writes the ledger twice, on the wire
    and done, however many entries it records (its place in the queue, the counter twice, the holder twice).
    The turn around it writes it twice more: in the queue and out."""
    store = tmp_path / "nonces" / "key"
    store.parent.mkdir()
    data = store.with_name("key.json")
    writes: list[str] = []
    opened = os.open

    def counted(path: str | Path, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path) == data and flags & (os.O_WRONLY | os.O_RDWR):
            writes.append(str(path))
        return opened(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counted)
    sim.faults.set("latency", "kraken", "GetCustodyBalance", 0.5)
    vault = next(iter(sim.market.vaults))
    async with http.new_client(sim.url) as web:
        client = _on_the_key(sim, web, store)
        calling = asyncio.create_task(client.balances(vault))
        while sim.faults.arrived == 0:  # the call is on the wire, held up there
            await asyncio.sleep(0.01)
        seen = KeyLedger(store).read()  # another process's peek
        assert not calling.done()
        on_the_wire = len(writes)
        await calling
    assert seen["holder"]["pid"] == os.getpid()
    counted_then = next(iter(seen["venues"].values()))["counter"]
    assert counted_then["count"] >= 1, seen
    after = KeyLedger(store).read()
    assert "holder" not in after and after["queue"] == []
    assert (on_the_wire, len(writes)) == (2, 4), writes  # queued + on the wire; + done + out of the queue


async def test_the_ledger_is_written_in_place_and_a_half_written_one_reads_as_nothing(tmp_path: Path) -> None:
    """A write is the file rewritten where it is (as the nonce beside it), not a new file renamed over it: the
    same file, private, whatever was there before cut off. A peek that meets a write half done (the new text
    over the tail of a longer old one) reads nothing recorded rather than a mix."""
    lock = tmp_path / "key"
    ledger = KeyLedger(lock)
    await ledger.hold(say_who=False)
    ledger.update(queue=[{"ticket": "t" * 200}])
    ledger.release()
    data = lock.with_name("key.json")
    inode = data.stat().st_ino
    await ledger.hold(say_who=False)
    ledger.update(queue=[])
    ledger.release()
    assert data.stat().st_ino == inode
    assert oct(data.stat().st_mode & 0o777) == "0o600"
    assert data.read_text() == json.dumps({"queue": []})  # cut to its length: no padding left behind
    data.write_text('{"queue": []}' + ' "t"}]}')  # the new text over the old one's tail
    assert KeyLedger(lock).read() == {}


class _Died(Exception):
    """A process killed at this point of a write."""


def _died(*args: object) -> None:
    raise _Died


LOCKOUT = {"pause": {"until": 4e9, "kind": "lockout", "why": "EAPI:Temporary lockout"}}


@pytest.mark.parametrize("when", ["before the cut", "after taking room", "on a full disk"])
def test_a_write_that_dies_or_fails_half_way_leaves_the_ledger_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """The ledger is written in place, so no moment of a write may leave it unreadable: a reader that finds
    nothing would forget a lockout Kraken imposed and the calls its counter holds. A shorter text (the holder
    gone, at every release) is padded to the old length before the file is cut; a longer one takes its room
    before a byte changes, so a full disk fails there and a death there leaves the old text."""
    lock = tmp_path / "key"
    data = lock.with_name("key.json")
    holding = {**LOCKOUT, "holder": {"pid": 1, "role": "serve", "since": 1.0}}
    data.write_bytes(json.dumps(holding).encode())
    longer = {**LOCKOUT, "queue": [{"ticket": "t" * 300}]}
    if when == "before the cut":
        monkeypatch.setattr(os, "ftruncate", _died)
        text, expected = LOCKOUT, LOCKOUT
    elif when == "after taking room":
        monkeypatch.setattr(os, "pwrite", _died)
        text, expected = longer, holding
    else:
        pwrite, calls = os.pwrite, []

        def full_disk(fd: int, chunk: bytes, offset: int) -> int:  # half is written, then the disk is full
            calls.append(len(chunk))
            if len(calls) > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            return pwrite(fd, chunk[: len(chunk) // 2], offset)

        def no_room(fd: int, offset: int, length: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "pwrite", full_disk)
        monkeypatch.setattr(os, "posix_fallocate", no_room)
        text, expected = longer, holding
    fd = os.open(data, os.O_RDWR)
    try:
        with pytest.raises((_Died, OSError)):
            write_over(fd, json.dumps(text).encode())
    finally:
        os.close(fd)
    monkeypatch.undo()
    assert KeyLedger(lock).read() == expected


async def test_a_call_whose_hold_went_on_without_the_ledger_frees_no_key_another_task_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of files (a flood on `serve`), a hold goes on without the ledger; the call still releases when it is
    done. That release must not free the key another task of the process holds with its call on the wire:
    another process would then send its nonce before that call is answered."""
    lock = tmp_path / "key"
    ledger = KeyLedger(lock)
    held, done = asyncio.Event(), asyncio.Event()

    async def on_the_wire() -> None:
        await ledger.hold()
        held.set()
        await done.wait()
        ledger.release()

    holder = asyncio.create_task(on_the_wire())
    await held.wait()
    opened = os.open

    def out_of_files(path: str | Path, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path) == lock:
            raise OSError(errno.EMFILE, "Too many open files")
        return opened(path, flags, *args, **kwargs)

    async def without_the_ledger() -> None:
        monkeypatch.setattr(os, "open", out_of_files)
        await ledger.hold()
        monkeypatch.setattr(os, "open", opened)
        ledger.release()

    await asyncio.create_task(without_the_ledger())
    with pytest.raises(KeyBusy):
        await KeyLedger(lock).hold(patience=0.2)  # another process: the key is still held
    done.set()
    await holder
    other = KeyLedger(lock)
    await other.hold(patience=5.0)
    other.release()
