"""What a stranger can do to `serve` and to an attached viewer (issue 20), measured:

    .venv/bin/python bench/hostile.py                 # everything, about 3 minutes
    .venv/bin/python bench/hostile.py size flood      # some of: size flood big drip line

size   how big a /snapshot of 100,000 balances is (the viewer's answer bound must hold it) and the longest
       /events line (the prices line) for 100,000 distinct priced assets
flood  `serve` under a soft open-file limit of 1,024 (hard 4,096, then hard 1,024: nothing to raise) and
       1,100 connections that never finish their headers, reopened as the server closes them: how many
       /healthz probes (one a second) were answered within 5 s, the bytes it wrote to stderr, its peak RSS
big    a server answering /snapshot with 400 MB (streamed, then announced by Content-Length): the peak RSS
       of `--attach URL --once` and what it printed
drip   a server dripping its /healthz answer one byte every 5 s: seconds until `--once` ends, and what it said
line   an /events line that never ends: the peak RSS of `--attach URL --watch` once it said so
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.hostile_server import HostileServer, drip, endless_line, huge, run_measured  # noqa: E402
from tui.sim import Simulator  # noqa: E402
from tui.untrusted import json_text  # noqa: E402

MB = 1_000_000
PROBE_PATIENCE = 5.0


PRIVATE = tempfile.mkdtemp(prefix="bench-hostile-")  # the simulator's nonces and history, never the user's


def env() -> dict[str, str]:
    """This environment, without the user's config, with state and data folders of the bench's own."""
    folders = {f"XDG_{kind}_HOME": f"{PRIVATE}/{kind.lower()}" for kind in ("STATE", "DATA", "CACHE")}
    return {**{k: v for k, v in os.environ.items() if k != "BALANCE_TUI_CONFIG"}, **folders}


# --- size ---------------------------------------------------------------------------------------------------


def size(sim: Simulator, folder: Path) -> dict[str, Any]:
    """The real --once document of the simulator (the /snapshot contract), its accounts repeated until they
    hold 100,000 balances, serialized as the server serializes it."""
    config = folder / "size.toml"
    sim.write_config(config)
    once = subprocess.run(
        [sys.executable, "-m", "tui", "--once", "--format", "json", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env(),
        check=True,
    )
    doc = json.loads(once.stdout)
    kraken, intx = doc["venues"]

    def grown(venue: dict[str, Any], count: int) -> dict[str, Any]:
        accounts, held, i = [], 0, 0
        while held < count:
            account = copy.deepcopy(venue["accounts"][i % len(venue["accounts"])])
            account["id"] = f"{account['id']}-{i}"
            account["balances"] = account["balances"][: count - held]
            held += len(account["balances"])
            accounts.append(account)
            i += 1
        return {**venue, "accounts": accounts}

    sizes = {}
    for name, venues in (
        ("all INTX", [grown(intx, 100_000)]),
        ("half and half", [grown(kraken, 50_000), grown(intx, 50_000)]),
        ("all Kraken", [grown(kraken, 100_000)]),
    ):
        sizes[name] = len(json_text({**doc, "venues": venues}).encode())
    prices = {
        "at": "2026-11-21T16:00:00Z",
        "event": "prices",
        "usd_total": "123456789012.123456",
        "usd_loans": "1234567.89",
        "usd_net": "123455554444.233456",
        "unpriced": [],
        "usd_prices": {f"ASSET{i:06d}": "12345.678901" for i in range(100_000)},
    }
    return {"snapshot_bytes_100k": sizes, "prices_line_bytes_100k_assets": len(json_text(prices).encode())}


# --- flood --------------------------------------------------------------------------------------------------


class Flood:
    """`count` connections that send part of their headers and never the rest; any the server closes is
    opened again at once, so the flood holds at `count`."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.reopened = 0
        self.refused = 0
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        for _ in range(count):
            self._open()
        self._thread = threading.Thread(target=self._hold, daemon=True)
        self._thread.start()

    def _open(self) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ)
        except OSError:
            self.refused += 1

    def _hold(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    if sock.recv(65536):
                        continue
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                self._selector.unregister(sock)
                sock.close()
                self.reopened += 1
                self._open()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def flood(sim: Simulator, folder: Path, soft: int, hard: int, connections: int, seconds: float) -> dict[str, Any]:
    config = folder / f"flood-{hard}.toml"
    sim.write_config(config, refresh_seconds=5)
    err_path = folder / f"flood-{hard}.err"
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui", "serve", "--config", str(config), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=ROOT,
            env=env(),
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
        )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().rsplit(":", 1)[1])
    limit = next(ln for ln in Path(f"/proc/{proc.pid}/limits").read_text().splitlines() if "open files" in ln)
    attack = Flood(port, connections)
    answered, probes, slowest = 0, 0, 0.0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        probes += 1
        began = time.monotonic()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=PROBE_PATIENCE).status_code == 200:
                answered += 1
                slowest = max(slowest, time.monotonic() - began)
        except httpx.HTTPError:
            pass
        time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    rss = peak_rss_mb(proc.pid)
    attack.stop()
    proc.terminate()
    proc.wait(60)
    said = err_path.read_text()
    return {
        "limit at start (soft, hard)": (soft, hard),
        "limit in force": " ".join(limit.split()[3:5]),
        "connections held": connections,
        "reopened after the server closed them": attack.reopened,
        "healthz answered within 5 s": f"{answered}/{probes}",
        "slowest answer s": round(slowest, 2),
        "stderr bytes": len(said.encode()),
        "stderr lines": said.count("\n"),
        "server peak RSS MB": round(rss, 1),
        "exit": proc.returncode,
    }


