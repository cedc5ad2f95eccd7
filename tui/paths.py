"""Folders and files that only their owner may open: the history, the Kraken nonces, the configs we write.

Every folder balance-tui creates is 0700 and every private file it creates 0600, whatever the umask (a mode
given to mkdir or open is only ever narrowed by the umask, never widened); that is also the XDG rule for the
folders an application creates. A folder or file of ours that was left open to other users (by an older
release, a copy, a umask) is tightened, and the caller is told in one line. A folder the operator chose (the
folder of a `[history] path`, of `--config-out`) is theirs: created 0700 if it is missing, never chmod-ed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

OTHERS = stat.S_IRWXG | stat.S_IRWXO  # any permission for the group or for everyone else
Tell = Callable[[str], None]


def app_folder(kind: str) -> Path:
    """balance-tui's platform folder of this kind: "data" (history), "state" (Kraken nonces) or "cache"."""
    import platformdirs

    folders = {
        "data": platformdirs.user_data_path,
        "state": platformdirs.user_state_path,
        "cache": platformdirs.user_cache_path,
    }
    return folders[kind]("balance-tui")


def private_folder(path: Path, *, ours: Path | None = None, tell: Tell | None = None) -> Path:
    """`path` as a folder: created with every missing parent 0700. `ours` (balance-tui's own platform folder,
    at or above `path`): it and every folder below it down to `path` that is open to others is tightened to
    owner-only, and `tell` says so. No other existing folder is ever chmod-ed. Raises OSError, saying which
    file is in the way when a file sits where a folder should be."""
    _make(path)
    if ours is not None and path.is_relative_to(ours):
        folder = path
        while True:
            tighten(folder, tell)
            if folder == ours:
                break
            folder = folder.parent
    return path


def private_file(path: Path, tell: Tell | None = None) -> None:
    """`path` created empty with mode 0600 if missing; if it exists and others may open it, made owner-only
    (and `tell` says so). Its folder must exist."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        tighten(path, tell)


def tighten(path: Path, tell: Tell | None = None) -> None:
    """Take every permission of the group and others off `path` (the owner's stay as they are), if it has
    any; `tell` says what was done, or what the operator should do if it could not be (another owner)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:  # a -wal that SQLite removed meanwhile: nothing left to tighten
        return
    if not mode & OTHERS:
        return
    private = mode & ~OTHERS
    try:
        os.chmod(path, private)
    except OSError as exc:
        if tell is not None:
            tell(
                f"{path} can be read by other users (mode {mode:o}) and cannot be made private: "
                f"{exc.strerror or exc}; run `chmod go= {path}`"
            )
        return
    if tell is not None:
        tell(f"{path} could be read by other users (mode {mode:o}): it is now private (mode {private:o})")


def _make(path: Path) -> None:
    """mkdir -p with mode 0700 for each folder it creates (pathlib's gives the parents the default mode)."""
    try:
        path.mkdir(mode=0o700)
    except FileNotFoundError:
        if path.parent == path:
            raise
        _make(path.parent)
        _make(path)
    except FileExistsError:
        if not path.is_dir():
            raise _in_the_way(path) from None
    except NotADirectoryError:
        raise _in_the_way(path) from None


def _in_the_way(path: Path) -> OSError:
    """The error for a file that sits where `path` or one of its folders should be, naming that file."""
    for where in (*reversed(path.parents), path):
        if where.exists() and not where.is_dir():
            return NotADirectoryError(errno.ENOTDIR, f"{where} is a file, where a folder should be", str(path))
    return NotADirectoryError(errno.ENOTDIR, "a file is where a folder should be", str(path))
