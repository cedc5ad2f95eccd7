from __future__ import annotations

import json
import subprocess
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tui.credentials import Secret
from tui.sim import Simulator
from tui.venues import http, ledger, nonces
from tui.venues.intx import IntxClient
from tui.venues.kraken import CustodyCounter, KrakenCustodyClient
from tui.venues.nonces import NonceSource


@pytest.fixture(autouse=True, scope="session")
def private_state_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Kraken nonces are kept in the platform's state directory, the history in its data directory: the
    tests' go to folders of their own (programs the tests start inherit them), never to the user's."""
    import os

    folders = {f"XDG_{kind.upper()}_HOME": tmp_path_factory.mktemp(kind) for kind in ("state", "data", "cache")}
    before = {name: os.environ.get(name) for name in folders}
    os.environ.update({name: str(folder) for name, folder in folders.items()})
    yield folders["XDG_STATE_HOME"]
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def state_of_its_own(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own state, data and cache folders: what one test's processes leave for the next on the
    same key and the same (reused) port — the vaults listed lately, a pause, a history — is a real process's
    to share, not a stranger's from another test."""
    for kind in ("state", "data", "cache"):
        monkeypatch.setenv(f"XDG_{kind.upper()}_HOME", str(tmp_path_factory.mktemp(kind)))
    # and its own per-process nonce sources and key ledgers: the first test to use the demo key chose, for the
    # rest of the worker, whether its nonces are kept and in which folder its ledger lives
    monkeypatch.setattr(nonces, "_sources", {})
    monkeypatch.setattr(ledger, "_ledgers", {})


@pytest.fixture
def serve() -> Iterator[Callable[..., Any]]:
    """Start `serve`'s Server (tests/test_serve.Served: in a thread, over real HTTP) as often as a test likes;
    each must stop with exit code 0."""
    from tests.test_serve import Served

    started: list[Served] = []

    def start(config: Path, token: Secret | None = None, **options: Any) -> Served:
        started.append(Served(config, token, **options))
        return started[-1]

    yield start
    for served in started:
        assert served.stop() == 0, served.err.getvalue()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(seed=7) as simulator:
        yield simulator


@pytest.fixture
async def web(sim: Simulator) -> AsyncIterator[object]:
    async with http.new_client(sim.url) as client:
        yield client


_sim_nonces: weakref.WeakKeyDictionary[Simulator, NonceSource] = weakref.WeakKeyDictionary()


def kraken_for(
    sim: Simulator,
    client: object,
    *,
    secret: str | None = None,
    key: str | None = None,
    counter: CustodyCounter | None = None,
) -> KrakenCustodyClient:
    """A Kraken client on the simulator's demo key. Clients of one simulator share one nonce source, as
    one process's clients of one key do: in milliseconds, two fresh sources could take the same one."""
    nonces = _sim_nonces.setdefault(sim, NonceSource())
    return KrakenCustodyClient(
        client,  # type: ignore[arg-type]
        Secret(key or sim.kraken_keys.api_key),
        Secret(secret or sim.kraken_keys.api_secret),
        counter=counter or CustodyCounter(),
        nonces=nonces,
    )


def intx_for(
    sim: Simulator,
    client: object,
    *,
    secret: str | None = None,
    key: str | None = None,
    passphrase: str | None = None,
    clock: object = None,
) -> IntxClient:
    kwargs = {"clock": clock} if clock is not None else {}
    return IntxClient(
        client,  # type: ignore[arg-type]
        Secret(key or sim.intx_keys.api_key),
        Secret(secret or sim.intx_keys.api_secret),
        Secret(passphrase or sim.intx_keys.passphrase or ""),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = {t.ident for t in threading.enumerate()}
    yield
    leaked = [t for t in threading.enumerate() if t.ident not in before and t.is_alive() and t.name.startswith("sim-")]
    assert not leaked, f"simulator threads left running: {[t.name for t in leaked]}"


ROOT = Path(__file__).resolve().parent.parent


def _cli_env(env: dict[str, str] | None) -> dict[str, str]:
    """This environment plus `env`, without the user's BALANCE_TUI_CONFIG unless `env` names one."""
    import os

    full_env = {**os.environ, **(env or {})}
    if env is None or "BALANCE_TUI_CONFIG" not in env:
        full_env.pop("BALANCE_TUI_CONFIG", None)
    return full_env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real program in a fresh process, as a user or a cron job runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_cli_env(env),
        stdin=subprocess.DEVNULL,
        check=False,
        cwd=ROOT,
    )


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The real program started in a fresh process that keeps running (serve, --watch, web), its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "tui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_cli_env(env),
        cwd=ROOT,
    )


class Attached:
    """`balance-tui --attach URL --watch` in its own process, as a desk member runs it, keeping every line."""

    def __init__(self, url: str) -> None:
        self.proc = start_cli("--attach", url, "--watch")
        self.lines: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.append(json.loads(line))
            except json.JSONDecodeError:  # kept, to be shown by whatever then waits for a line in vain
                self.lines.append({"event": "not JSON", "line": line})

    def new(self) -> set[tuple[str, str, str]]:
        return {(ln["venue"], ln["account"]["id"], ln["asset"]) for ln in self.lines if ln["event"] == "new"}

    def stop(self) -> tuple[int, str]:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def sim_config(sim: Simulator, tmp_path: Path) -> Path:
    path = tmp_path / "sim.toml"
    sim.write_config(path)
    return path
