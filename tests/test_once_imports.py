"""`--once` imports only what it uses (issue 24): a cron job's start must not pay for the TUI, the server or the
history. The promise is checked by what the process imported (Python's own import log), never by timing."""

from __future__ import annotations

import dataclasses
import importlib
import json
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
# command; `tomli_w` unless a config is written. Nor the classes of what a config without [[alert]] or
# [statements] never holds, of what only a drill-down or an alert asks (a Kraken vault's details, an INTX
# portfolio's summary), or of the key's pollers: building a dataclass costs ~0.5 ms.
NEVER = (
    *("textual", "rich", "aiohttp", "textual_serve", "prometheus_client", "sqlite3", "tui.ui", "tui.remote"),
    *("tui.monitor.alerts", "tui.monitor.totals", "statistics", "csv", "shlex", "tomli_w"),
    *("tui.monitor.rule", "tui.statements_config", "tui.venues.kraken_vault", "tui.venues.intx_summary"),
    "tui.venues.pollers",
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


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    """This Python in a fresh process from the source folder, as a user runs the program."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_cli_env(None),
        stdin=subprocess.DEVNULL,
        check=False,
        cwd=SOURCE,
    )


def test_once_imports_nothing_it_does_not_use(sim: Simulator, sim_config: Path) -> None:
    result = _python("-X", "importtime", "-m", "tui", "--once", "--config", str(sim_config))
    assert result.returncode == 0, result.stderr[-2000:]
    names = imported(result.stderr)
    assert {"httpx", "tui.sinks.once"} <= names  # the log is read: what --once does use is in it
    loaded = sorted(n for n in names if any(n == bad or n.startswith(bad + ".") for bad in NEVER))
    assert not loaded, f"--once imported {sorted({n.split('.')[0] for n in loaded})}: {loaded[:10]}"


def test_every_dataclass_once_builds_has_its_docstring(sim: Simulator, sim_config: Path) -> None:
    """A dataclass without a docstring is given one made from `inspect.signature` as it is built: ~75 us of
    a class's ~500 us at import (issue 24). Each of ours that --once builds says what it is instead."""
    result = _python("-X", "importtime", "-m", "tui", "--once", "--config", str(sim_config))
    assert result.returncode == 0, result.stderr[-2000:]
    ours = sorted(n for n in imported(result.stderr) if n == "tui" or n.startswith("tui."))
    assert "tui.snapshot.model" in ours  # the log is read
    built = [
        value
        for module in map(importlib.import_module, ours)
        for value in vars(module).values()
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == module.__name__
    ]
    assert len(built) > 10
    signed = [f"{c.__module__}.{c.__qualname__}" for c in built if (c.__doc__ or "").startswith(c.__name__ + "(")]
    assert not signed, f"dataclasses without a docstring: {signed}"


# The real program (`balance-tui ARGS`, through `tui.cli.main`), reporting as it exits what the garbage
# collector did: how many collections ran while the command ran, whether it is on, how many objects are frozen.
GC_WRAPPER = """
import atexit, gc, json, sys

report, argv = sys.argv[1], sys.argv[2:]
collections = []


def count(phase, info):
    if phase == "start":
        collections.append(info["generation"])


def write_report():
    with open(report, "w") as out:
        json.dump({"collections": len(collections), "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}, out)


atexit.register(write_report)
from tui.cli import main

gc.callbacks.append(count)
main(argv)
"""


def _gc_report(tmp_path: Path, *args: str) -> dict[str, int]:
    report = tmp_path / "gc.json"
    done = _python("-c", GC_WRAPPER, str(report), *args)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, int] = json.loads(report.read_text())
    return result


def test_once_collects_no_garbage_while_it_starts_or_exits(sim: Simulator, sim_config: Path, tmp_path: Path) -> None:
    """Issue 24: the collector scanning the never-garbage objects the imports make was ~17 ms of --once, and
    ~14 ms more at the interpreter's teardown. --once runs without it; at exit every object is frozen."""
    gc_report = _gc_report(tmp_path, "--once", "--config", str(sim_config))
    assert gc_report["collections"] == 0
    assert not gc_report["enabled"]
    assert gc_report["frozen"] > 10_000  # the modules' objects: the teardown's collections skip them


def test_other_commands_collect_garbage(tmp_path: Path) -> None:
    """A command that may run for hours (the TUI, serve, --watch) turns the collector back on once its
    arguments are read: here `config path`, which reads them the same way."""
    gc_report = _gc_report(tmp_path, "config", "path", "--config", str(tmp_path / "c.toml"))
    assert gc_report["enabled"]
    assert gc_report["frozen"] > 0  # frozen at exit all the same
