"""A `{ command = "..." }` secret: one that hangs is ended with everything it started, and what it writes on
stderr is never shown (not in our messages, not on our terminal)."""

from __future__ import annotations

import shlex
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_config
from tui.credentials import CredentialError, SecretSource, load_secret

PATIENCE = 30.0


def living(token: str) -> list[int]:
    """Processes whose command line holds `token` and that still run (a killed orphan may linger as a zombie
    until init reaps it: that one runs nothing)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:  # it ended while we looked
            continue
        if token.encode() in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="looks for the processes in /proc")
def test_a_hung_command_is_ended_with_every_process_it_started(tmp_path: Path) -> None:
    seconds = f"300.{uuid.uuid4().int % 10**9}"  # a sleep no other process on this machine is running
    started = tmp_path / "started"
    script = f"sleep {seconds} & touch {shlex.quote(str(started))}; sleep {seconds}"
    with pytest.raises(CredentialError, match="did not finish within 1 s"):
        load_secret(SecretSource("command", shlex.join(["sh", "-c", script])), timeout=1.0)
    assert started.exists(), "the command was ended before it started its child: this test proves nothing"
    deadline = time.monotonic() + PATIENCE
    while living(seconds) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not living(seconds), "a process the secret command started outlived it"


def test_what_a_command_says_on_stderr_is_never_shown(sim_config: Path, tmp_path: Path) -> None:
    text = sim_config.read_text()
    secret = next(line for line in text.splitlines() if line.startswith("api_secret"))
    command = "sh -c 'echo stderr-of-the-secret-command >&2; exit 3'"
    config = write_config(tmp_path / "c.toml", text.replace(secret, f"api_secret = {{ command = {command!r} }}", 1))
    done = run_cli("config", "check", "--config", str(config))
    assert done.returncode == 1 and "failed with exit status 3" in done.stdout, done.stdout + done.stderr
    assert "stderr-of-the-secret-command" not in done.stdout + done.stderr


def test_output_that_is_not_text_is_one_clear_error() -> None:
    with pytest.raises(CredentialError, match="printed something that is not UTF-8 text"):
        load_secret(SecretSource("command", "printf '\\377\\376secret'"))