# --- the viewer against a hostile server --------------------------------------------------------------------


def viewer(*args: str, stop_when: str | None = None) -> dict[str, Any]:
    """`balance-tui ARGS` in its own process (started by a small launcher: a child's peak RSS starts at its
    parent's), and what it said."""
    with tempfile.TemporaryDirectory() as folder:
        ended = run_measured(*args, folder=Path(folder), env=env(), stop_when=stop_when, timeout=180)
    return {
        "exit": ended.code,
        "seconds": round(ended.seconds, 1),
        "peak RSS MB": round(ended.peak_mb, 1),
        "stderr": ended.err.strip()[:400],
    }


def big() -> dict[str, Any]:
    results = {}
    for declared in (False, True):
        with HostileServer({"/snapshot": huge(400 * MB, declared=declared)}) as server:
            results["announced" if declared else "streamed"] = viewer("--attach", server.url, "--once")
    return results


def dripping() -> dict[str, Any]:
    with HostileServer({"/healthz": drip(every=5.0)}) as server:
        return viewer("--attach", server.url, "--once")


def line() -> dict[str, Any]:
    with HostileServer({"/events": endless_line(cap=400 * MB)}) as server:
        return viewer("--attach", server.url, "--watch", stop_when="a line longer than")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", default=["size", "flood", "big", "drip", "line"])
    parser.add_argument("--seconds", type=float, default=40.0, help="how long each flood lasts (default: 40)")
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]  # this process holds the flood's 1,100 sockets
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results: dict[str, Any] = {}
    with Simulator(seed=7) as sim, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "size" in args.parts:
            results["size"] = size(sim, folder)
        if "flood" in args.parts:
            results["flood, hard limit 4096"] = flood(sim, folder, 1024, 4096, 1100, args.seconds)
            results["flood, hard limit 1024"] = flood(sim, folder, 1024, 1024, 1100, args.seconds)
    if "big" in args.parts:
        results["400 MB /snapshot"] = big()
    if "drip" in args.parts:
        results["drip, a byte every 5 s"] = dripping()
    if "line" in args.parts:
        results["endless /events line"] = line()
    shutil.rmtree(PRIVATE, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
