"""``relay``: validate routes, push files through a route (backfills), inspect and replay the poison store
(``relay poison``), run the local emulator."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import IO

from shared.blob_ingest import file_records
from shared.config import ConfigError, load_config
from shared.credentials import check_credential_fits
from shared.engine import Chunking, ChunkReport
from shared.records import Result
from shared.settings import Settings, SettingsError
from shared.sources.blob import FORMATS as FILE_FORMATS
from shared.sources.blob import open_file
from shared.sources.errors import DecodeError

from .dcr import add_dcr_commands
from .poison import add_poison_commands
from .settings_file import load_settings_file

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        env = load_settings_file(args.settings)
        if args.config:
            env["RELAY_CONFIG"] = args.config
        settings = Settings.from_env(env, Path.cwd())
        config = load_config(settings.config_path, env)
        check_credential_fits(settings, config)
    except ConfigError as error:
        print(f"relay validate: {len(error.problems)} problem(s) in the routes file:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_FAILED
    except SettingsError as error:
        print(f"relay validate: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{settings.config_path}: {len(config.routes)} route(s) OK")
    for route in config.routes:
        print(f"  {route.name:<16} {route.source:<9} {route.match:<28} -> {route.stream} "
              f"({len(route.schema.columns)} columns)")
    return EXIT_OK


def _open_input(path: str) -> IO[bytes]:
    return sys.stdin.buffer if path == "-" else open(path, "rb")


class _Progress:
    """The ``send`` progress line, redrawn as each chunk of the file is handled."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.started = time.monotonic()
        self.read = 0

    def update(self, chunk: ChunkReport, total: Result) -> None:
        self.read += chunk.records
        if not self.enabled:
            return
        read = self.read
        rate = read / max(time.monotonic() - self.started, 1e-6)
        sys.stderr.write(
            f"\r  {read:>10,} read  {total.landed:>10,} landed  {total.rejected:>8,} rejected  "
            f"{total.parked + total.failed:>8,} not landed  {rate:>9,.0f} rows/s"
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def cmd_send(args: argparse.Namespace) -> int:
    from shared.runtime import Relay

    try:
        env = load_settings_file(args.settings)
        relay = Relay.from_env(env, Path.cwd())
    except (ConfigError, SettingsError) as error:
        print(f"relay send: {error}", file=sys.stderr)
        return EXIT_FAILED
    route = next((r for r in relay.config.routes if r.name == args.route), None)
    if route is None:
        print(f"relay send: no route named {args.route!r} "
              f"(routes: {', '.join(r.name for r in relay.config.routes)})", file=sys.stderr)
        return EXIT_USAGE
    total = Result(route.name, f"send-{int(time.time())}")
    progress = _Progress(sys.stderr.isatty() and not args.quiet)
    try:
        with _open_input(args.file) as stream:
            name = "stdin" if args.file == "-" else args.file
            opened = open_file(iter(partial(stream.read, 1 << 20), b""), name, args.format)
            relay.engine.run(route, file_records(opened.units, opened.where), batch_id=total.batch_id,
                             chunking=Chunking(rows=args.chunk_rows), on_chunk=lambda c: progress.update(c, total),
                             result=total)
    except (DecodeError, OSError, EOFError) as error:
        progress.done()
        print(f"relay send: {error}; {total.received} event(s) before it were processed", file=sys.stderr)
        _print_summary(total)
        return EXIT_FAILED
    finally:
        relay.close()
    progress.done()
    _print_summary(total)
    if total.failed or total.parked:
        return EXIT_FAILED
    return EXIT_REJECTED if total.rejected else EXIT_OK


def _print_summary(total: Result) -> None:
    print(json.dumps(total.summary(max_reasons=20), indent=2))


def cmd_emulator(args: argparse.Namespace, rest: Sequence[str]) -> int:
    try:
        from emulator.cli import main as emulator_main
    except ImportError:
        print("relay emulator: the emulator is a development tool; install the repository with its "
              "dev requirements (make setup)", file=sys.stderr)
        return EXIT_FAILED
    return emulator_main(list(rest))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="check the routes file and its DCR files")
    validate.add_argument("--config", help="routes file (default: RELAY_CONFIG or relay.yaml)")
    validate.add_argument("--settings", help="a local.settings.json whose Values fill ${VARS}")
    validate.set_defaults(handler=cmd_validate)
    send = sub.add_parser("send", help="push a file (or - for stdin) through a route, e.g. a backfill")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["emulator"]:
        return cmd_emulator(argparse.Namespace(), argv[1:])
    args = parser.parse_args(argv)
    if args.command == "send" and args.chunk_rows < 1:
        parser.error("--chunk-rows must be at least 1")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
