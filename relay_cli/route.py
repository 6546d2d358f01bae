"""``relay route SAMPLE... --source eventhub|blob|http --match NAME``: a dry run of routing.

Reads sample files as the relay reads input (NDJSON, JSON, ``{"records": [...]}``, CSV, gzip),
offers each record to the routes of the source whose ``match`` holds for NAME (a hub name, a
``container/path`` blob path, an HTTP ``{route}`` segment) and prints where each one goes, the
count per route, and the records no route takes. Nothing is normalized or sent.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

from shared.blob_ingest import file_records
from shared.config import ConfigError, load_config
from shared.records import Record
from shared.routing import REJECT, UNROUTED_REASON
from shared.settings import Settings, SettingsError
from shared.sources import registry
from shared.sources.blob import open_file
from shared.sources.errors import DecodeError

from .console import print_warnings, table
from .exit_codes import Exit
from .settings_file import load_settings_file

SHOWN = 50  # records listed one by one; all are counted


def sample_context(source: str, name: str) -> dict[str, Any]:
    """The trigger metadata a record of ``source`` would carry, as far as a dry run knows it."""
    if source == "eventhub":
        return {"_eventhub": {"event_hub": name, "properties": {}}}
    if source == "blob":
        container, _, blob = name.partition("/")
        return {"_blob": {"name": blob, "path": name, "container": container, "metadata": {}}}
    return {f"_{source}": {"route": name, "method": "POST", "headers": {}}}


def cmd_route(args: argparse.Namespace) -> int:
    try:
        env = load_settings_file(args.settings)
        if args.config:
            env["RELAY_CONFIG"] = args.config
        config = load_config(Settings.from_env(env, Path.cwd()).config_path, env)
    except (ConfigError, SettingsError) as error:
        print(f"relay route: {error}", file=sys.stderr)
        return Exit.USAGE
    print_warnings(config.warnings)
    router = config.router(args.source, args.match)
    if router is None:
        matches = ", ".join(r.match for r in config.routes if r.source == args.source) or "none"
        print(f"relay route: no {args.source} route's match holds for {args.match!r} ({args.source} matches: "
              f"{matches})", file=sys.stderr)
        return Exit.USAGE
    print(f"{args.source} {args.match!r}: records are offered to "
          f"{', '.join(d.route.name for d in router.candidates)}; unrouted: {config.unrouted}")
    counts: Counter[str] = Counter()
    unreadable = 0
    shown = []
    context = sample_context(args.source, args.match)
    for sample in args.samples:
        try:
            with open(sample, "rb") as stream:
                opened = open_file(iter(partial(stream.read, 1 << 20), b""), sample)
                for item in file_records(opened.units, opened.where, context):
                    if type(item) is not Record:
                        unreadable += 1
                        shown.append((sample, str(item.ref), f"unreadable: {item.reason}"))
                        continue
                    routes = [route.name for route in router.destinations(item.event, item.context)]
                    counts.update(routes or [REJECT])
                    if len(shown) < SHOWN:
                        shown.append((sample, str(item.ref), ", ".join(routes) or f"(rejected: {UNROUTED_REASON})"))
        except (OSError, DecodeError) as error:
            print(f"relay route: {sample}: {error}", file=sys.stderr)
            return Exit.USAGE
    table(("SAMPLE", "RECORD", "ROUTES"), shown)
    print()
    table(("ROUTE", "RECORDS"), sorted(counts.items()), right=("RECORDS",))
    if counts[REJECT] or unreadable:
        print(f"{counts[REJECT]} record(s) no route takes, {unreadable} unreadable", file=sys.stderr)
        return Exit.REJECTED
    return Exit.OK


def add_route_command(sub: Any) -> None:
    route = sub.add_parser("route", help="dry run: which route(s) each sample record goes to",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    route.add_argument("samples", nargs="+", metavar="SAMPLE", help="sample files (any format the relay reads)")
    route.add_argument("--source", required=True, choices=registry.names(), help="the trigger the records come from")
    route.add_argument("--match", required=True, metavar="NAME",
                       help="event hub name, blob path 'container/path', or the HTTP {route} segment")
    route.add_argument("--config", help="routes file (default: RELAY_CONFIG or relay.yaml)")
    route.add_argument("--settings", help="a local.settings.json whose Values fill ${VARS}")
    route.set_defaults(handler=cmd_route)
