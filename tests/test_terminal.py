"""The real console script in a real terminal (tmux), as an operator over SSH sees it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tui.venues import intx

SCRIPT = Path(sys.executable).with_name("balance-tui")
# A safety net only: every wait below polls for the state it needs and returns as soon as it is there.
# How fast the program starts or draws is measured in bench/, never asserted here.
PATIENCE = 60.0


class Terminal:
    def __init__(self, socket: str, tmp: Path) -> None:
        self.socket = socket
        self.tmp = tmp
        self.statusfile = tmp / "status"
        self.conf = tmp / "tmux.conf"
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\n")

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", str(self.conf), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=PATIENCE,
        )
        return done.stdout

    def start(self, command: str, env: str = "", size: tuple[int, int] = (120, 40)) -> int:
        """Run `command` in the pane, in the foreground of a shell that waits for it and writes its exit status
        to a file; returns the program's pid (the shell's child).

        tmux, a pane's parent, was seen to leave an exited program unreaped (a zombie) for over a minute on a
        loaded machine, so its pane never read dead: the shell reaps the program and reports instead."""
        pidfile = self.tmp / "pid"
        script = f"unset COLUMNS LINES; echo $$ > {pidfile}; {env} {command}; echo $? > {self.statusfile}"
        self.tmux("new-session", "-d", "-s", "t", "-x", str(size[0]), "-y", str(size[1]), f"sh -c '{script}'")
        deadline = time.monotonic() + PATIENCE
        while not (pidfile.exists() and pidfile.read_text().strip().isdigit()):
            assert time.monotonic() < deadline, "the shell did not start"
            time.sleep(0.05)
        return self._child(int(pidfile.read_text()), command)

    def start_in_shell(self, command: str) -> int:
        """Run `command` from a shell that reports, once it ends, its exit status and whether the tty's
        settings are back as they were. Returns the program's pid (the inner shell's child)."""
        script = self.tmp / "run.sh"
        script.write_text(
            "unset COLUMNS LINES\n"
            "before=$(stty -g)\n"
            f"{command}\n"
            "code=$?\n"
            '[ "$before" = "$(stty -g)" ] && tty=same || tty=changed\n'
            'echo "ended: exit $code, tty $tty"\n'
            "sleep 600\n"  # keeps the report on screen however long the test takes to read it
        )
        return self._child(self.start(f"sh {script}"), command)

    def _child(self, shell: int, command: str) -> int:
        """The pid of `command` started by `shell` (not its other children: a `stty -g` runs before it)."""
        deadline = time.monotonic() + PATIENCE
        while True:
            found = subprocess.run(
                ["pgrep", "-P", str(shell), "-f", command.split()[0]], capture_output=True, text=True, check=False
            )
            if found.stdout.split():
                return int(found.stdout.split()[0])
            assert time.monotonic() < deadline, "the program did not start"
            time.sleep(0.05)

    def flags(self) -> dict[str, str]:
        """What the terminal itself is left in: alternate screen, mouse reporting, cursor shown."""
        names = ("alternate_on", "mouse_any_flag", "cursor_flag")
        values = self.tmux("display", "-p", "-t", "t", ":".join(f"#{{{n}}}" for n in names)).strip().split(":")
        return dict(zip(names, values, strict=True))

    def screen(self, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "t")

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "t", key)
            time.sleep(0.15)

    def wait_for(self, condition: Callable[[str], object], timeout: float = PATIENCE) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if condition(text):
                return text
            if time.monotonic() > deadline:
                size = self.tmux("display", "-p", "-t", "t", "#{window_width}x#{window_height}").strip()
                raise AssertionError(f"screen ({size}) never matched; last screen:\n{text}")
            time.sleep(0.1)

    def exit_status(self, timeout: float = PATIENCE) -> int:
        """The program's exit status, as the shell that waited for it wrote it (128 + N: killed by signal N)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.statusfile.read_text().strip() if self.statusfile.exists() else ""
            if text.isdigit():
                assert int(text) < 128, f"the program was killed by signal {int(text) - 128}"
                return int(text)
            time.sleep(0.1)
        raise AssertionError(f"the program did not exit; the screen:\n{self.screen()}")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is required for the terminal tests (scripts/test installs it)")
        pytest.skip("tmux is not installed")
    term = Terminal(f"bt-{os.getpid()}-{time.monotonic_ns()}", tmp_path)
    yield term
    term.tmux("kill-server")


