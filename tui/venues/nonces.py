"""Kraken nonces: milliseconds since the epoch, as Kraken's docs use, strictly increasing per key.

Kraken remembers the highest nonce a key has used and refuses anything not above it, forever. So the
scale matters beyond this program: a larger unit (nanoseconds, python-kraken-sdk's 1e-8 s) would lock
every tool that follows the documented milliseconds out of the key for good. And the order matters
across restarts: keeping the last nonce on disk, per key, keeps ours increasing when the clock steps
back between two runs, and between two balance-tui processes on this machine (`--once` from cron while
the TUI runs): each takes the next nonce under a lock on the key's file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..credentials import Secret

try:
    import fcntl
except ImportError:  # not POSIX: the file still carries the nonce across restarts, without the lock
    fcntl = None  # type: ignore[assignment]

_WIDTH = 20  # digits of the stored nonce: int64 fits


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
            stored = _parse(os.pread(fd, 64, 0))
            nonce = max(self._last + 1, stored + 1, self._now())
            os.pwrite(fd, f"{nonce:0{_WIDTH}d}\n".encode("ascii"), 0)
            return nonce
        finally:
            os.close(fd)  # closing releases the lock


def _parse(raw: bytes) -> int:
    with contextlib.suppress(ValueError):
        return int(raw.strip() or b"0")
    return 0


def store_for(api_key: Secret, directory: Path | None = None) -> Path:
    """The file that holds a key's last nonce: named by a hash of the key, never the key itself."""
    if directory is None:
        import platformdirs

        directory = platformdirs.user_state_path("balance-tui") / "kraken-nonces"
    return directory / hashlib.sha256(api_key.reveal().encode()).hexdigest()[:32]


_sources: dict[str, NonceSource] = {}
_sources_lock = threading.Lock()


def nonce_source_for(api_key: Secret, *, keep: bool = True) -> NonceSource:
    """One nonce source per key per process, whoever asks first; `keep`: across restarts too."""
    tag = hashlib.sha256(api_key.reveal().encode()).hexdigest()
    with _sources_lock:
        if tag not in _sources:
            _sources[tag] = NonceSource(store_for(api_key) if keep else None)
        return _sources[tag]
