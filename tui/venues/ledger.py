"""One key's ledger on this machine, shared by every balance-tui process that uses the key.

A venue counts calls and nonces per key, not per process: a `serve`, a TUI and a `--once` from cron on one
key must spend one budget and, at Kraken, put their nonces on the wire in order. The ledger is a lock file
(for Kraken, the key's nonce file itself) and a JSON file beside it, both private, in the platform state
folder:

- the lock, taken with `flock` (the kernel frees it when its holder dies, however it dies): a Kraken call
  takes its nonce and is sent and answered while the key is held, so no other process's smaller nonce can
  reach Kraken after a larger one;
- what the venue is counting for the key (Kraken's custody counter; INTX's requests of the last second), so
  a process spends only what the key has left and otherwise waits its turn;
- who holds the key now, and which processes poll it (`serve`, the TUI, `--watch`), so a second poller is
  told, and a wait that lasts says who it waits for.

A key is still never to be shared across machines: nothing here crosses one, and two machines' nonces and
calls would collide at the venue.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.credentials import Secret
from tui.paths import app_folder, private_folder

if TYPE_CHECKING:
    from tui.venues.pollers import Poller

try:
    import fcntl
except ImportError:  # not POSIX: every process keeps its own budget, as before the ledger
    fcntl = None  # type: ignore[assignment]
LOCKING: bool = fcntl is not None

_FOR_NOW = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EINTR}  # an open that may work on the next call
HOLD_PATIENCE = 60.0  # seconds a call waits for another process holding the key before it says who, and fails
VENUE_KEPT = 24 * 3600.0  # seconds a venue's entry is kept without being written to (a pause lasts minutes)
FIRST_PAUSE, LONGEST_PAUSE = 0.002, 0.05  # how often a waiting process tries the lock again

ROLE = {"name": "balance-tui"}  # what this process is, in the words another process shows: set by the CLI


def set_role(role: str) -> None:
    """What this process is (`serve`, `the TUI`, `--once`, `--watch`, `config check`), for others' messages."""
    ROLE["name"] = role


class KeyBusy(Exception):
    """Another process has held the key for longer than a call may wait; the message says who."""