def gone(pid: int) -> bool:
    """The process has ended: no such pid, or only its zombie is left for tmux to reap (a busy tmux
    server can take a while to collect it, and a zombie runs nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return process_state(pid) in ("Z", "X")
    except (OSError, IndexError):
        return True


def wait_gone(pid: int, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not gone(pid):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def detail_title(screen: str) -> str:
    match = re.search(r"in portfolio .+?\)", screen)
    assert match, screen
    return match.group(0)


def test_demo_in_a_real_terminal(terminal: Terminal) -> None:
    pid = terminal.start(f"{SCRIPT} --demo")
    screen = terminal.wait_for(lambda s: "Treasury" in s and re.search(r"│ Main +\S+ +\d", s))
    assert "DEMO" in screen
    terminal.keys("Tab", "j", "j", "Enter")
    screen = terminal.wait_for(lambda s: "portfolio summary" in s and "not reported" not in s.split("quantity")[0])
    screen = terminal.wait_for(lambda s: all(name in s for name in intx.FIELDS))
    first = detail_title(screen)
    terminal.keys("Escape")
    terminal.wait_for(lambda s: "portfolio summary" not in s and "Treasury" in s)
    terminal.keys("Enter")
    screen = terminal.wait_for(lambda s: "portfolio summary" in s)
    assert detail_title(screen) == first  # the cursor came back to the same row
    terminal.keys("Escape")
    # q only once the detail has closed: an Escape and a q read together are Alt+q, not two keys
    terminal.wait_for(lambda s: "portfolio summary" not in s and "Treasury" in s)
    terminal.keys("q")
    assert terminal.exit_status() == 0
    wait_gone(pid, "balance-tui is still running after q")


def test_the_demo_leaves_nothing_on_disk(terminal: Terminal, tmp_path: Path) -> None:
    """Throwaway keys and simulated money: no nonce, no key ledger, no history written anywhere — the platform
    state and data folders (fresh ones here) are as empty after a demo as before it."""
    state, data = tmp_path / "state", tmp_path / "data"
    state.mkdir()
    data.mkdir()
    terminal.start(f"{SCRIPT} --demo", env=f"XDG_STATE_HOME={state} XDG_DATA_HOME={data}")
    terminal.wait_for(lambda s: "Treasury" in s and re.search(r"│ Main +\S+ +\d", s))
    terminal.keys("r")  # a second round of signed calls: nonces taken again
    terminal.wait_for(lambda s: "refreshing" not in s and "Treasury" in s)
    terminal.keys("q")
    assert terminal.exit_status() == 0
    assert [p for p in state.rglob("*") if p.is_file()] == [] and [p for p in data.rglob("*") if p.is_file()] == []


def test_values_in_a_real_terminal(terminal: Terminal) -> None:
    """What it is worth, as an operator sees it: dollars to the cent, biggest first, the headers' worth,
    the firm's gross and net, where the prices come from, and the exact digits one key away."""
    pid = terminal.start(f"{SCRIPT} --demo")
    screen = terminal.wait_for(lambda s: all(w in s for w in ("value (USD)", "worth $", " net", "prices: kraken")))
    rows = re.findall(r"│ (?:Treasury|Cold storage|Operations) +\S+ +(\d{1,3}(?:,\d{3})*\.\d\d) ", screen)
    values = [Decimal(v.replace(",", "")) for v in rows]
    assert len(values) >= 3 and values == sorted(values, reverse=True)  # Kraken's rows, biggest first
    assert re.search(r"\$[\d,]+\.\d\d gross", screen) and "sort: value ↓" in screen
    terminal.keys("Enter")
    screen = terminal.wait_for(lambda s: "worth  $" in s and "exact  " in s)
    assert re.search(r"worth  \$[\d,]+\.\d\d  = holding × \$[\d.]+ \(\w+ on kraken", screen)
    terminal.keys("Escape")
    terminal.wait_for(lambda s: "exact  " not in s and "value (USD)" in s)
    terminal.keys("q")
    assert terminal.exit_status() == 0
    wait_gone(pid, "balance-tui is still running after q")


def colours(screen: str) -> list[tuple[int, ...]]:
    """Every 256-colour index or RGB triple set by SGR escapes on the screen."""
    found: list[tuple[int, ...]] = []
    for params in re.findall(r"\x1b\[([0-9;]*)m", screen):
        codes = [int(p) for p in params.split(";") if p]
        i = 0
        while i < len(codes):
            if codes[i] in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                found.append((codes[i + 2],))
                i += 3
            elif codes[i] in (38, 48) and i + 4 < len(codes) and codes[i + 1] == 2:
                found.append(tuple(codes[i + 2 : i + 5]))
                i += 5
            else:
                if 31 <= codes[i] <= 36 or 91 <= codes[i] <= 96:
                    found.append((-codes[i],))  # a basic hue: never grey
                i += 1
    return found


def grey(colour: tuple[int, ...]) -> bool:
    if len(colour) == 3:
        return colour[0] == colour[1] == colour[2]
    (index,) = colour
    if index < 0:
        return False
    if index >= 232 or index in (0, 7, 8, 15, 16, 231):
        return True
    if 16 <= index <= 231:
        r, g, b = (index - 16) // 36, (index - 16) // 6 % 6, (index - 16) % 6
        return r == g == b
    return False


def test_no_color_is_honoured(terminal: Terminal) -> None:
    terminal.start(f"{SCRIPT} --demo", env="NO_COLOR=1")
    terminal.wait_for(lambda s: "Treasury" in s)
    hues = [c for c in colours(terminal.screen(escapes=True)) if not grey(c)]
    assert not hues, f"colours with a hue despite NO_COLOR: {hues[:5]}"
    terminal.keys("q")
    assert terminal.exit_status() == 0


