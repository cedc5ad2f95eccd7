"""The data side never imports Textual: checked statically and by importing it in a fresh process."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_SIDE = [
    "tui/venues",
    "tui/sim",
    "tui/money.py",
    "tui/credentials.py",
    "tui/config.py",
    "tui/engine.py",
    "tui/snapshot.py",
    "tui/headless.py",
    "tui/changes.py",
    "tui/watch.py",
    "tui/history.py",
    "tui/history_report.py",
    "tui/assets.py",
    "tui/totals.py",
    "tui/alerts.py",
    "tui/alert_hook.py",
    "tui/monitor.py",
    "tui/spark.py",
    "tui/cli.py",
    "tui/__main__.py",
]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_data_module_imports_textual_at_module_level_or_anywhere() -> None:
    files = [
        p
        for entry in DATA_SIDE
        for p in ([ROOT / entry] if entry.endswith(".py") else sorted((ROOT / entry).rglob("*.py")))
        if p.exists()
    ]
    assert any("venues" in str(p) for p in files)
    offenders = {
        str(p.relative_to(ROOT)): sorted(n for n in _imports(p) if n.split(".")[0] in ("textual", "rich"))
        for p in files
    }
    if (ROOT / "tui/cli.py").exists():  # the CLI may import the app, but only inside the function that runs it
        tree = ast.parse((ROOT / "tui/cli.py").read_text())
        top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(m and ("app" in m.split(".") or m.startswith("textual")) for m in top)
        offenders.pop("tui/cli.py")
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_data_side_does_not_load_textual() -> None:
    modules = ["tui.venues.kraken", "tui.venues.intx", "tui.money", "tui.credentials", "tui.sim"]
    modules += ["tui.config", "tui.engine", "tui.cli", "tui.watch", "tui.history_report", "tui.monitor"]
    code = f"import sys; import {', '.join(modules)}; print(sorted(m for m in sys.modules if m.startswith('textual')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