class KeyLedger:
    """The ledger of one key: `hold()` / `release()` the key, and read or write what it records while held."""

    def __init__(self, lock_path: Path, clock: Callable[[], float] = time.time) -> None:
        self.lock_path = lock_path
        self.data_path = lock_path.with_name(lock_path.name + ".json")
        self._clock = clock
        self._fd: int | None = None
        self._said_who = False
        self._held: dict[str, Any] | None = None  # what the ledger records, as this process holds it
        self._owner: object | None = None  # the task that holds it
        self._dirty = False  # `_held` has changes the file has not
        self.problem: str | None = None  # why the ledger cannot be used (each process then keeps its own)

    @property
    def fd(self) -> int | None:
        """The lock file, open, while this process holds the key."""
        return self._fd

    async def hold(self, patience: float = HOLD_PATIENCE, *, say_who: bool = True) -> None:
        """Wait until no other process holds the key, then hold it (KeyBusy after `patience` seconds).
        `say_who`: record this process as the holder, for one who waits long (a hold across a venue's answer);
        a hold of a moment need not."""
        if not LOCKING or self.problem is not None:
            return
        try:
            if self._fd is None and not self.lock_path.parent.is_dir():
                state = app_folder("state")
                private_folder(self.lock_path.parent, ours=state if self.lock_path.is_relative_to(state) else None)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            if exc.errno not in _FOR_NOW:  # the folder cannot be used: said once by the nonces, which meet it too
                self.problem = f"cannot share {self.lock_path.parent} with other processes: {exc.strerror or exc}"
            return  # out of files for now (a flood on `serve`): this call goes on without the ledger
        started = time.monotonic()
        pause = FIRST_PAUSE
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() - started > patience:
                        raise KeyBusy(self._busy(time.monotonic() - started)) from None
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, LONGEST_PAUSE)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._held, self._dirty = fd, None, False
        self._said_who, self._owner = False, _task()
        if say_who:
            try:
                self.announce()
            except BaseException:
                self.release()
                raise

    def announce(self) -> None:
        """Record this process as the key's holder, with all it recorded while holding it, in one write: for a
        hold that lasts (a call on the wire), so that a process waiting for the key can say whom it waits for."""
        if self._fd is not None:
            self._said_who = True
            self.update(holder={"pid": os.getpid(), "role": ROLE["name"], "since": self._clock()})
            self.flush()

    def release(self) -> None:
        """Write what was recorded while held, and let the next process have the key. Only the task that holds
        it releases it: a call whose `hold` went on without the ledger (no file left to open, a flood on `serve`)
        must not free the key another task of this process holds while its call is on the wire."""
        if self._fd is None or self._owner is not _task():
            return
        try:
            if self._said_who:
                self.update(holder=None)
            self.flush()
        finally:
            fd, self._fd, self._held, self._owner = self._fd, None, None, None
            os.close(fd)  # closing the file releases the lock

    def read(self) -> dict[str, Any]:
        """What the ledger records (held or not: a peek is advice, never a decision). Empty when there is none
        yet, or it cannot be read (a peek that met a write half done). While this process holds the key: the
        file as read when it took it, with what it has recorded since."""
        if self._fd is not None:
            if self._held is None:
                self._held = self._read_file()
            return self._held
        return self._read_file()

    def _read_file(self) -> dict[str, Any]:
        try:
            data = json.loads(self.data_path.read_bytes().rstrip(b"\0"))  # room taken for a write not yet made
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def update(self, **entries: Any) -> None:
        """Record `entries` (None removes one); only while held. Written at the next `announce`, `flush` or
        `release`: a call writes the ledger once before it goes on the wire and once when it is done, not once
        per entry."""
        if self._fd is None:
            return
        data = self.read()
        for key, value in entries.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self._dirty = True

    def flush(self) -> None:
        """Write what was recorded while held, in place, as the nonce beside it is (`write_over`): a temporary
        file renamed over the ledger cost ~160 µs of a core per write (a file made and a rename journalled), this
        ~5 µs. Whoever holds the key reads it whole; a peek by a process that does not may meet a write half
        done, which does not parse and reads as nothing recorded: advice, never a decision. A write that fails
        (no file left to open, a full disk) is skipped and leaves what the file held; the lock alone keeps the
        nonces in order."""
        if self._fd is None or not self._dirty or self._held is None:
            return
        self._dirty = False
        data = json.dumps(self._held).encode()  # json.dump encodes in Python, piece by piece: 5-10 x slower
        with contextlib.suppress(OSError):
            descriptor = os.open(self.data_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                write_over(descriptor, data)
            finally:
                os.close(descriptor)

    def venue(self, url: str, shared: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the ledger keeps of the venue at `url` for this key (what it counts, a pause it imposed, what
        it listed): a key is at one venue, but the tests' simulators, each on a port of its own, are many."""
        venues = (shared if shared is not None else self.read()).get("venues")
        entry = venues.get(url) if isinstance(venues, dict) else None
        return entry if isinstance(entry, dict) else {}

    def update_venue(self, url: str, **entries: Any) -> None:
        """Record `entries` for the venue at `url` (None removes one); only while held. What it keeps of venues
        not written to for VENUE_KEPT (another base URL once configured, a test's simulator on a port of its
        own) is dropped meanwhile: the file stays the size of what is in use, and so does every write of it."""
        now = self._clock()
        venues = self.read().get("venues")
        venues = {
            other: entry
            for other, entry in (venues.items() if isinstance(venues, dict) else ())
            if isinstance(entry, dict) and _recent(entry.get("seen"), now)
        }
        entry = {**self.venue(url, {"venues": venues}), **entries, "seen": now}
        venues[url] = {k: v for k, v in entry.items() if v is not None}
        self.update(venues=venues)

    # --- whose turn it is ------------------------------------------------------------------------------

    async def enqueue(self, urgent: bool) -> str:
        """A place in the key's queue, for a refresh or a drill-down: its calls go after those of every
        process that queued before it, and a one-shot's (`urgent`: `--once`, a drill-down, `config check`,
        which someone is waiting for) before any poller's, whose period can stretch."""
        ticket = f"{os.getpid()}-{next(_tickets)}"
        await self.hold(say_who=False)
        try:
            now = self._clock()
            entry = {"ticket": ticket, "pid": os.getpid(), "started": _started(os.getpid()), "urgent": urgent}
            self.update(queue=[*self._live_queue(now), {**entry, "since": now, "seen": now}])
        finally:
            self.release()
        return ticket

    async def dequeue(self, ticket: str) -> None:
        with contextlib.suppress(KeyBusy):
            await self.hold(say_who=False, patience=5.0)
            try:
                self.update(queue=[e for e in self._live_queue(self._clock()) if e["ticket"] != ticket])
            finally:
                self.release()

    def first_in_line(self, ticket: str, shared: dict[str, Any]) -> bool:
        """Whether no one the queue puts before `ticket` is still waiting (read from `shared`, while held;
        marks `ticket` as seen now, so that a place whose process stopped taking its turn is not kept)."""
        now = self._clock()
        queue = self._live_queue(now, shared)
        mine = next((e for e in queue if e["ticket"] == ticket), None)
        if mine is None:
            return True
        mine["seen"] = now
        self.update(queue=queue)
        rank = _rank(mine)
        return not any(_rank(e) < rank for e in queue if e["ticket"] != ticket)

    def _live_queue(self, now: float, shared: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The queue without the places of dead processes, or of ones that have not taken their turn for
        HOLD_PATIENCE seconds (stopped with Ctrl-Z, say): nobody waits behind those for ever."""
        entries = (shared if shared is not None else self.read()).get("queue", [])
        live = []
        for entry in entries if isinstance(entries, list) else []:
            try:
                fresh = now - float(entry["seen"]) < HOLD_PATIENCE  # ok-float: a time
                alive = _alive(int(entry["pid"]), entry.get("started"))
            except (KeyError, TypeError, ValueError):
                continue
            if fresh and alive:
                live.append(entry)
        return live

    # --- who polls the key ---------------------------------------------------------------------------

    async def join(self, url: str | None = None) -> list[Poller]:
        """Record this process as a poller of the key; the other live pollers, oldest first."""
        from tui.venues.pollers import Poller  # here: a one-shot (`--once`) polls nothing

        await self.hold()
        try:
            pollers = self._live_pollers()
            others = [p for p in pollers if p.pid != os.getpid()]
            mine = Poller(os.getpid(), ROLE["name"], self._clock(), url)
            self._store_pollers([*others, mine])
            return sorted(others, key=lambda p: p.since)
        finally:
            self.release()

    async def leave(self) -> None:
        """This process no longer polls the key (a process that dies without saying so is found dead)."""
        with contextlib.suppress(KeyBusy, OSError):
            await self.hold(patience=5.0)
            try:
                self._store_pollers([p for p in self._live_pollers() if p.pid != os.getpid()])
            finally:
                self.release()

    def others(self) -> list[str]:
        """The other live pollers of the key, described (a peek)."""
        return [
            p.describe().replace(" already polls this key", " polls it too")
            for p in self.pollers()
            if p.pid != os.getpid()
        ]

    def pollers(self) -> list[Poller]:
        """The live pollers the ledger knows of (a peek)."""
        return self._live_pollers()

    def _live_pollers(self) -> list[Poller]:
        from tui.venues.pollers import Poller

        found = []
        for entry in self.read().get("pollers", []):
            try:
                since = float(entry["since"])  # ok-float: a time
                poller = Poller(int(entry["pid"]), str(entry["role"]), since, entry.get("url"))
                started = entry.get("started")
            except (KeyError, TypeError, ValueError):
                continue
            if _alive(poller.pid, started):
                found.append(poller)
        return found

    def _store_pollers(self, pollers: list[Poller]) -> None:
        self.update(
            pollers=[
                {"pid": p.pid, "role": p.role, "since": p.since, "url": p.url, "started": _started(p.pid)}
                for p in pollers
            ]
        )

    def _busy(self, waited: float) -> str:
        holder = self.read().get("holder") or {}
        who = f"PID {holder.get('pid')} ({holder.get('role', 'balance-tui')})" if holder.get("pid") else "a process"
        return (
            f"another balance-tui process, {who}, has held this key for {waited:.0f} s: is it stuck? "
            "(it is freed when that process ends)"
        )


def write_over(fd: int, data: bytes) -> None:
    """`data` in place of the JSON the file holds, leaving it readable at every moment a process may die or a
    disk fill: the room a longer text needs is taken first (a full disk fails there, before a byte changes; a
    death there leaves the old text and NULs, which a reader strips), and a shorter text is written padded with
    spaces to the old length (JSON reads past them) before the file is cut to it."""
    size = os.fstat(fd).st_size
    reserve = getattr(os, "posix_fallocate", None)  # not on macOS: there a full disk may cut a write short
    if len(data) > size and reserve is not None:
        reserve(fd, 0, len(data))
    padded = data.ljust(size)
    written = 0
    while written < len(padded):
        written += os.pwrite(fd, padded[written:], written)
    if size > len(data):
        os.ftruncate(fd, len(data))


def _task() -> object | None:
    """Who holds the key within this process: the asyncio task (None outside one)."""
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def ledger_path(api_key: Secret, venue: str = "intx") -> Path:
    """Where the ledger of a key without a nonce file lives (an INTX key): named by a hash of the key."""
    tag = hashlib.sha256(api_key.reveal().encode()).hexdigest()[:32]
    return app_folder("state") / f"{venue}-keys" / tag


_ledgers: dict[Path, KeyLedger] = {}
_tickets = itertools.count(1)


def _recent(seen: object, now: float) -> bool:
    """Written to within VENUE_KEPT (an entry from before `seen` was recorded is not)."""
    return isinstance(seen, (int, float)) and not isinstance(seen, bool) and now - seen < VENUE_KEPT


def _rank(entry: dict[str, Any]) -> tuple[bool, float]:
    """Where a place stands in the queue: one-shots first, then by when they queued."""
    return (not entry.get("urgent"), float(entry.get("since", 0.0)))  # ok-float: a time


def ledger_at(lock_path: Path) -> KeyLedger:
    """The ledger whose lock is `lock_path`: one per key in a process, whoever asks first."""
    ledger = _ledgers.get(lock_path)
    if ledger is None:
        ledger = _ledgers[lock_path] = KeyLedger(lock_path)
    return ledger


def _started(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (Linux): with its pid, what tells it from a later
    process that was given the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rpartition(")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int, started: object) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, and another user's: not ours
        return False
    if isinstance(started, int):
        return _started(pid) == started
    return True
