"""``relay dcr init SAMPLE... --stream Custom-NAME --dcr FILE``: a DCR stream, data flow and table from samples.

Reads the samples with the relay's own decoders (JSON object, array, NDJSON, CSV with a header,
{"records": [...]}, any of them gzipped), infers each column's type across all samples
(relay_cli.dcr_infer), creates or merges into the DCR file and its table plans file
(relay_cli.dcr_file) and prints the route to paste into relay.yaml.

Exit codes (relay_cli.exit_codes): 0 written (or --dry-run: nothing to change / the diff printed);
3 written, but some sample columns conflict with their declared type (listed, left as declared);
2 usage: bad arguments, or samples, DCR file or table plans that cannot be read (nothing written);
1 the files could not be written.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from shared.sources.blob import Expanded, open_file
from shared.sources.errors import DecodeError
from shared.tables import PLANS, TablesError, load_table_plans, tables_file_for

from .dcr_file import DcrFileError, merge_stream, merge_table_plan, output_stream_for, route_snippet
from .dcr_infer import InferenceError, infer
from .exit_codes import Exit

_STREAM = re.compile(r"Custom-[A-Za-z0-9_]{1,100}")
_TABLE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
MAX_SAMPLE_EVENTS = 100_000  # enough to see every field; bounds memory on a large export


class UsageError(ValueError):
    pass


def read_samples(paths: list[str], limit: int = MAX_SAMPLE_EVENTS) -> Iterator[tuple[Any, bool]]:
    """(event, is CSV text) from each file, in every format the blob trigger reads."""
    for path in paths:
        with open(path, "rb") as stream:
            opened = open_file(iter(partial(stream.read, 1 << 20), b""), path)
            for where, payload, error, _size in opened.units:
                if error is not None:
                    raise DecodeError(f"{path}: {opened.where} {where}: {error}")
                for event in payload if isinstance(payload, Expanded) else [payload]:
                    if limit <= 0:
                        return
                    limit -= 1
                    yield event, opened.format == "csv"


def _table_for(stream: str, table: str | None) -> str:
    if table is None:
        base = stream.removeprefix("Custom-")
        return base if base.endswith("_CL") else f"{base}_CL"
    table = table.removeprefix("Microsoft-").removeprefix("Custom-")
    if not _TABLE.fullmatch(table):
        raise UsageError(f"--table {table!r}: a table name is a letter then letters, digits or '_' "
                         "(NAME_CL for a custom table, or an Azure table such as CommonSecurityLog)")
    return table


def _load_json(path: Path, what: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DcrFileError(f"{what} {str(path)!r} cannot be read as JSON: {error}") from None
    if not isinstance(document, dict):
        raise DcrFileError(f"{what} {str(path)!r} must hold a JSON object")
    return document


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _diff(path: Path, new: str) -> str:
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                        f"a/{path}", f"b/{path}"))


def cmd_init(args: argparse.Namespace) -> int:
    """Infer, merge, write (or show the diff), and print the route."""
    err = sys.stderr
    try:
        if not _STREAM.fullmatch(args.stream):
            raise UsageError(f"--stream {args.stream!r} must look like Custom-NAME (letters, digits, '_'): "
                             "a DCR declares its input streams as Custom-...")
        table = _table_for(args.stream, args.table)
        azure_table = not table.endswith("_CL")
        if azure_table and args.plan:
            raise UsageError("--plan applies to custom (_CL) tables: an Azure table's plan is not the relay's")
        inference = infer(read_samples(args.samples), azure_table=table if azure_table else False,
                          time_field=args.time_field)
        dcr_path = Path(args.dcr)
        plans_path = tables_file_for(dcr_path)
        load_table_plans(plans_path)  # a broken plans file fails before anything is written
        merged = merge_stream(_load_json(dcr_path, "DCR file"), args.stream, table, inference)
        plans, plan_note = (merge_table_plan(_load_json(plans_path, "table plans file"), table, args.plan)
                            if not azure_table else (None, None))
    except (UsageError, InferenceError, DcrFileError, TablesError, DecodeError) as error:
        print(f"relay dcr init: {error}", file=err)
        return Exit.USAGE
    except OSError as error:  # a sample or the DCR file cannot be read: nothing was written
        print(f"relay dcr init: cannot read {error.filename or 'a file'!r}: {error.strerror or error}", file=err)
        return Exit.USAGE
    for warning in inference.warnings:
        print(f"warning: {warning}", file=err)
    if plan_note:
        print(f"warning: {plan_note}", file=err)
    for conflict in merged.conflicts:
        print(f"conflict: {conflict}", file=err)
    writes = [(dcr_path, _dump(merged.document))]
    if plans is not None:
        writes.append((plans_path, _dump(plans)))
    output = output_stream_for(table)
    verb = "would add" if args.dry_run else "added"
    summary = (f"{dcr_path}: stream {args.stream} ({len(merged.columns)} columns, {len(merged.added)} {verb}"
               f"{', new stream' if merged.new_stream else ''}) -> {output}"
               f"{' (new data flow)' if merged.new_flow else ''}; {inference.samples} sample event(s)")
    if args.dry_run:
        diffs = [_diff(path, text) for path, text in writes]
        print("".join(diffs) or f"no change to {dcr_path}", end="" if any(diffs) else "\n")
        print(summary, file=err)
    else:
        try:
            for path, text in writes:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
        except OSError as error:
            print(f"relay dcr init: cannot write {error.filename or 'a file'!r}: {error.strerror or error}",
                  file=err)
            return Exit.FAILED
        print(summary, file=err)
        print(f"# route for relay.yaml (append it: relay.yaml ends with its routes); then: relay validate\n"
              f"{route_snippet(_route_name(args.stream), args.stream, str(dcr_path), inference, merged.mapping, args.plan)}",
              end="")
    return Exit.REJECTED if merged.conflicts else Exit.OK


def _route_name(stream: str) -> str:
    return re.sub(r"_cl$", "", stream.removeprefix("Custom-").lower()).replace("_", "-")


def add_dcr_commands(sub: Any) -> None:
    """Register ``relay dcr ...`` on the top-level subparsers."""
    dcr = sub.add_parser("dcr", help="build DCR streams and tables from sample events",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = dcr.add_subparsers(dest="dcr_command", required=True)
    init = commands.add_parser("init", help="infer a stream declaration, data flow and table from sample events",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    init.add_argument("samples", nargs="+", metavar="SAMPLE",
                      help="sample files: JSON, JSON array, NDJSON, CSV with header, {records: [...]}; .gz too")
    init.add_argument("--stream", required=True, help="input stream to declare, Custom-NAME")
    init.add_argument("--dcr", required=True, help="DCR definition file to create or merge into")
    init.add_argument("--table", help="output table: NAME_CL (default: the stream's NAME_CL) or an Azure table")
    init.add_argument("--time-field", help="dotted path of the event time (becomes TimeGenerated)")
    init.add_argument("--plan", choices=PLANS, help="plan of a new custom table (default Analytics)")
    init.add_argument("--dry-run", action="store_true", help="print the diff of the files; write nothing")
    init.set_defaults(handler=cmd_init)
