"""`--once` imports only what it uses (issue 24): a cron job's start must not pay for the TUI, the server or the
history. The promise is checked by what the process imported (Python's own import log), never by timing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tui
from tests.conftest import _cli_env
from tui.sim import Simulator

# The package this test imported: a run from its folder imports the same code (a scratch copy under test).
SOURCE = Path(tui.__file__).resolve().parent.parent

# What --once never uses: the TUI (textual, rich), the server and browser (aiohttp, textual_serve,
# prometheus_client), the history (sqlite3), and our own modules built on them; evaluating alert rules and the
# cross-venue totals they read (a config's rules are read with tui.monitor.rules alone); `statistics` (and its
# `fractions`) for the median of a few round trips; `csv` unless --format csv; `shlex` unless a secret is a
# command; `tomli_w` unless a config is written.
NEVER = (
    *("textual", "rich", "aiohttp", "textual_serve", "prometheus_client", "sqlite3", "tui.ui", "tui.remote"),
    *("tui.monitor.alerts", "tui.monitor.totals", "statistics", "csv", "shlex", "tomli_w"),
)


def imported(log: str) -> set[str]:
    """The modules named in a PYTHONPROFILEIMPORTTIME log (`import time: self | cumulative | name` a line, a
    module after those it imported, indented by depth), less what httpx imports itself: in the test
    environment httpx brings its command line (click, rich, pygments), which a user's install has not."""
    names: set[str] = set()
    pending: list[tuple[int, set[str]]] = []  # subtrees not yet claimed by a parent: depth, their modules
    for line in log.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        field = line.rsplit("|", 1)[1]
        name, depth = field.strip(), len(field) - len(field.lstrip())
        if name == "package":  # the log's header line
            continue
        below = set().union(*(subtree for d, subtree in pending if d > depth))
        pending = [(d, subtree) for d, subtree in pending if d <= depth] + [(depth, below | {name})]
        names.add(name)
        if name == "httpx":
            names.difference_update(below)
    return names


def test_once_imports_nothing_it_does_not_use(sim: Simulator, sim_config: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tui", "--once", "--config", str(sim_config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_cli_env(None),
        stdin=subprocess.DEVNULL,
        check=False,
        cwd=SOURCE,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = imported(result.stderr)
    assert {"httpx", "tui.sinks.once"} <= names  # the log is read: what --once does use is in it
    loaded = sorted(n for n in names if any(n == bad or n.startswith(bad + ".") for bad in NEVER))
    assert not loaded, f"--once imported {sorted({n.split('.')[0] for n in loaded})}: {loaded[:10]}"
