"""``relay``: validate routes, push files through a route (backfills), inspect and replay the poison store
(``relay poison``), run the local emulator."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from shared.blob_ingest import EncodedFileRecords, file_records
from shared.config import ConfigError, load_config
from shared.credentials import check_credential_fits
from shared.engine import Chunking, ChunkReport
from shared.records import Result
from shared.settings import Settings, SettingsError
from shared.sources.blob import FORMATS as FILE_FORMATS
from shared.sources.blob import open_file
from shared.sources.errors import DecodeError

from . import relay_version
from .console import OneLineHandler, console, describe, print_warnings, table
from .dcr import add_dcr_commands
from .exit_codes import Exit, epilog, for_counts, worst
from .poison import add_poison_commands
from .route import add_route_command
from .settings_file import load_settings_file

# The names tests and scripts imported before the codes were defined in one place (relay_cli.exit_codes).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED, EXIT_PARKED = (
    Exit.OK, Exit.FAILED, Exit.USAGE, Exit.REJECTED, Exit.PARKED)
READ_BYTES = 1 << 20
_ROUTE_PREFIX = re.compile(r"(route (?:'[^']*'|#\d+|\d+)): (.*)", re.S)
_DCR_PREFIX = re.compile(r".*?DCR file '([^']*)':? (?:(stream '[^']*')(?:: | ))?(.*)", re.S)


def group_problems(problems: Sequence[str], routes_file: str) -> dict[str, dict[str, list[str]]]:
    """Problems of a routes file by file (the routes file, then each DCR file) and route or stream,
    each once: a DCR column that seven routes share is one problem of the DCR file, not seven."""
    grouped: dict[str, dict[str, list[str]]] = {routes_file: {}}
    for problem in problems:
        dcr = _DCR_PREFIX.fullmatch(problem)
        if dcr:
            file, scope, message = dcr.group(1), dcr.group(2) or "", dcr.group(3)
        else:
            route = _ROUTE_PREFIX.fullmatch(problem)
            file, scope, message = (routes_file, route.group(1), route.group(2)) if route else (routes_file, "", problem)
        messages = grouped.setdefault(file, {}).setdefault(scope, [])
        if message not in messages:
            messages.append(message)
    return {file: scopes for file, scopes in grouped.items() if scopes}


def _print_problems(problems: Sequence[str], routes_file: str) -> None:
    grouped = group_problems(problems, routes_file)
    count = sum(len(m) for scopes in grouped.values() for m in scopes.values())
    err = sys.stderr
    print(f"relay validate: {count} problem(s)", file=err)
    for file, scopes in grouped.items():
        print(f"{file}:", file=err)
        for scope, messages in scopes.items():
            indent = "  "
            if scope:
                print(f"  {scope}:", file=err)
                indent = "    "
            for message in messages:
                print(f"{indent}- {message}", file=err)


def cmd_validate(args: argparse.Namespace) -> int:
    """Check the routes file and its DCR files; every problem once, grouped by file then route, then
    the warnings (what could not be checked, which fails nothing)."""
    routes_file = args.config or "the routes file"
    try:
        env = load_settings_file(args.settings)
        if args.config:
            env["RELAY_CONFIG"] = args.config
        settings = Settings.from_env(env, Path.cwd())
        routes_file = str(settings.config_path)
        config = load_config(settings.config_path, env)
        check_credential_fits(settings, config)
    except ConfigError as error:
        _print_problems(error.problems, routes_file)
        print_warnings(error.warnings)
        return Exit.USAGE
    except SettingsError as error:
        print(f"relay validate: {error}", file=sys.stderr)
        return Exit.USAGE
    print_warnings(config.warnings)
    print(f"{settings.config_path}: {len(config.routes)} route(s) OK")
    table(("ROUTE", "SOURCE", "MATCH", "STREAM", "COLUMNS", "DECODING"),
          ([r.name, r.source, r.match, r.stream, len(r.schema.columns), _decoding(r)] for r in config.routes),
          right=("COLUMNS",))
    print("DECODING typed: plain JSON and NDJSON bodies and Event Hub envelopes go from their bytes straight "
          "into the columns when the route is the only one that takes them (docs/architecture.md)")
    return Exit.OK


def _decoding(route: Any) -> str:
    """How the route's events are decoded: typed (straight from their bytes, when a run has this one route)
    or through dicts, and why."""
    from shared.plan import RoutePlan
    from shared.typed import why_not

    reason = why_not(RoutePlan.of(route))
    return "typed" if reason is None else f"dicts: {reason}"


class _Progress:
    """The ``send`` progress line: percentage, bar and ETA from bytes read of a file of known size
    (stdin has none: then counts and rate only), with what landed so far. Off without a terminal."""

    def __init__(self, enabled: bool, total_bytes: int | None, name: str):
        self.read_bytes = 0
        self.records = 0
        self.started = time.monotonic()
        self.progress: Progress | None = None
        if not enabled:
            return
        columns = [TextColumn("{task.description}")]
        if total_bytes:
            columns += [BarColumn(bar_width=24), TaskProgressColumn(), TextColumn("ETA"), TimeRemainingColumn()]
        columns.append(TextColumn("{task.fields[counts]}"))
        self.progress = Progress(*columns, console=console(stderr=True), transient=False)
        self.task = self.progress.add_task(name, total=total_bytes or None, counts="")
        self.progress.start()

    def reader(self, stream: IO[bytes]) -> Iterator[bytes]:
        """The pieces of ``stream``, counting the bytes read (what the percentage is of)."""
        while piece := stream.read(READ_BYTES):
            self.read_bytes += len(piece)
            if self.progress is not None:
                self.progress.update(self.task, completed=self.read_bytes)
            yield piece

    def update(self, chunk: ChunkReport, total: Result) -> None:
        self.records += chunk.records
        if self.progress is None:
            return
        rate = self.records / max(time.monotonic() - self.started, 1e-6)
        counts = (f"{self.records:,} read  {total.landed:,} landed  {total.rejected:,} rejected  "
                  f"{total.parked + total.deadlettered + total.failed:,} not landed  {rate:,.0f} rows/s")
        self.progress.update(self.task, completed=self.read_bytes, counts=counts)

    def done(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _input(path: str) -> tuple[IO[bytes], int | None]:
    """The input and its size when known (a regular file); ``-`` is stdin (size unknown)."""
    if path == "-":
        return sys.stdin.buffer, None
    stream = open(path, "rb")  # noqa: SIM115 - closed by cmd_send
    try:
        size = os.fstat(stream.fileno()).st_size
    except OSError:
        size = None
    return stream, size or None


def cmd_send(args: argparse.Namespace) -> int:
    """Push a file through a route; the exit code says what became of its records (worst wins)."""
    from shared.runtime import Relay

    try:
        env = load_settings_file(args.settings)
        relay = Relay.from_env(env, Path.cwd())
    except ConfigError as error:
        print(f"relay send: the routes file is invalid (relay validate lists every problem): {error}",
              file=sys.stderr)
        return Exit.USAGE
    except SettingsError as error:
        print(f"relay send: {error}", file=sys.stderr)
        return Exit.USAGE
    try:
        route = next((r for r in relay.config.routes if r.name == args.route), None)
        if route is None:
            print(f"relay send: no route named {args.route!r} "
                  f"(routes: {', '.join(r.name for r in relay.config.routes)})", file=sys.stderr)
            return Exit.USAGE
        try:
            stream, size = _input(args.file)
        except OSError as error:
            print(f"relay send: cannot open {args.file!r}: {error.strerror or error}", file=sys.stderr)
            return Exit.USAGE
        name = "stdin" if args.file == "-" else args.file
        total = Result(route.name, f"send-{int(time.time())}")
        progress = _Progress(sys.stderr.isatty() and not args.quiet, size, name)
        stopped, message = Exit.OK, ""
        try:
            with stream:
                # an NDJSON file's lines stay encoded for a route that decodes them itself, as the blob trigger
                # hands them on: the same rows and EventIds whichever way a file comes in
                chunking = Chunking(rows=args.chunk_rows)
                opened = open_file(progress.reader(stream), name, args.format,
                                   encoded=relay.engine.takes_encoded(route) is not None)
                records = (EncodedFileRecords(opened.units, opened.where, chunking) if opened.encoded
                           else file_records(opened.units, opened.where))
                relay.engine.run(route, records, batch_id=total.batch_id, chunking=chunking,
                                 on_chunk=lambda c: progress.update(c, total), result=total)
        except (DecodeError, EOFError) as error:  # the rest of the input cannot be read: bad input
            stopped = Exit.REJECTED
            message = f"{name} stops decoding: {error}"
        except OSError as error:
            stopped = Exit.FAILED
            message = f"reading {name} failed: {error.strerror or error}"
        finally:
            progress.done()
        if stopped:
            print(f"relay send: {message}; {total.received} event(s) before it were processed", file=sys.stderr)
    finally:
        relay.close()
    _print_summary(total)
    return worst(stopped, for_counts(rejected=total.rejected, parked=total.parked,
                                     deadlettered=total.deadlettered, failed=total.failed))


def _print_summary(total: Result) -> None:
    print(json.dumps(total.summary(max_reasons=20), indent=2))


def cmd_emulator(args: argparse.Namespace, rest: Sequence[str]) -> int:
    try:
        from emulator.cli import main as emulator_main
    except ImportError:
        print("relay emulator: the emulator is a development tool; install the repository with its "
              "dev requirements (make setup)", file=sys.stderr)
        return Exit.USAGE
    return emulator_main(list(rest))


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="relay", description=__doc__, epilog=epilog(), formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"relay {relay_version()}")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks and debug logs (default: one line per error)")
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="check the routes file and its DCR files", epilog=epilog(),
                              formatter_class=raw)
    validate.add_argument("--config", help="routes file (default: RELAY_CONFIG or relay.yaml)")
    validate.add_argument("--settings", help="a local.settings.json whose Values fill ${VARS}")
    validate.set_defaults(handler=cmd_validate)
    send = sub.add_parser("send", help="push a file (or - for stdin) through a route, e.g. a backfill",
                          epilog=epilog(), formatter_class=raw)
    send.add_argument("route", help="route name")
    send.add_argument("file", help="NDJSON, JSON array, {records: [...]} or CSV file, gzip allowed; - reads stdin")
    send.add_argument("--format", choices=("auto", *FILE_FORMATS), default="auto",
                      help="default: detected from the name and content")
    send.add_argument("--chunk-rows", type=int, default=5000, help="events processed per step (default 5000)")
    send.add_argument("--settings", help="a local.settings.json whose Values are used as settings")
    send.add_argument("--quiet", action="store_true", help="no progress line")
    send.set_defaults(handler=cmd_send)
    emulator = sub.add_parser("emulator", help="the local Logs Ingestion API emulator (serve, rows, drops, ...)",
                              add_help=False)
    emulator.set_defaults(handler=None)
    add_poison_commands(sub)
    add_dcr_commands(sub)
    add_route_command(sub)
    return parser


def _logging(debug: bool) -> tuple[logging.Handler, Callable[[], None]]:
    """Library logs on stderr for this command: everything with tracebacks under ``--debug``,
    else warnings as one line each, repeats counted; returns the handler and its undo."""
    root = logging.getLogger()
    handler: logging.Handler
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler = OneLineHandler("relay")
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "azure.identity"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.ERROR)

    def undo() -> None:
        root.removeHandler(handler)
        root.setLevel(level)

    return handler, undo


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code is one of :class:`relay_cli.exit_codes.Exit`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["emulator"]:
        return cmd_emulator(argparse.Namespace(), argv[1:])
    debug = "--debug" in argv  # accepted anywhere: `relay send --debug ...` as well as `relay --debug send ...`
    args = parser.parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    if args.command == "send" and args.chunk_rows < 1:
        parser.error("--chunk-rows must be at least 1")
    handler, undo = _logging(args.debug)
    command = " ".join(filter(None, (args.command, getattr(args, "poison_command", None),
                                     getattr(args, "dcr_command", None))))
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print(f"relay {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line naming what failed; --debug shows the traceback
        if args.debug:
            raise
        print(f"relay {command}: failed: {describe(error)} (--debug shows the traceback)", file=sys.stderr)
        return Exit.FAILED
    finally:
        if isinstance(handler, OneLineHandler) and handler.repeats():
            print(f"relay {command}: {handler.repeats()} more log line(s) like the above left out "
                  "(--debug shows them)", file=sys.stderr)
        undo()


if __name__ == "__main__":
    sys.exit(main())
