"""The command line is read as the whole parser reads it, though a line without a subcommand is read by the
options alone first (issue 24: building the subcommands' parsers was ~2 ms of a `--once`)."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui import cli

# Words a command line is made of: every top-level option (whole, abbreviated, with `=`), values that fit them
# or not, subcommand names (as words and as values), help asked in every spelling, and strays.
WORDS = (
    *("--once", "--watch", "--demo", "--config", "--conf", "--config=c.toml", "--format", "--format=json"),
    *("--attach", "--token-file", "--ca-file", "--seed", "--seed=3", "--c", "--f", "--on", "--w", "--"),
    *("table", "json", "csv", "jsonl", "x.toml", "http://127.0.0.1:8765", "7", "-1", "nope", "-x", ""),
    *("serve", "web", "sim", "history", "book", "config", "init", "path", "check", "--listen", "--at"),
    *("-h", "--help", "--he", "--h", "--help=1"),
)


def _read(parse: object, argv: list[str]) -> tuple[str, object, str]:
    """What reading `argv` gives: the arguments, the usage error's message, or the exit code (--help), and
    what was printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            return "args", vars(parse(argv)), out.getvalue()  # type: ignore[operator]
        except cli.UsageError as exc:
            return "usage", str(exc), out.getvalue()
        except SystemExit as exc:
            return "exit", exc.code, out.getvalue()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=6))
def test_any_line_reads_as_the_whole_parser_reads_it(argv: list[str]) -> None:
    assert _read(cli.parse_args, argv) == _read(lambda a: cli.build_parser().parse_args(a), argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--once", "--config", "c.toml"],
        ["--once", "--format", "json", "--config=c.toml"],
        ["--watch"],
        [],
        ["--attach", "http://127.0.0.1:8765", "--once"],
    ],
)
def test_a_line_without_subcommand_builds_no_subcommand_parser(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused() -> argparse.ArgumentParser:
        raise AssertionError("the whole parser was built")

    monkeypatch.setattr(cli, "build_parser", refused)
    args = cli.parse_args(argv)
    assert args.command is None


def test_a_subcommand_or_help_is_read_by_the_whole_parser() -> None:
    assert cli.parse_args(["config", "path", "--config", "c.toml"]).action == "path"
    kind, code, printed = _read(cli.parse_args, ["--he"])
    assert (kind, code) == ("exit", 0)
    assert "{serve,web,sim,history,book,config}" in printed and "print one snapshot of every venue" in printed
