"""What balance-tui keeps on disk is its owner's alone, whatever the umask: the history (the firm's holdings)
0600 with its -wal and -shm, in a 0700 folder; the Kraken nonces' folders 0700; the configs it writes 0600. What
others could read is tightened, and said once. A folder the operator chose keeps the mode they gave it."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import run_cli, start_cli
from tests.test_attach import PATIENCE, free_port
from tui.config import parse, write_private
from tui.credentials import Secret
from tui.monitor.history import History
from tui.sim import Simulator
from tui.venues import nonces
from tui.venues.nonces import NonceSource, store_for


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(value: int) -> Iterator[None]:
    before = os.umask(value)
    try:
        yield
    finally:
        os.umask(before)


def rows(db: Path) -> int:
    """How many changes a history holds (0 if there is none), read without writing to it."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM changes").fetchone()[0])
    except sqlite3.OperationalError:  # created, its table not yet
        return 0
    finally:
        conn.close()


@pytest.mark.parametrize("mask", [0o022, 0o002], ids=["umask 022", "umask 002"])
def test_serve_records_into_a_private_history(mask: int, sim_config: Path, tmp_path: Path) -> None:
    """A desk's `serve`, recording to the platform data folder as configured by default."""
    data = tmp_path / "data"
    config = sim_config.with_name("real.toml")
    config.write_text(sim_config.read_text().replace("# balance-tui simulator config", "# a desk's config"))
    config.chmod(0o600)
    port = free_port()
    with umask(mask):  # the server inherits it
        proc = start_cli(
            "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}", env={"XDG_DATA_HOME": str(data)}
        )
    db = data / "balance-tui" / "history.sqlite3"
    try:
        deadline = time.monotonic() + PATIENCE
        while rows(db) == 0 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.1)
        assert rows(db) > 0, "serve never recorded a change"
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
        assert oct(mode(db.parent)) == "0o700"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=PATIENCE)
    assert err == ""  # nothing was open to others: nothing to say


