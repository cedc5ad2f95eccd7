"""Kraken nonces: milliseconds since the epoch, as Kraken's docs use, strictly increasing per key.

Kraken remembers the highest nonce a key has used and refuses anything not above it, forever. So the
scale matters beyond this program: a larger unit (nanoseconds, python-kraken-sdk's 1e-8 s) would lock
every tool that follows the documented milliseconds out of the key for good. Keeping the last nonce on
disk, per key, keeps ours increasing when the clock steps back between two runs, and keeps two
balance-tui processes on one machine from taking the same nonce (each takes the next one under a lock
on the key's file). It cannot make their requests arrive in order: one key still belongs to one process.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tui.credentials import Secret

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

    def next(self) -> int:
        with self._lock:
            if self._store is not None:
                try:
                    self._last = self._next_stored(self._store)
                    return self._last
                except OSError as exc:
                    self.problem = f"cannot keep Kraken nonces in {self._store}: {exc.strerror or exc}"
                    self._store = None
            self._last = max(self._last + 1, self._now())
            return self._last

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def _next_stored(self, store: Path) -> int:
        store.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(store, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            stored = self._read(fd, store)
            nonce = max(self._last + 1, stored + 1, self._now())
            data = f"{nonce}\n".encode("ascii")
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, data)
            os.ftruncate(fd, len(data))
            return nonce
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self, fd: int, store: Path) -> int:
        """The stored nonce; 0 for a new file. A file that holds no plausible nonce of ours is said so
        (in `problem`) and started again from the clock: rewriting it is the only way it gets usable."""
        raw = os.read(fd, 64).strip()
        if not raw:
            return 0
        if raw.isdigit() and int(raw) < PLAUSIBLE:
            return int(raw)
        self.problem = f"{store} held no Kraken nonce of balance-tui's: started again from the clock"
        return 0


def _tag(api_key: Secret) -> str:
    return hashlib.sha256(api_key.reveal().encode()).hexdigest()


def store_for(api_key: Secret, directory: Path | None = None) -> Path:
    """The file that holds a key's last nonce: named by a hash of the key, never the key itself."""
    if directory is None:
        import platformdirs

        directory = platformdirs.user_state_path("balance-tui") / "kraken-nonces"
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
