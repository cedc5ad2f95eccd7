"""The terminal driver's input thread, on a real pseudo-terminal: it reads keys as Textual's does, sleeps
without a timeout while nothing comes (Textual's polls ten times a second), keeps the parser's deadline for
a lone Escape, and ends at once when the driver stops it, as many times as the app is suspended and resumed."""

from __future__ import annotations

import os
import queue
import selectors
import signal
import threading
import time
import tty
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from textual import constants, events
from textual.drivers.linux_driver import LinuxDriver

from tui.config import parse
from tui.sim import Simulator
from tui.ui.app import BalanceApp
from tui.ui.driver import QuietLinuxDriver

PATIENCE = 30.0  # a safety net for a thread that never answers; every wait below ends on its event


class Recorded(QuietLinuxDriver):
    """The driver with what its input thread parses kept in a queue instead of posted to an app."""

    def __init__(self, fileno: int) -> None:
        super().__init__(app=None)  # type: ignore[arg-type]
        self.fileno = fileno
        self.parsed: queue.Queue[object] = queue.Queue()

    def process_message(self, message: object) -> None:  # type: ignore[override]
        self.parsed.put(message)

    def next_key(self) -> str:
        while True:
            message = self.parsed.get(timeout=PATIENCE)
            if isinstance(message, events.Key):
                return message.key

    def start_input(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_input_thread, daemon=True)
        thread.start()
        return thread

    def stop_input(self, thread: threading.Thread) -> None:
        """What `disable_input` does (set, join, clear), without its terminal writes."""
        self.exit_event.set()
        thread.join(PATIENCE)
        assert not thread.is_alive(), "the input thread did not end when the driver stopped it"
        self.exit_event.clear()


