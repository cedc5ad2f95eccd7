"""Command line: parse arguments, pick a sink, and be the only place that exits the process.

Heavy imports (httpx, textual) happen inside the command that needs them: `--once` in a cron job
must not pay for the TUI.
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_VENUE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake on the command line or in the config: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


SUBCOMMANDS = ("serve", "web", "sim", "history", "book", "config")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, read as `build_parser()` reads it.

    A command line that names no subcommand and asks no help (`--once`, `--watch`, the TUI) is read first by
    the options alone: building the subcommands' parsers is most of argparse's work at start (~2 ms of a
    ~160 ms `--once`, issue 24; each help text is looked up in gettext's catalogs, on disk). Anything the
    options alone refuse is read again by the whole parser, so every message is the one it always was."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(arg in SUBCOMMANDS or _asks_help(arg) for arg in args):
        try:
            return _options(_Parser(prog="balance-tui")).parse_args(args)
        except UsageError:
            pass
    return build_parser().parse_args(args)


def _asks_help(arg: str) -> bool:
    return arg == "-h" or (len(arg) > 2 and "--help".startswith(arg.split("=", 1)[0]))


def build_parser() -> argparse.ArgumentParser:
    parser = _options(
        _Parser(
            prog="balance-tui",
            description="Live balances at Kraken custody and Coinbase INTX, in the terminal. Read-only.",
        )
    )
    sub = parser.add_subparsers(dest="command", metavar="{serve,web,sim,history,book,config}", parser_class=_Parser)

    serve = sub.add_parser("serve", help="poll every configured key once and serve it to viewers, Prometheus, browsers")
    serve.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file")
    serve.add_argument(
        "--listen", metavar="HOST:PORT", default="127.0.0.1:8765", help="where to listen (default: 127.0.0.1:8765)"
    )
    serve.add_argument(
        "--token-file",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="a bearer token every request must carry (required off loopback; at least 32 characters)",
    )
    serve.add_argument("--tls-cert", metavar="PATH", help="serve HTTPS with this certificate (PEM, chain after it)")
    serve.add_argument("--tls-key", metavar="PATH", help="the private key of --tls-cert (PEM, unencrypted, chmod 600)")

    web = sub.add_parser("web", help="the TUI in a browser, each session attached to a server")
    web.add_argument("--attach", metavar="URL", default=argparse.SUPPRESS, help="the `balance-tui serve` to read from")
    web.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1:8766",
        help="where browsers connect (default: 127.0.0.1:8766)",
    )
    web.add_argument(
        "--token-file",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="the server's bearer token (or set BALANCE_TUI_TOKEN)",
    )
    web.add_argument(
        "--ca-file",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="for an https:// --attach URL: the CA certificate (PEM) that signed the server's",
    )
    web.add_argument(
        "--demo",
        dest="web_demo",
        action="store_true",
        help="each browser session runs the demo (its own embedded simulator) instead of attaching",
    )

    sim = sub.add_parser("sim", help="run the venue simulator alone on 127.0.0.1")
    sim.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    sim.add_argument("--seed", type=int, default=7, help="seed of the simulated world (default: 7)")
    sim.add_argument("--config-out", metavar="PATH", help="write a ready config (0600) pointing at it")
    sim.add_argument(
        "--tick",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often balances move (default: 1; 0 freezes them)",
    )
    sim.add_argument("--numbers", action="store_true", help="send amounts as JSON numbers, not strings (both venues)")
    sim.add_argument("--no-rate-limits", action="store_true", help="do not enforce either venue's rate limit")
    sim.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="KIND[:VALUE][@VENUE[/ENDPOINT]][%%PERCENT], repeatable; kinds: latency, http-5xx, "
        "429, 429-retry-after, html, truncated, reset, hang, kraken-error, empty, skew, echo. "
        "Example: --fault latency:0.2@intx --fault http-5xx@kraken%%10",
    )

    history = sub.add_parser("history", help="print recorded balance changes (table, json or csv)")
    history.add_argument("--venue", help="only this venue (its name in the config)")
    history.add_argument("--asset", help="only this asset, as the venue spells it")
    history.add_argument("--since", help="a span before now (30m, 24h, 7d) or a date/time (2026-11-21T09:00Z)")
    history.add_argument("--format", choices=("table", "json", "csv"), default="table", help="default: table")
    history.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file")

    _book_parser(sub)

    config = sub.add_parser("config", help="write, locate or check the config file")
    config_sub = config.add_subparsers(dest="action", metavar="{init,path,check}", parser_class=_Parser, required=True)
    init = config_sub.add_parser("init", help="write a commented template (mode 0600)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    path = config_sub.add_parser("path", help="print the config path in use")
    check = config_sub.add_parser("check", help="validate, then make one signed call per venue and explain failures")
    for action in (init, path, check):
        action.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file")
    return parser


def _options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options before any subcommand: the TUI's modes and where it reads from."""
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $BALANCE_TUI_CONFIG, else the platform config directory)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--demo", action="store_true", help="the live TUI on the embedded simulator (no keys)")
    mode.add_argument("--once", action="store_true", help="print one snapshot of every venue, then exit")
    mode.add_argument(
        "--watch", action="store_true", help="print one JSON line per change until interrupted (--format jsonl)"
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv", "jsonl"),
        help="output format: table, json or csv for --once (default: table); jsonl for --watch",
    )
    parser.add_argument(
        "--attach",
        metavar="URL",
        help="read from a `balance-tui serve` at URL instead of the venues (the TUI, --once or --watch)",
    )
    parser.add_argument(
        "--token-file", metavar="PATH", help="the server's bearer token, for --attach (or set BALANCE_TUI_TOKEN)"
    )
    parser.add_argument(
        "--ca-file",
        metavar="PATH",
        help="for an https:// --attach URL: the CA certificate (PEM) that signed the server's, if not a public CA",
    )
    parser.add_argument("--seed", type=int, default=7, help=argparse.SUPPRESS)
    parser.set_defaults(command=None)  # no subcommand (the whole parser's subparsers set it otherwise)
    return parser


