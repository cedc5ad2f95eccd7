"""Kraken nonces: milliseconds since the epoch, as Kraken's docs use, strictly increasing per key.

Kraken remembers the highest nonce a key has used and refuses anything not above it, forever. So the
scale matters beyond this program: a larger unit (nanoseconds, python-kraken-sdk's 1e-8 s) would lock
every tool that follows the documented milliseconds out of the key for good. Keeping the last nonce on
disk, per key, keeps ours increasing when the clock steps back between two runs, and keeps two
balance-tui processes on one machine from taking the same nonce (each takes the next one under a lock
on the key's file). That file is also the lock of the key's ledger (ledger.py), which a Kraken call holds
until its answer: so the nonces also reach Kraken in the order they were taken.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tui.credentials import Secret
from tui.paths import app_folder, private_folder

try:
    import fcntl
except ImportError:  # not POSIX: the file still carries the nonce across restarts, without the lock
    fcntl = None  # type: ignore[assignment]

PLAUSIBLE = 10**14  # milliseconds reach this in the year 5138: a larger stored nonce is not one of ours


class NonceSource:
    """Strictly increasing nonces for one key: max(last + 1, now in ms), safe across threads.

    With a `store` file, `last` is also the highest nonce any balance-tui process has taken for the key.
    If the file cannot be used (a read-only home, say), nonces go on from memory and `problem` says why.
    """

    def __init__(self, store: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()
        self.problem: str | None = None
        state = app_folder("state")
        self._ours = state if store is not None and store.is_relative_to(state) else None  # folders to keep private

    def next(self) -> int:
        with self._lock:
            if self._store is not None:
                try:
                    self._last = self._next_stored(self._store)
                    return self._last
                except OSError as exc:
                    self._report(unusable(self._store.parent, exc))
                    self._store = None  # from memory from now on: the problem is said once, not at every call
            self._last = max(self._last + 1, self._now())
            return self._last

    def _report(self, problem: str) -> None:
        self.problem = problem
        announce(problem)

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def next_held(self, fd: int) -> int:
        """The next nonce, taken in the key's file open on `fd`, whose lock the caller holds (the key's ledger,
        which keeps it from before the nonce is taken until the request carrying it has been answered)."""
        with self._lock:
            assert self._store is not None
            self._last = self._take(fd, self._store)
            return self._last

    def stored(self) -> int | None:
        """The last nonce any process took for the key, as its file says (None without one)."""
        if self._store is None:
            return None
        try:
            raw = self._store.read_bytes()[:64].strip()
        except OSError:
            return None
        return int(raw) if raw.isdigit() and int(raw) < PLAUSIBLE else None

    @property
    def store(self) -> Path | None:
        """The key's file (its last nonce, and the lock every process takes to use the key), if kept."""
        return self._store

    def _next_stored(self, store: Path) -> int:
        private_folder(store.parent, ours=self._ours, tell=announce)
        fd = os.open(store, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            return self._take(fd, store)
        finally:
            os.close(fd)  # closing releases the lock

    def _take(self, fd: int, store: Path) -> int:
        stored = self._read(fd, store)
        nonce = max(self._last + 1, stored + 1, self._now())
        data = f"{nonce}\n".encode("ascii")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)
        os.ftruncate(fd, len(data))
        return nonce

    def _read(self, fd: int, store: Path) -> int:
        """The stored nonce; 0 for a new file. A file that holds no plausible nonce of ours is said so
        (in `problem`) and started again from the clock: rewriting it is the only way it gets usable."""
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 64).strip()
        if not raw:
            return 0
        if raw.isdigit() and int(raw) < PLAUSIBLE:
            return int(raw)
        self._report(f"{store} held no Kraken nonce of balance-tui's: started again from the clock")
        return 0


def unusable(folder: Path, exc: OSError) -> str:
    """What to do about a nonce folder that cannot be used, in the operator's words."""
    return (
        f"cannot keep Kraken nonces in {folder}: {exc.strerror or exc}; make it writable (or set XDG_STATE_HOME). "
        "Meanwhile nonces go on from memory, so another process on this key may be refused"
    )


_said: set[str] = set()
_pending: list[str] = []
_tell: Callable[[str], None] | None = None
_said_lock = threading.Lock()


def tell_problems(tell: Callable[[str], None]) -> None:
    """Say each problem with the nonce files through `tell` (a headless command's stderr), once per process
    however many calls or keys meet it; problems met before this call are said now. Without it (the TUI, whose
    screen a stderr line would tear) they are only on each source's `problem`, which the venue's pane shows."""
    global _tell
    with _said_lock:
        _tell = tell
        pending = _pending[:]
        _pending.clear()
    for problem in pending:
        _say(tell, problem)


def announce(problem: str) -> None:
    """Say `problem` once per process, where `tell_problems` points (or keep it until it points somewhere)."""
    with _said_lock:
        if problem in _said:
            return
        _said.add(problem)
        tell = _tell
        if tell is None:
            _pending.append(problem)
            return
    _say(tell, problem)


def _say(tell: Callable[[str], None], problem: str) -> None:
    with contextlib.suppress(OSError):  # stderr itself is gone: the nonce is still due
        tell(problem)


def _tag(api_key: Secret) -> str:
    return hashlib.sha256(api_key.reveal().encode()).hexdigest()


def store_for(api_key: Secret, directory: Path | None = None) -> Path:
    """The file that holds a key's last nonce: named by a hash of the key, never the key itself."""
    if directory is None:
        directory = app_folder("state") / "kraken-nonces"
    return directory / _tag(api_key)[:32]


_sources: dict[str, NonceSource] = {}
_sources_lock = threading.Lock()


def nonce_source_for(api_key: Secret, *, keep: bool = True) -> NonceSource:
    """One nonce source per key per process, whoever asks first; `keep`: across restarts too.

    A process either keeps every key's nonces (the app, `--once`, `--watch`) or none (the demo), so the
    first caller's `keep` is every caller's."""
    tag = _tag(api_key)
    with _sources_lock:
        if tag not in _sources:
            _sources[tag] = NonceSource(store_for(api_key) if keep else None)
        return _sources[tag]
