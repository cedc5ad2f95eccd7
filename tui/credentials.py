"""Secrets: where they come from, how they are held, and how they are kept out of every text we print.

A `Secret` never shows its value in `repr`, `str`, f-strings or tracebacks. Every secret value ever
loaded is remembered (in this process only) so that `redact()` can scrub it from any text that could
echo a request: venue error bodies, exception messages, logs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

MASK = "***"
_MIN_REDACT_LEN = 4
RECENT_SIGNATURES = 256
_known: set[str] = set()
_signatures: deque[str] = deque(maxlen=RECENT_SIGNATURES)
_known_lock = threading.Lock()


class CredentialError(ValueError):
    """A secret could not be loaded; the message says which and why, never the value."""


class Secret:
    """A credential value that refuses to be printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


def remember(value: str) -> None:
    """Add a secret to what `redact` scrubs, for as long as the process lives."""
    if len(value) >= _MIN_REDACT_LEN:
        with _known_lock:
            _known.add(value)


def remember_signature(value: str) -> None:
    """Add a request's signature to what `redact` scrubs. Only the latest are kept: a signature can only
    come back in the answer to its own request, and a monitor that runs for weeks signs millions."""
    with _known_lock:
        _signatures.append(value)


def redact(text: str) -> str:
    """`text` with every known secret and recent signature replaced by ***."""
    with _known_lock:
        known = sorted({*_known, *_signatures}, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    return text


@dataclass(frozen=True, slots=True, repr=False)
class SecretSource:
    """Where a secret comes from, as written in the config (never the value itself, except `literal`)."""

    kind: str  # "env" | "file" | "command" | "literal"
    ref: str

    def __repr__(self) -> str:
        """A literal's `ref` is the secret itself: never shown."""
        return f"SecretSource({self.kind!r}, {MASK if self.kind == 'literal' else repr(self.ref)})"


def group_or_world_readable(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def load_secret(source: SecretSource, *, config_path: Path | None = None, timeout: float = 10.0) -> Secret:
    """Resolve a secret; raises `CredentialError` with a message safe to print."""
    if source.kind == "env":
        value = os.environ.get(source.ref)
        if not value:
            raise CredentialError(f"environment variable {source.ref} is not set or empty")
        return Secret(value.strip())
    if source.kind == "file":
        return Secret(_read_secret_file(Path(source.ref).expanduser(), config_path))
    if source.kind == "command":
        return Secret(_run_secret_command(source.ref, timeout))
    if source.kind == "literal":
        if config_path is not None and group_or_world_readable(config_path):
            raise CredentialError(
                f"{config_path} holds a literal secret but is readable by group or others: "
                f"run `chmod 600 {config_path}`, or use {{ env = ... }} / {{ file = ... }} instead"
            )
        return Secret(source.ref)
    raise CredentialError(f"unknown secret source {source.kind!r}")


def _read_secret_file(path: Path, config_path: Path | None) -> str:
    if not path.is_absolute() and config_path is not None:
        path = config_path.parent / path
    try:
        if group_or_world_readable(path):
            raise CredentialError(f"secret file {path} is readable by group or others: run `chmod 600 {path}`")
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise CredentialError(f"secret file {path} does not exist") from None
    except PermissionError:
        raise CredentialError(f"secret file {path} cannot be read: permission denied") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialError(f"secret file {path} cannot be read: {type(exc).__name__}") from None
    if not value:
        raise CredentialError(f"secret file {path} is empty")
    return value


def _run_secret_command(command: str, timeout: float) -> str:
    """The command's standard output, stripped. It runs in a session of its own, with no terminal and nothing
    on stdin; its stderr goes nowhere (neither into a message nor onto our terminal: it could hold the secret).
    One that does not finish in time, or that we stop waiting for in any other way (Ctrl-C), is ended with its
    whole process group, so nothing it started outlives it. One that finishes is left alone, with whatever
    daemon it started in a session of its own (gpg-agent)."""
    import shlex  # here: only a configured secret command needs it

    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise CredentialError(f"secret command {command!r} cannot be parsed: {exc}") from None
    if not argv:
        raise CredentialError("secret command is empty")
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise CredentialError(f"secret command {argv[0]!r} not found") from None
    except OSError as exc:
        raise CredentialError(f"secret command {argv[0]!r} could not run: {exc.strerror}") from None
    with proc:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_group(proc)
            raise CredentialError(f"secret command {argv[0]!r} did not finish within {timeout:g} s") from None
        except BaseException:
            _end_group(proc)
            raise
    if proc.returncode != 0:
        raise CredentialError(f"secret command {argv[0]!r} failed with exit status {proc.returncode}")
    try:
        value = out.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CredentialError(f"secret command {argv[0]!r} printed something that is not UTF-8 text") from None
    if not value:
        raise CredentialError(f"secret command {argv[0]!r} printed nothing")
    return value


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """End the command with everything it started, then reap it."""
    kill_group(proc.pid)
    proc.wait()


def kill_group(leader: int) -> None:
    """SIGKILL to the process group of a command started in a session of its own (`leader`, its pid, is the
    group's id). A group id is never given to a new process while any member of the group lives: the signal
    reaches only what the command started. The secret commands and the alert commands both end this way."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