BOOK_EPILOG = """\
An instant is ISO 8601 in any form and time zone: 2026-11-30T23:59:59Z, 2026-11-30T23:59:59+01:00,
2026-11-30 23:59 (no zone: UTC), 20261130T235959Z. A date alone is its start in UTC: 2026-12-01 is
2026-12-01T00:00:00Z.

--at prints the --once document as the history had it at that instant (json: the same keys, plus as_of: each
venue's and account's age then and whether it was failing); --between what changed, per balance, with each value's
change split into quantity moves (change in quantity x the old price) and price moves (new quantity x change in
price). Exit codes: 0 every venue was answering at the instant, 1 some venue was failing then (the book is still
printed), 2 no book (no history, history off, an instant before the history begins, or a usage error)."""


def _book_parser(sub: Any) -> None:
    book = sub.add_parser(
        "book",
        help="the book at a past instant from the history (--at), or what changed between two (--between)",
        description="The book at a past instant, rebuilt from the history: every balance, its value at the prices "
        "of that instant, each venue's age and state then.",
        epilog=BOOK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    when = book.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", metavar="ISO-TIME", help="the instant (a date alone: its start, UTC)")
    when.add_argument(
        "--between", nargs=2, metavar=("ISO-TIME", "ISO-TIME"), help="what changed from the first instant to the second"
    )
    book.add_argument("--format", choices=("table", "json", "csv"), default="table", help="default: table")
    book.add_argument("--venue", help="only this venue (its name in the config)")
    book.add_argument("--asset", help="only this asset, as a venue spells it or by its totals name (BTC)")
    book.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file")


def main(argv: Sequence[str] | None = None) -> None:
    """The process: no cyclic garbage collection while it starts, and none at its exit (issue 24).

    Imports make some hundred thousand objects that are never garbage; the collector scanned them again
    and again as they came (~17 ms of a ~190 ms `--once`), and once more while the interpreter tore down
    (~14 ms). A command that runs on turns the collector back on once its arguments are read (`_command`);
    `--once`, one bounded snapshot (about 1,400 cyclic objects for two venues), runs without it. At exit every
    object left is frozen, so the teardown's collections skip them: the kernel reclaims the memory, and
    atexit handlers and reference-counted cleanup run as before."""
    gc.disable()
    code = run(argv)
    gc.freeze()
    sys.exit(code)


def run(argv: Sequence[str] | None = None) -> int:
    """One command, its exit code. A reader that closes our stdout early (`| head`) ends any command quietly
    with exit 0, whatever it would have returned: the reader had what it wanted, and one rule for every
    command is one rule for scripts (and `--watch` has nothing else to end on)."""
    from tui.pipe import reader_gone

    try:
        try:
            code = _command(argv)
        except SystemExit as exc:  # argparse, after printing --help
            code = exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else EXIT_USAGE
        sys.stdout.flush()  # here, where it can be caught: Python's flush at exit would print "Exception ignored"
        return code
    except BrokenPipeError:
        reader_gone()
        return EXIT_OK


def _command(argv: Sequence[str] | None) -> int:
    from tui.config import ConfigError

    try:
        args = parse_args(argv)
        if not args.once:  # a command that may run for hours collects its garbage (see `main`)
            gc.enable()
        _one_mode(args)
        _set_role(args)
        if _headless(args):  # a nonce folder that cannot be used: one line on stderr (the TUI shows it on the pane)
            from tui.venues.nonces import tell_problems

            tell_problems(_err)
        if args.command == "serve":
            return _serve(args)
        if args.command == "web":
            return _web(args)
        if args.attach:
            return _attached(args)
        if args.token_file:
            raise UsageError("--token-file goes with --attach (or with `serve` and `web`)")
        if args.ca_file:
            raise UsageError("--ca-file goes with an https:// --attach URL (or with `web`)")
        if args.command == "sim":
            return _sim(args)
        if args.command == "config":
            return _config(args)
        if args.command == "history":
            from tui.sinks.history_report import run_history

            return run_history(
                _config_path(args), venue=args.venue, asset=args.asset, since=args.since, fmt=args.format
            )
        if args.command == "book":
            from tui.sinks.book_report import run_book

            return run_book(
                _config_path(args),
                at=args.at,
                between=args.between,
                fmt=args.format,
                venue=args.venue,
                asset=args.asset,
            )
        if args.watch:
            if args.format not in (None, "jsonl"):
                raise UsageError("--watch prints JSON lines: use --format jsonl (or leave --format out)")
            from tui.sinks.watch import run_watch

            return run_watch(_config_path(args))
        if args.format is not None and not args.once:
            raise UsageError("--format applies only to --once and --watch")
        if args.once:
            if args.format == "jsonl":
                raise UsageError("--once prints table, json or csv; jsonl is for --watch")
            from tui.sinks.once import run_once

            return run_once(_config_path(args), args.format or "table")
        return _tui(args)
    except (UsageError, ConfigError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _set_role(args: argparse.Namespace) -> None:
    """What this process is called where another balance-tui on the same key speaks of it."""
    from tui.venues.ledger import set_role

    if args.command == "config":
        set_role("config check")
    elif args.command:
        set_role(args.command)
    else:
        set_role("--once" if args.once else "--watch" if args.watch else "balance-tui")


def _headless(args: argparse.Namespace) -> bool:
    """A command with no screen: stderr is free for a line to the operator."""
    return bool(args.once or args.watch or args.command in ("serve", "config", "history", "book", "sim"))


def _one_mode(args: argparse.Namespace) -> None:
    """A subcommand is a mode of its own: the TUI's modes given beside it would be silently ignored."""
    if args.command is None:
        return
    if args.command == "web" and (args.demo or getattr(args, "web_demo", False)):
        if args.attach:
            raise UsageError("`web --demo` runs the demo in each session: it takes no --attach")
        args.demo, args.web_demo = False, True  # `balance-tui --demo web` is `balance-tui web --demo`
    given = [flag for flag, on in (("--demo", args.demo), ("--once", args.once), ("--watch", args.watch)) if on]
    if args.command not in ("history", "book") and args.format is not None:
        given.append("--format")
    if args.command != "web" and args.attach:
        given.append("--attach")
    if given:
        verb = "does" if len(given) == 1 else "do"
        raise UsageError(f"{' and '.join(given)} {verb} not go with `{args.command}`: run one or the other")
    if args.command == "web" and not args.attach and not args.web_demo:
        raise UsageError(
            "`web` needs --attach URL (the `balance-tui serve` its sessions read from), or --demo for the demo"
        )


def _config_path(args: argparse.Namespace) -> Path:
    from tui.config import resolve_path

    return resolve_path(args.config)


def _tui(args: argparse.Namespace) -> int:
    from tui.config import load

    if args.demo:
        from tui.ui.demo import run_demo

        return run_demo(seed=args.seed)
    config = load(_config_path(args))
    if not config.venues:
        raise UsageError(
            f"{config.path}: no [[venue]] configured: add one (see `balance-tui config init`), "
            "or try `balance-tui --demo`"
        )
    from tui.engine.engine import Engine
    from tui.ui.app import run_app

    engine = Engine(config)  # loads every secret now, so a bad one is a one-line error before the screen opens
    from tui.monitor.history import path_for

    return run_app(config, source=engine, history=path_for(config) if config.history.enabled else None)


def _attached(args: argparse.Namespace) -> int:
    """The TUI, --once or --watch, reading from a server: no config, no keys."""
    from tui.remote import attach
    from tui.remote.client import AttachError

    if args.demo or args.command or args.config:
        raise UsageError("--attach reads from a server: it takes no --config, --demo or subcommand")
    url, token = _server(args)
    if args.watch:
        if args.format not in (None, "jsonl"):
            raise UsageError("--watch prints JSON lines: use --format jsonl (or leave --format out)")
        return attach.attached_watch(url, token)
    if args.once:
        if args.format == "jsonl":
            raise UsageError("--once prints table, json or csv; jsonl is for --watch")
        return attach.attached_once(url, token, args.format or "table")
    if args.format is not None:
        raise UsageError("--format applies only to --once and --watch")
    try:
        config, source = attach.attached_viewer(url, token)
    except AttachError as exc:
        return attach.refused(exc)
    from tui.ui.app import run_app

    return run_app(config, source=source, history=":memory:")


def _server(args: argparse.Namespace) -> tuple[str, Any]:
    """The server a viewer reads from, and its token; an https:// server's certificate is verified against
    the system's CA store, or only against --ca-file's."""
    from tui.credentials import CredentialError
    from tui.remote.client import check_url
    from tui.remote.viewer import load_token
    from tui.tls import TLSError, trust

    problem = check_url(args.attach)
    if problem:
        raise UsageError(f"--attach {problem}")
    if args.ca_file:
        if not args.attach.lower().startswith("https:"):
            raise UsageError(f"--ca-file is for an https:// server; {args.attach} is attached without TLS")
        try:
            trust(Path(args.ca_file).expanduser().absolute())
        except TLSError as exc:
            raise UsageError(str(exc)) from None
    try:
        return args.attach, load_token(args.token_file)
    except CredentialError as exc:
        raise UsageError(str(exc)) from None


def _serve(args: argparse.Namespace) -> int:
    from tui.config import load
    from tui.sinks.server import run_serve

    if args.ca_file:
        raise UsageError("--ca-file is for viewers (--attach, web); `serve` takes --tls-cert and --tls-key")
    config = load(_config_path(args))
    if not config.venues:
        raise UsageError(f"{config.path}: no [[venue]] configured: `serve` polls the venues of the config")
    token_file = Path(args.token_file).expanduser() if args.token_file else None
    cert, key = (Path(f).expanduser() if f else None for f in (args.tls_cert, args.tls_key))
    code: int = run_serve(config, args.listen, token_file, cert, key)
    return code


def _web(args: argparse.Namespace) -> int:
    from tui.ui.web import run_web

    if args.web_demo:
        if getattr(args, "token_file", None) or getattr(args, "ca_file", None):
            raise UsageError("`web --demo` reads no server: it takes no --token-file or --ca-file")
        return run_web(None, None, args.listen, seed=args.seed)
    url, token = _server(args)
    return run_web(url, token, args.listen)


def _sim(args: argparse.Namespace) -> int:
    from tui.config import is_simulator_config, simulator_config, write_private
    from tui.sim import Simulator, parse_fault_flag

    try:
        faults = [parse_fault_flag(spec) for spec in args.fault]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number")
    sim = Simulator(seed=args.seed, port=args.port, tick_seconds=args.tick)
    sim.intx_numbers = sim.kraken_numbers = args.numbers
    if args.no_rate_limits:
        sim.kraken_rate_limit = False
        sim.set_intx_rate_limit(0)
    for fault in faults:
        sim.faults.add(fault)
    try:
        sim.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    try:
        if args.config_out:
            out = Path(args.config_out).expanduser()
            if out.exists() and not is_simulator_config(out):
                raise UsageError(f"{out} exists and is not a simulator config: choose another --config-out")
            history = _beside(out.absolute(), ".history.sqlite3")  # simulated money: never the real history
            try:
                write_private(out, simulator_config(sim, history=history), overwrite=True)
            except OSError as exc:
                raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
        print(
            f"balance-tui simulator (seed {args.seed}) on {sim.url}: Kraken custody at /0/private/, INTX at /api/v1/",
            flush=True,
        )
        if args.config_out:
            print(f"config written to {out}; in another terminal run:\n  balance-tui --config {out}", flush=True)
            print(f"its history goes to {history}, never into your real history", flush=True)
        else:
            print(
                "point balance-tui at it with: balance-tui sim --config-out sim.toml (then --config sim.toml)",
                flush=True,
            )
        for fault in faults:
            print(
                f"fault: {fault.kind.value} on {fault.venue or 'both venues'}"
                f"{'/' + fault.endpoint if fault.endpoint else ''}"
                f"{f' ({fault.probability:.0%})' if fault.probability < 1 else ''}",
                flush=True,
            )
        print("Ctrl-C stops it.", flush=True)
        _wait_for_signal()
    finally:
        sim.stop()
    return EXIT_OK


def _beside(path: Path, suffix: str) -> Path:
    """A file next to `path`, named after it: sim.toml -> sim.history.sqlite3."""
    return path.with_name(path.stem + suffix)


def _wait_for_signal() -> None:
    received = []

    def stop(signum: int, _frame: object) -> None:
        received.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    while not received:
        signal.pause()


def _config(args: argparse.Namespace) -> int:
    from tui.config import load, template, write_private

    path = _config_path(args)
    if args.action == "path":
        print(path)
        return EXIT_OK
    if args.action == "init":
        try:
            write_private(path, template(), overwrite=args.force)
        except FileExistsError:
            raise UsageError(f"{path} already exists: edit it, or pass --force to replace it") from None
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None
        print(f"wrote {path} (mode 0600): set the environment variables it names, then run `balance-tui config check`")
        return EXIT_OK
    from tui.check import run_check

    return run_check(load(path))


def _err(message: str) -> None:
    from tui.stderr import say

    say(message)