@pytest.mark.parametrize(("mask", "folder_mode", "file_mode"), [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_a_history_others_could_read_is_made_private_and_said_so(
    tmp_path: Path, mask: int, folder_mode: int, file_mode: int
) -> None:
    """Left by an older release: folder 0755, database, -wal and -shm 0644 (or open to the group only: 0750 and
    0640). `history` (the reader) tightens all four, one line each, and says nothing the next time."""
    data = tmp_path / "data"
    folder = data / "balance-tui"
    db = folder / "history.sqlite3"
    with umask(mask):
        folder.mkdir(parents=True, mode=0o755)
        writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode = WAL")
        writer.execute("CREATE TABLE changes (at REAL, venue TEXT, account TEXT, asset TEXT, field TEXT, value TEXT)")
        writer.execute("INSERT INTO changes VALUES (1795276800.0, 'Kraken', 'V1', 'XBT', 'balance', '1.5')")
        opened = [folder, db, Path(f"{db}-wal"), Path(f"{db}-shm")]  # held open by the writer
        assert [mode(p) for p in opened] == [folder_mode, file_mode, file_mode, file_mode]
        env = {"XDG_DATA_HOME": str(data)}
        done = run_cli("history", "--config", str(tmp_path / "none.toml"), env=env)
        assert done.returncode == 0 and "1.5" in done.stdout, done.stderr
        notes = done.stderr.splitlines()
        assert [n.split(" could be read by other users")[0] for n in notes] == [f"balance-tui: {p}" for p in opened]
        assert all(n.endswith("it is now private (mode 700)" if i == 0 else "(mode 600)") for i, n in enumerate(notes))
        assert [oct(mode(p)) for p in opened] == ["0o700", "0o600", "0o600", "0o600"]
        again = run_cli("history", "--config", str(tmp_path / "none.toml"), env=env)
        assert again.returncode == 0 and again.stderr == ""
    finally:
        writer.close()


def test_a_history_path_of_the_operators_own(tmp_path: Path) -> None:
    """`[history] path` elsewhere: the file is made private, the folder they made is left as it is; folders we
    create for it are 0700."""
    shared = tmp_path / "shared"
    with umask(0o022):
        shared.mkdir(mode=0o755)
        (shared / "h.sqlite3").touch()
        history = History(shared / "h.sqlite3")
        history.close()
        assert history.notes == [
            f"{shared / 'h.sqlite3'} could be read by other users (mode 644): it is now private (mode 600)"
        ]
        assert (mode(shared / "h.sqlite3"), mode(shared)) == (0o600, 0o755)
        fresh = History(tmp_path / "new" / "deeper" / "h.sqlite3")
        fresh.close()
    assert fresh.notes == []
    assert [mode(p) for p in (tmp_path / "new", tmp_path / "new" / "deeper", fresh.path)] == [0o700, 0o700, 0o600]  # type: ignore[arg-type]


@pytest.mark.parametrize("mask", [0o022, 0o002], ids=["umask 022", "umask 002"])
def test_the_nonce_folders_are_private(mask: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with umask(mask):
        store = store_for(Secret("a-kraken-key-of-this-test"))
        NonceSource(store).next()
    assert store.parent == tmp_path / "state" / "balance-tui" / "kraken-nonces"
    assert (mode(store.parent.parent), mode(store.parent), mode(store)) == (0o700, 0o700, 0o600)


def test_nonce_folders_others_could_enter_are_tightened_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    heard: list[str] = []
    monkeypatch.setattr(nonces, "_said", set())
    monkeypatch.setattr(nonces, "_pending", [])
    monkeypatch.setattr(nonces, "_tell", None)
    nonces.tell_problems(heard.append)
    store = store_for(Secret("a-kraken-key-of-this-test"))
    with umask(0o022):
        store.parent.mkdir(parents=True, mode=0o755)
    NonceSource(store).next()
    assert (mode(store.parent.parent), mode(store.parent)) == (0o700, 0o700)
    assert [h.split(" could be read")[0] for h in heard] == [str(store.parent), str(store.parent.parent)]
    assert mode(tmp_path / "state") == 0o755  # above balance-tui's own folder: not ours to change


@pytest.mark.parametrize("mask", [0o022, 0o002], ids=["umask 022", "umask 002"])
def test_a_written_config_is_private_in_the_folders_we_create(mask: int, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # the operator's own folder, open as theirs often are
    with umask(mask):
        write_private(tmp_path / "a" / "b" / "config.toml", "refresh_seconds = 5\n")
        write_private(tmp_path / "here.toml", "refresh_seconds = 5\n")
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "config.toml")] == [
        0o700,
        0o700,
        0o600,
    ]
    assert mode(tmp_path / "here.toml") == 0o600 and mode(tmp_path) == 0o755  # theirs: not chmod-ed


def test_a_file_where_the_folder_should_be_is_named(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("")
    done = run_cli("config", "init", "--config", str(tmp_path / "blocker" / "sub" / "config.toml"))
    assert done.returncode == 2
    assert done.stderr == (
        f"balance-tui: cannot write {tmp_path / 'blocker' / 'sub' / 'config.toml'}: "
        f"{tmp_path / 'blocker'} is a file, where a folder should be\n"
    )


async def test_the_tui_tells_of_a_history_it_made_private(sim: Simulator, tmp_path: Path) -> None:
    """The same note, as a notification: stderr is the TUI's screen."""
    from tests.scenes import until
    from tui.ui.app import BalanceApp

    db = tmp_path / "h.sqlite3"
    with umask(0o022):
        db.touch()
    app = BalanceApp(parse(sim.config_text(60)), demo=True, history=db)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await until(pilot, lambda: any("could be read by other users" in str(n.message) for n in app._notifications))
    assert mode(db) == 0o600