@pytest.fixture
async def pty_driver() -> AsyncIterator[tuple[Recorded, int]]:
    """A driver (made in an event loop, as Textual makes it) reading the slave side of a new pseudo-terminal;
    the test types on the master side. The driver's signal handlers (suspend, resume) are put back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTSTP, signal.SIGCONT)}
    master, slave = os.openpty()
    tty.setraw(slave)  # as the driver leaves the terminal: each byte readable as it comes
    try:
        yield Recorded(slave), master
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        os.close(master)
        os.close(slave)


@pytest.fixture
def select_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """Every timeout the input thread gives `select`."""
    timeouts: list[float | None] = []
    real = selectors.SelectSelector.select

    def select(self: selectors.SelectSelector, timeout: float | None = None) -> Any:
        timeouts.append(timeout)
        return real(self, timeout)

    monkeypatch.setattr(selectors.SelectSelector, "select", select)
    return timeouts


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_keys_are_read_without_polling(pty_driver: tuple[Recorded, int], select_timeouts: list) -> None:
    driver, master = pty_driver
    thread = driver.start_input()
    os.write(master, b"a")
    assert driver.next_key() == "a"
    waits = len(select_timeouts)
    os.write(master, "é".encode()[:1])  # a character's first byte alone: no key yet, and not the end
    wait_for(lambda: len(select_timeouts) > waits, "the thread did not wait again after a character's first byte")
    os.write(master, "é".encode()[1:])
    assert driver.next_key() == "é"
    os.write(master, b"\x1b[A")  # a whole sequence in one read: the up arrow, no deadline needed
    assert driver.next_key() == "up"
    driver.stop_input(thread)
    assert len(select_timeouts) >= 3 and set(select_timeouts) == {None}, f"it woke on a timer: {select_timeouts}"
    # nor read once stopped (Textual's last 0.1 s read delivered keys typed after a quit or a suspend)


async def test_a_lone_escape_is_a_key_once_the_parser_stops_waiting(
    pty_driver: tuple[Recorded, int], select_timeouts: list
) -> None:
    """Escape starts a sequence: the parser waits a moment for the rest, then calls it the Escape key. The
    thread sleeps for just that moment, and without a timeout again once the key is out."""
    driver, master = pty_driver
    thread = driver.start_input()
    os.write(master, b"\x1b")
    assert driver.next_key() == "escape"
    os.write(master, b"q")
    assert driver.next_key() == "q"  # a q of its own, not Alt+q: the escape was already out
    waits = list(select_timeouts)
    driver.stop_input(thread)
    timed = [t for t in waits if t is not None]
    assert timed and all(0 <= t <= 0.2 for t in timed), waits
    assert max(timed) > constants.ESCAPE_DELAY, waits  # the rest of a sequence may come a little late
    assert waits[0] is None and waits[-1] is None, waits  # the q was waited for without a timer


async def test_the_thread_ends_when_stopped_and_starts_again_as_after_a_suspend(
    pty_driver: tuple[Recorded, int],
) -> None:
    """A stop wakes the sleeping thread; a suspend closes the driver and a resume starts a new thread on it;
    a stop given before a thread has begun is still seen; no descriptor is left open."""
    driver, master = pty_driver
    before = open_fds()
    for key in ("a", "b", "c"):
        thread = driver.start_input()
        os.write(master, key.encode())
        assert driver.next_key() == key
        driver.stop_input(thread)
        driver.close()  # what suspend_application_mode does after stopping the input
    driver.exit_event.set()
    early = driver.start_input()
    early.join(PATIENCE)
    assert not early.is_alive()
    assert open_fds() == before


async def test_two_threads_running_at_once_are_both_stopped(pty_driver: tuple[Recorded, int]) -> None:
    """Textual has been seen to start a second input thread while the first runs (a SIGCONT it took for a
    resume): a stop wakes every one of them."""
    driver, _master = pty_driver
    first, second = driver.start_input(), driver.start_input()
    driver.stop_input(second)
    first.join(PATIENCE)
    assert not first.is_alive(), "the first input thread was left waiting"


async def test_a_stop_holds_even_when_the_exit_event_is_cleared_at_once(pty_driver: tuple[Recorded, int]) -> None:
    """`disable_input` sets the exit event, joins the newest thread and clears it: an older thread that looks
    only after the clear must still end (it was left waiting, or spinning on a wake byte never read)."""
    driver, _master = pty_driver
    first, second = driver.start_input(), driver.start_input()
    wait_for(lambda: len(driver._stops) == 2, "the input threads did not start")  # both running, as in the app
    driver.exit_event.set()
    driver.exit_event.clear()
    for thread in (first, second):
        thread.join(PATIENCE)
        assert not thread.is_alive(), "an input thread did not end after its stop"


async def test_a_terminal_at_its_end_ends_the_thread(pty_driver: tuple[Recorded, int]) -> None:
    """A hung-up terminal reads as its end, at once and forever: the thread stops reading (Textual's went on
    asking, at full speed, and kept the process from exiting)."""
    driver, _master = pty_driver
    read, write = os.pipe()
    driver.fileno = read
    try:
        thread = driver.start_input()
        os.write(write, b"a")
        assert driver.next_key() == "a"
        os.close(write)
        thread.join(PATIENCE)
        assert not thread.is_alive(), "the input thread is still reading a terminal at its end"
    finally:
        os.close(read)


async def test_only_a_continue_after_our_own_suspend_resumes(
    pty_driver: tuple[Recorded, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dropped terminal sends SIGHUP and SIGCONT together: the SIGCONT must not start a second application
    mode in a running app. After a SIGTSTP a SIGCONT resumes; one whose resume did not start (`bg`: in the
    background the terminal stops the program again) leaves the next (`fg`) to resume."""
    driver, _master = pty_driver
    calls: list[str] = []
    starts = iter([False, True])  # the resume after `bg` stops before its threads; after `fg` it starts

    def resume() -> None:
        started = next(starts)
        calls.append("resume" if started else "resume stopped early")
        if started:
            driver._key_thread = driver.start_input()

    monkeypatch.setattr(driver, "suspend_application_mode", lambda: calls.append("suspend"))
    monkeypatch.setattr(driver, "resume_application_mode", resume)
    monkeypatch.setattr(os, "kill", lambda pid, sig: calls.append(f"kill {signal.Signals(sig).name}"))
    driver._sigcont_application()
    assert calls == []
    driver._sigtstp_application()
    driver._sigcont_application()  # bg
    driver._sigcont_application()  # fg
    driver._sigcont_application()  # a hang-up's, to the running app
    assert calls == ["suspend", "kill SIGSTOP", "resume stopped early", "resume"]
    calls.clear()
    assert driver._key_thread is not None
    with driver.no_automatic_restart():  # App.suspend: it stops and starts application mode itself
        driver.stop_input(driver._key_thread)
        driver._sigtstp_application()
        driver._sigcont_application()
        driver._key_thread = driver.start_input()
    driver._sigcont_application()  # a later hang-up's: the app had resumed itself
    assert calls == ["kill SIGSTOP"]
    driver.stop_input(driver._key_thread)


def test_the_app_runs_on_the_quiet_driver_unless_told_another(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    app = BalanceApp(parse(sim.config_text(5)), demo=True)
    assert app.get_driver_class() is QuietLinuxDriver and issubclass(QuietLinuxDriver, LinuxDriver)
    monkeypatch.setattr("textual.constants.DRIVER", "textual.drivers.headless_driver:HeadlessDriver")
    assert app.get_driver_class().__name__ == "HeadlessDriver"  # textual-serve names its own: it stays