def test_hangup_ends_the_program(terminal: Terminal) -> None:
    pid = terminal.start(f"{SCRIPT} --demo")
    terminal.wait_for(lambda s: "Treasury" in s)
    os.kill(pid, 1)  # SIGHUP, as when the SSH connection drops
    wait_gone(pid, "still running after SIGHUP")


def test_stopped_sent_to_the_background_and_back_it_works_again(terminal: Terminal) -> None:
    """Ctrl+Z's stop, then the shell's `bg` (in the background the terminal stops the program again before it
    can take it back), then `fg`: it draws and reads keys again, and q quits."""
    terminal.tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "40", "PS1='$ ' bash --norc --noprofile -i")
    shell = int(terminal.tmux("display", "-p", "-t", "t", "#{pane_pid}").strip())
    terminal.tmux("send-keys", "-t", "t", f"{SCRIPT} --demo", "Enter")
    pid = terminal._child(shell, str(SCRIPT))
    terminal.wait_for(lambda s: "Treasury" in s)
    os.kill(pid, signal.SIGTSTP)
    terminal.wait_for(lambda s: "Stopped" in s)
    terminal.tmux("send-keys", "-t", "t", "bg", "Enter")
    terminal.wait_for(lambda s: "balance-tui --demo &" in s)
    wait_stopped(pid)
    terminal.tmux("send-keys", "-t", "t", "fg", "Enter")
    terminal.wait_for(lambda s: "Treasury" in s)
    reads_keys(terminal)
    terminal.keys("q")
    wait_gone(pid, "still running after q")


def wait_stopped(pid: int) -> None:
    deadline = time.monotonic() + PATIENCE
    while process_state(pid) != "T":
        assert time.monotonic() < deadline, "the program did not stop"
        time.sleep(0.05)


def test_a_dropped_terminal_ends_the_program(terminal: Terminal) -> None:
    """The terminal itself goes (tmux closes it, as sshd does when the connection drops): the kernel sends
    SIGHUP and SIGCONT, reads come back empty. The program ends; none of its threads is left behind."""
    pid = terminal.start(f"{SCRIPT} --demo")
    terminal.wait_for(lambda s: "Treasury" in s)
    terminal.tmux("kill-server")
    wait_gone(pid, "still running after its terminal went away")


def test_a_continue_signal_to_a_running_program_changes_nothing(terminal: Terminal) -> None:
    """SIGCONT without a stop before it (it comes with every hang-up): no second start of the terminal,
    whose threads nothing would stop. Keys still work and a SIGHUP still ends the program."""
    pid = terminal.start(f"{SCRIPT} --demo")
    terminal.wait_for(lambda s: "Treasury" in s)
    os.kill(pid, signal.SIGCONT)
    reads_keys(terminal)
    os.kill(pid, signal.SIGHUP)
    wait_gone(pid, "still running after SIGHUP")


def process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def reads_keys(terminal: Terminal) -> None:
    """? opens the help and Escape closes it: the program draws and reads its keys."""
    terminal.keys("?")
    terminal.wait_for(lambda s: "balance-tui — keys" in s)
    terminal.keys("Escape")
    terminal.wait_for(lambda s: "balance-tui — keys" not in s and "Treasury" in s)


def test_suspended_and_resumed_it_reads_keys_again(terminal: Terminal) -> None:
    """Stopped (Ctrl+Z's signal) it gives the terminal back and stops its input thread; continued, it takes
    the terminal again with a new one: keys work, q quits cleanly."""
    pid = terminal.start_in_shell(f"{SCRIPT} --demo")
    terminal.wait_for(lambda s: "Treasury" in s)
    os.kill(pid, signal.SIGTSTP)
    wait_stopped(pid)
    assert terminal.flags()["alternate_on"] == "0"
    os.kill(pid, signal.SIGCONT)
    terminal.wait_for(lambda s: "Treasury" in s)
    reads_keys(terminal)
    terminal.keys("q")
    screen = terminal.wait_for(lambda s: "ended:" in s)
    assert "ended: exit 0, tty same" in screen, screen


@pytest.mark.parametrize("how", ["q", "C-c", "SIGTERM", "SIGHUP", "SIGINT"])
def test_the_terminal_is_given_back_as_it_was(terminal: Terminal, how: str) -> None:
    """However the program ends (a key, `kill`, a dropped connection), the shell gets its terminal back:
    same tty settings, main screen, no mouse reporting, cursor shown."""
    pid = terminal.start_in_shell(f"{SCRIPT} --demo")
    terminal.wait_for(lambda s: "Treasury" in s)
    assert terminal.flags()["alternate_on"] == "1"
    if how in ("q", "C-c"):  # Ctrl-C is a key in a TUI's raw terminal: it quits as q does
        terminal.keys(how)
    else:
        os.kill(pid, getattr(signal, how))
    screen = terminal.wait_for(lambda s: "ended:" in s)
    assert "ended: exit 0, tty same" in screen, screen
    assert "Traceback" not in screen
    assert terminal.flags() == {"alternate_on": "0", "mouse_any_flag": "0", "cursor_flag": "1"}
    assert gone(pid)
