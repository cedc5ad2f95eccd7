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


class _WakingEvent(threading.Event):
    """The driver's exit event: setting it also wakes the input thread from its wait."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def set(self) -> None:
        super().set()
        self._wake()


class QuietLinuxDriver(LinuxDriver):
    """LinuxDriver whose input thread wakes for input, for the parser's deadline and for its stop, and never
    to poll."""

    def __init__(self, app: App[Any], **options: Any) -> None:
        super().__init__(app, **options)
        self._wake_lock = threading.Lock()
        self._wake_pipes: set[int] = set()  # the write ends of the running input threads' wake pipes
        self._suspended = False
        self.exit_event = _WakingEvent(self._wake)

    def _wake(self) -> None:
        with self._wake_lock:
            for fd in self._wake_pipes:
                with contextlib.suppress(OSError):  # a full pipe wakes its thread already
                    os.write(fd, b"\0")

    def _sigtstp_application(self, *args: Any) -> None:
        self._suspended = True  # the SIGCONT that ends this stop may resume (if Textual is to resume by itself)
        super()._sigtstp_application(*args)

    def _sigcont_application(self, *args: Any) -> None:
        """Resume only what our own SIGTSTP suspended: a hang-up's SIGCONT comes to a running app."""
        if self._suspended:
            self._suspended = False
            super()._sigcont_application(*args)

    def run_input_thread(self) -> None:
        """Textual's input loop (textual 8.2's LinuxDriver.run_input_thread), waiting on the terminal and the
        wake pipe with the parser's own deadline for a timeout instead of a 0.1 s poll."""
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        with self._wake_lock:  # from here a stop wakes the wait; a stop before it is seen by the loop's test
            self._wake_pipes.add(wake_write)
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        selector.register(wake_read, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode

        def process(ready: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> bool:
            """Parse what is ready; False once the terminal is at its end (hung up): nothing more will come."""
            for key, _mask in ready:
                if key.fd == wake_read:
                    continue  # a stop: the loop's test ends the wait
                data = os.read(self.fileno, 1024 * 4)
                if not data:
                    return False
                text = decode(data, final=final)  # "" for the first bytes of a character: the rest follows
                if text:
                    for event in parser.feed(text):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)
            return True

        def timeout() -> float | None:
            deadline = parser._timeout_time
            return None if deadline is None else max(0.0, deadline - get_time())

        try:
            while not self.exit_event.is_set():
                if not process(selector.select(timeout())):
                    break
            else:
                selector.unregister(wake_read)
                process(selector.select(0.1), final=True)
        finally:
            selector.close()
            with self._wake_lock:
                self._wake_pipes.discard(wake_write)
            os.close(wake_write)
            os.close(wake_read)
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass
