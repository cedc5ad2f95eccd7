"""The terminal driver: Textual's own for Linux and macOS, with an input thread that sleeps until a key comes,
and that a dropped terminal does not leave behind.

Textual's input thread wakes ten times a second to ask its key parser whether a lone Escape has waited long
enough to be a key of its own. On a desk left open for hours that is 36,000 wake-ups an hour for nothing,
and with the GIL taken each time it cost ~0.12 % of a core on a 2-core server: a sixth of the idle TUI's
CPU. This thread blocks until a byte arrives, until the parser's own deadline when it does wait for the
rest of a sequence, or until the driver stops it (quit, suspend): what it reads and parses is Textual's.

A terminal that hangs up (an SSH connection dropped) sends SIGHUP and SIGCONT together. Textual restarts
application mode on every SIGCONT, suspended or not: a second input and output thread that the app's exit
never stops, and the process stayed behind after its window closed, its input thread spinning on the dead
terminal. Here only a SIGCONT after our own suspend resumes, and a terminal at its end ends the thread.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
from codecs import getincrementaldecoder
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

if TYPE_CHECKING:
    from textual.app import App


GRACE = 0.05  # added to the parser's deadline: Textual's poll gave ESCDELAY plus 0-0.1 s, and over a slow link the
# rest of a sequence (an arrow, a mouse report) may come that much later; never stricter than Textual on average


class _WakingEvent(threading.Event):
    """The driver's exit event: setting it also stops every running input thread."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def set(self) -> None:
        super().set()
        self._wake()


class _Stop:
    """One input thread's stop: a flag that no later `clear()` of the exit event undoes (`disable_input` sets,
    joins the newest thread only, and clears), and a pipe whose byte ends the thread's wait."""

    def __init__(self) -> None:
        self.read, self.write = os.pipe()
        os.set_blocking(self.read, False)
        os.set_blocking(self.write, False)
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        with contextlib.suppress(OSError):  # a full pipe wakes the thread already
            os.write(self.write, b"\0")

    def close(self) -> None:
        os.close(self.write)
        os.close(self.read)


class QuietLinuxDriver(LinuxDriver):
    """LinuxDriver whose input thread wakes for input, for the parser's deadline and for its stop, and never
    to poll."""

    def __init__(self, app: App[Any], **options: Any) -> None:
        super().__init__(app, **options)
        self._stops_lock = threading.Lock()
        self._stops: set[_Stop] = set()  # one per running input thread
        self._suspended = False
        self.exit_event = _WakingEvent(self._wake)

    def _wake(self) -> None:
        with self._stops_lock:
            for stop in self._stops:
                stop.stop()

    def _sigtstp_application(self, *args: Any) -> None:
        self._suspended = self._auto_restart  # Textual suspends (and is to resume) only then: App.suspend() does
        # its own stop and start
        super()._sigtstp_application(*args)

    def _sigcont_application(self, *args: Any) -> None:
        """Resume only what our own SIGTSTP suspended: a hang-up's SIGCONT comes to a running app. A resume that
        did not start (the shell's `bg`: in the background the terminal stops it again) waits for the next
        SIGCONT (`fg`)."""
        if not self._suspended:
            return
        super()._sigcont_application(*args)
        thread = self._key_thread
        self._suspended = thread is None or not thread.is_alive()

    def run_input_thread(self) -> None:
        """Textual's input loop (textual 8.2's LinuxDriver.run_input_thread), waiting on the terminal and a
        stop pipe with the parser's own deadline for a timeout instead of a 0.1 s poll; it reads nothing once
        stopped (Textual's last 0.1 s read was thrown away by its tcflush)."""
        stop = _Stop()
        with self._stops_lock:
            self._stops.add(stop)
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        selector.register(stop.read, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode

        def process(ready: list[tuple[selectors.SelectorKey, int]]) -> bool:
            """Parse what is ready; False once the terminal is at its end (hung up: nothing more will come, and
            Textual's loop went on asking at full speed)."""
            for key, _mask in ready:
                if key.fd == stop.read:
                    continue  # stopped: the loop's test ends it
                data = os.read(self.fileno, 1024 * 4)
                if not data:
                    return False
                text = decode(data)  # "" for the first bytes of a character: the rest follows
                if text:
                    for event in parser.feed(text):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)
            return True

        def timeout() -> float | None:
            deadline = parser._timeout_time
            return None if deadline is None else max(0.0, deadline + GRACE - get_time())

        try:
            while not (stop.stopped or self.exit_event.is_set()):
                if not process(selector.select(timeout())):
                    break
        finally:
            selector.close()
            with self._stops_lock:
                self._stops.discard(stop)
            stop.close()
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass
