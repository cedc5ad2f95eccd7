"""Only the UI imports Textual (or Rich): checked on the source of every module under tui/, and by running
the real program's data-side commands in fresh processes and looking at what they loaded."""

from __future__ import annotations

import ast
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tui"

# The UI, defined here and nowhere else: everything under tui/ui/.
UI_FILES: tuple[str, ...] = ()
UI_FOLDER = "tui/ui"
UI_LIBRARIES = ("textual", "rich")
# The one exception: the CLI starts the TUI, so it may import the UI inside its functions (never at module level).
LAZY_UI_IMPORTER = "tui/cli.py"


def module_name(relative: str) -> str:
    """`tui/venues/kraken.py` -> `tui.venues.kraken`; `tui/venues/__init__.py` -> `tui.venues`."""
    parts = list(Path(relative).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


UI_MODULES = (*(module_name(f) for f in UI_FILES), module_name(UI_FOLDER + "/__init__.py"))


def is_ui_file(relative: str) -> bool:
    return relative in UI_FILES or relative.startswith(UI_FOLDER + "/")


def is_ui_library(module: str) -> bool:
    return module.split(".")[0] in UI_LIBRARIES


def is_ui_module(module: str) -> bool:
    return any(module == ui or module.startswith(ui + ".") for ui in UI_MODULES)


@dataclass(frozen=True)
class Import:
    module: str  # absolute: relative imports resolved against the importing module's package
    line: int
    in_function: bool


def _absolute(name: str, level: int, package: str) -> str:
    """What `from <level dots><name> import ...` names, seen from a module of `package`."""
    if level == 0:
        return name
    parts = package.split(".")
    if level - 1 >= len(parts):
        return "<beyond the top-level package>." + name
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(source: str, module: str, *, is_package: bool = False) -> list[Import]:
    """Every module `source` may import, wherever the statement is (module level, a function, `if
    TYPE_CHECKING`, a try): `import a.b`, `from a import b` (a and a.b: b may be a submodule), relative
    forms resolved, and `importlib.import_module("...")` / `__import__("...")` with a literal name."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    class Visitor(ast.NodeVisitor):
        depth = 0

        def add(self, node: ast.AST, name: str) -> None:
            found.append(Import(name, getattr(node, "lineno", 0), self.depth > 0))

        def visit_function(self, node: ast.AST) -> None:
            self.depth += 1
            self.generic_visit(node)
            self.depth -= 1

        visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_function

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                self.add(node, alias.name)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            base = _absolute(node.module or "", node.level, package)
            self.add(node, base)
            for alias in node.names:
                if alias.name != "*":
                    self.add(node, f"{base}.{alias.name}")

        def visit_Call(self, node: ast.Call) -> None:
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if called in ("import_module", "__import__") and node.args:
                name = node.args[0]
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    text = name.value
                    if called == "import_module" and text.startswith("."):
                        anchor = next((k.value for k in node.keywords if k.arg == "package"), None)
                        anchor = node.args[1] if len(node.args) > 1 else anchor
                        base = anchor.value if isinstance(anchor, ast.Constant) else package
                        level = len(text) - len(text.lstrip("."))
                        text = _absolute(text[level:], level, str(base))
                    self.add(node, text)
            self.generic_visit(node)

    Visitor().visit(ast.parse(source))
    return found


def forbidden(source: str, relative: str) -> list[str]:
    """The imports of the file at `relative` (under ROOT) that would pull in the UI."""
    lazy_ui_allowed = relative == LAZY_UI_IMPORTER
    return sorted(
        f"{relative}:{i.line}: {i.module}"
        for i in imports_of(source, module_name(relative), is_package=relative.endswith("/__init__.py"))
        if is_ui_library(i.module) or (is_ui_module(i.module) and not (lazy_ui_allowed and i.in_function))
    )


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("tui/monitor/totals.py", "import textual"),
        ("tui/monitor/totals.py", "import textual.app as x"),
        ("tui/monitor/totals.py", "from textual import on"),
        ("tui/monitor/totals.py", "from rich.text import Text"),
        ("tui/sinks/history_report.py", "from ..ui import panes"),
        ("tui/sinks/history_report.py", "from .. import money, ui"),
        ("tui/sinks/watch.py", "from ..ui.app import BalanceApp"),
        ("tui/venues/kraken.py", "from ..ui.app import BalanceApp"),
        ("tui/venues/__init__.py", "from ..ui import demo"),
        ("tui/engine/engine.py", "from tui.ui import demo"),
        ("tui/engine/engine.py", "import tui.ui.app"),
        ("tui/engine/engine.py", "from ..ui.widgets import Thing"),
        ("tui/engine/engine.py", "def start():\n    from tui.ui.app import run_app\n"),
        ("tui/engine/engine.py", "class A:\n    async def go(self):\n        import textual\n"),
        (
            "tui/engine/engine.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from textual.app import App\n",
        ),
        ("tui/engine/engine.py", "try:\n    import rich\nexcept ImportError:\n    pass\n"),
        ("tui/engine/engine.py", "import importlib\nimportlib.import_module('textual.widgets')\n"),
        ("tui/engine/engine.py", "from importlib import import_module\nimport_module('.ui.panes', package='tui')\n"),
        ("tui/engine/engine.py", "def f():\n    import_module('tui.ui.app')\n"),
        ("tui/engine/engine.py", "__import__('rich.console')"),
        ("tui/cli.py", "from tui.ui.app import run_app"),  # the CLI too, at module level
        ("tui/cli.py", "def _tui():\n    import textual\n"),  # and never Textual itself
    ],
)
def test_the_check_sees_every_way_of_importing_the_ui(relative: str, source: str) -> None:
    assert forbidden(source, relative) != []


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("tui/venues/kraken.py", "from . import KRAKEN_AMOUNTS, http"),
        ("tui/monitor/totals.py", "from ..money import Balance, fmt\nfrom . import spark"),
        ("tui/engine/engine.py", "from .application import X\nimport richtext\nimport textualize_not"),
        ("tui/engine/engine.py", "from ..uix import X\nimportlib.import_module('json')"),
        ("tui/cli.py", "def _tui(args):\n    from tui.ui.app import run_app\n    from .ui.demo import run_demo\n"),
    ],
)
def test_the_check_leaves_other_imports_alone(relative: str, source: str) -> None:
    assert forbidden(source, relative) == []


def test_nothing_outside_the_ui_imports_textual_or_the_ui() -> None:
    checked: list[str] = []
    offenders: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if is_ui_file(relative):
            continue
        checked.append(relative)
        offenders += forbidden(path.read_text(), relative)
    assert {"tui/monitor/totals.py", "tui/cli.py", "tui/venues/kraken.py", "tui/sim/server.py"} <= set(checked)
    assert offenders == []
    app = (ROOT / "tui/ui/app.py").read_text()  # the check does see Textual where it is
    assert any(is_ui_library(i.module) for i in imports_of(app, "tui.app"))


WRAPPER = """
import atexit, json, sys

report, argv = sys.argv[1], sys.argv[2:]


def write_report() -> None:
    with open(report, "w") as out:
        json.dump(sorted(m for m in sys.modules if m.split(".")[0] in ("tui", "textual", "rich")), out)


atexit.register(write_report)
from tui.cli import main

main(argv)
"""


def _program(report: Path, *args: str) -> list[str]:
    """The real program, `balance-tui ARGS`, that writes every tui/textual/rich module it loaded to `report`
    as it exits."""
    return [sys.executable, "-c", WRAPPER, str(report), *args]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "BALANCE_TUI_CONFIG"}


@pytest.fixture(scope="module")
def httpx_own_rich() -> set[str]:
    """httpx's `__init__` imports its command-line tool, which imports Rich whenever Rich is installed (Textual
    brings it): the Rich modules a bare `import httpx` loads in a fresh process are httpx's doing, not ours."""
    code = "import json, sys, httpx; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(done.stdout))
    assert not any(m.split(".")[0] == "textual" for m in loaded)
    return {m for m in loaded if is_ui_library(m)}


def _ui_in(loaded: list[str], allowed: set[str]) -> list[str]:
    return [m for m in loaded if (is_ui_library(m) or is_ui_module(m)) and m not in allowed]


def test_once_runs_without_loading_the_ui(sim_config: Path, tmp_path: Path, httpx_own_rich: set[str]) -> None:
    report = tmp_path / "modules.json"
    args = ("--once", "--format", "json", "--config", str(sim_config))
    done = subprocess.run(
        _program(report, *args), capture_output=True, text=True, timeout=60, cwd=ROOT, env=_env(), check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["venues"]
    loaded = json.loads(report.read_text())
    assert {"tui.cli", "tui.sinks.once", "tui.engine.engine"} <= set(loaded)  # the report is of this run
    assert _ui_in(loaded, httpx_own_rich) == []


def test_watch_runs_without_loading_the_ui(sim_config: Path, tmp_path: Path, httpx_own_rich: set[str]) -> None:
    report, errors = tmp_path / "modules.json", tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        watch = subprocess.Popen(
            _program(report, "--watch", "--config", str(sim_config)),
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            env=_env(),
        )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert watch.stdout is not None
        for line in watch.stdout:
            lines.put(line)
        lines.put("")  # it ended

    threading.Thread(target=read, daemon=True).start()
    try:
        first = lines.get(timeout=60)  # a safety net only: the first line comes with the first refresh
        assert first, f"--watch ended before printing a line: {errors.read_text()}"
        assert json.loads(first)["event"] == "new"
        watch.send_signal(signal.SIGINT)
        assert watch.wait(60) == 0, errors.read_text()
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait(60)
    loaded = json.loads(report.read_text())
    assert {"tui.cli", "tui.sinks.watch", "tui.engine.engine"} <= set(loaded)  # the report is of this run
    assert _ui_in(loaded, httpx_own_rich) == []


def test_the_simulator_imports_nothing_of_the_venue_clients() -> None:
    """The simulator is the referee: it checks signatures with code of its own, never the clients'."""
    offenders = [
        (str(path.relative_to(ROOT)), i.module)
        for path in sorted((PACKAGE / "sim").rglob("*.py"))
        for i in imports_of(
            path.read_text(), module_name(str(path.relative_to(ROOT))), is_package=path.name == "__init__.py"
        )
        if i.module == "tui.venues" or i.module.startswith("tui.venues.")
    ]
    assert offenders == []
