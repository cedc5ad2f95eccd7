"""A statement file is written whole, private, and never overwritten (tui/sinks/statements.write_new)."""

from __future__ import annotations

import stat
from pathlib import Path

from tui.sinks.statements import write_new


def test_a_statement_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "book-2026-11-30.json"
    assert write_new(path, "first") is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert write_new(path, "second") is False
    assert path.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
