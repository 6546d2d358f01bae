"""Command line for the emulator: serve it, inspect what landed, inject faults.

``relay emulator ...`` calls :func:`main` with its remaining arguments, so the same
commands work from either entry point.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from emulator.dcr import DcrError
from emulator.faults import FaultError, FaultRule
from emulator.schema import dumps_dynamic
from emulator.store import DB_NAME, Store, StoreError

RUNTIME_FILE = "emulator.json"  # written by 'serve' so other commands find the endpoint
DEFAULT_STATE_DIR = ".emulator"
DEFAULT_PORT = 4443
MAX_CELL = 40


class CliError(Exception):
    """A runtime failure to report on stderr with exit code 1."""


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise _UsageError(message)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog or "python -m emulator",
        description="Local emulator of the Azure Monitor Logs Ingestion API.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def state_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--state-dir",
            type=Path,
            default=Path(DEFAULT_STATE_DIR),
            help="where the CA, certificate and database live (default: .emulator)",
        )

    serve = sub.add_parser("serve", help="serve the Logs Ingestion API over HTTPS until Ctrl-C")
    serve.add_argument(
        "--dcr",
        action="append",
        required=True,
        metavar="FILE[=dcr-ID]",
        help="DCR definition file (repeatable); the immutable id defaults to dcr-<sha256(stem)[:32]>",
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default 4443, 0 = any free port)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--token", help="accept only this bearer token (default: any bearer token)")
    state_dir(serve)

    rows = sub.add_parser("rows", help="show the rows of an output table, e.g. AppLogs_CL")
    rows.add_argument("table")
    rows.add_argument("--limit", type=int, default=50, help="show the last N rows (default 50, 0 = all)")
    rows.add_argument("--json", action="store_true", help="print JSON instead of a table")
    state_dir(rows)

    for name, help_text in (
        ("drops", "show dropped columns and values, with reasons"),
        ("requests", "show the ingestion request log"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--limit", type=int, default=50, help="show the last N entries (default 50, 0 = all)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        state_dir(p)

    tables = sub.add_parser("tables", help="list output tables and their row counts")
    tables.add_argument("--json", action="store_true", help="print JSON instead of a table")
    state_dir(tables)

    def remote(p: argparse.ArgumentParser) -> None:
        p.add_argument("--endpoint", help="emulator URL (default: from the running emulator's state dir)")
        p.add_argument("--ca", type=Path, help="CA certificate to trust (default: <state-dir>/ca.pem)")
        state_dir(p)

    fault = sub.add_parser("fault", help="add a fault rule to a running emulator")
    remote(fault)
    fault.add_argument("--stream", default="*", help="stream to affect (default: every stream)")
    fault.add_argument("--dcr", help="only this DCR immutable id")
    fault.add_argument("--status", type=int, help="answer with this HTTP status, e.g. 429, 500, 503")
    fault.add_argument("--retry-after", type=float, help="Retry-After header value in seconds")
    fault.add_argument("--code", help="error code in the body")
    fault.add_argument("--message", help="error message in the body")
    fault.add_argument("--delay", type=float, default=0.0, help="wait this many seconds before answering")
    fault.add_argument("--close", action="store_true", help="close the connection without answering")
    fault.add_argument("--count", type=int, help="apply to the next N matching requests")
    fault.add_argument("--fraction", type=float, help="apply to this fraction (0..1) of matching requests")
    fault.add_argument("--seed", type=int, help="random seed for --fraction")

    clear = sub.add_parser("clear-faults", help="remove all fault rules from a running emulator")
    remote(clear)
    reset = sub.add_parser("reset", help="forget all rows, drops, requests and faults of a running emulator")
    remote(reset)
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run one command; return 0 on success, 2 on a usage error, 1 on a runtime error."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _UsageError:
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    handler = _COMMANDS[args.command]
    try:
        return handler(args)
    except (CliError, DcrError, StoreError, FaultError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------------------- serve


def _serve(args: argparse.Namespace) -> int:
    from emulator.server import Emulator

    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be between 0 and 65535, got {args.port}")
    emulator = Emulator(args.dcr, args.state_dir, port=args.port, token=args.token, host=args.host)
    emulator.start()
    runtime = args.state_dir / RUNTIME_FILE
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        info = {
            "endpoint": emulator.endpoint,
            "ca": str(emulator.ca_path.resolve()),
            "pid": os.getpid(),
            "dcrs": emulator.dcr_ids,
        }
        runtime.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        out = sys.stdout
        print("Logs Ingestion API emulator", file=out)
        print(f"  endpoint: {emulator.endpoint}", file=out)
        print(f"  CA certificate: {info['ca']}", file=out)
        print(f"  state dir: {args.state_dir.resolve()}", file=out)
        for dcr in emulator.dcrs.values():
            print(f"  DCR {dcr.name}: {dcr.immutable_id} (streams: {', '.join(dcr.streams)})", file=out)
            for warning in dcr.warnings:  # what the service's rules could not check: served all the same
                print(f"warning: {warning}", file=sys.stderr)
        print("Trust the CA (connection_verify= / REQUESTS_CA_BUNDLE). Ctrl-C to stop.", file=out, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            if json.loads(runtime.read_text(encoding="utf-8")).get("pid") == os.getpid():
                runtime.unlink()
        except (OSError, ValueError):
            pass
    print("emulator stopped", flush=True)
    return 0


# ---------------------------------------------------------------------------- inspection


def _open_store(state_dir: Path) -> Store:
    return Store(state_dir / DB_NAME, readonly=True)


def _rows(args: argparse.Namespace) -> int:
    store = _open_store(args.state_dir)
    try:
        columns = [name for name, _ in store.columns(args.table)]
        rows = store.rows(args.table, args.limit or None)
        total = store.count(args.table)
    finally:
        store.close()
    if args.json:
        _print_json(rows)
    else:
        print(format_table(rows, columns))
        shown = f"last {len(rows)} of {total}" if len(rows) < total else str(total)
        print(f"({shown} row{'s' if total != 1 else ''} in {args.table})")
    return 0


def _log(args: argparse.Namespace) -> int:
    store = _open_store(args.state_dir)
    try:
        entries = (
            store.drops(args.limit or None) if args.command == "drops" else store.requests(args.limit or None)
        )
    finally:
        store.close()
    if args.json:
        _print_json(entries)
        return 0
    if args.command == "drops":
        columns = ["time", "stream", "table", "row", "column", "reason", "value", "client_request_id"]
    else:
        columns = [
            "time",
            "dcr",
            "stream",
            "status",
            "error_code",
            "client_request_id",
            "content_encoding",
            "bytes",
            "rows",
            "rows_written",
            "dropped",
            "fault",
        ]
    print(format_table(entries, columns))
    print(f"({len(entries)} {args.command})")
    return 0


def _tables(args: argparse.Namespace) -> int:
    store = _open_store(args.state_dir)
    try:
        counts = [{"table": name, "rows": store.count(name)} for name in store.tables()]
    finally:
        store.close()
    if args.json:
        _print_json(counts)
    else:
        print(format_table(counts, ["table", "rows"]))
    return 0


def format_table(rows: list[dict[str, Any]], columns: list[str], max_cell: int = MAX_CELL) -> str:
    """Render rows as an aligned text table; long cells are cut with an ellipsis."""
    cells = [[_cell(row.get(col), max_cell) for col in columns] for row in rows]
    widths = [max([len(col), *(len(r[i]) for r in cells)]) for i, col in enumerate(columns)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)
    return "\n".join(lines)


def _cell(value: Any, limit: int) -> str:
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (dict, list)):
        text = dumps_dynamic(value)
    else:
        text = str(value)
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _print_json(value: Any, out: TextIO | None = None) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False), file=out or sys.stdout)


# ---------------------------------------------------------------------------- remote control


def _remote(args: argparse.Namespace, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    endpoint, ca = args.endpoint, args.ca
    runtime = args.state_dir / RUNTIME_FILE
    if endpoint is None or ca is None:
        try:
            info = json.loads(runtime.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        endpoint = endpoint or info.get("endpoint")
        ca = ca or (Path(info["ca"]) if info.get("ca") else args.state_dir / "ca.pem")
    if not endpoint:
        raise CliError(f"no --endpoint given and no running emulator recorded in {runtime}")
    if not str(endpoint).startswith("https://"):
        raise CliError(f"--endpoint must be an https:// URL, got {endpoint!r}")
    if not Path(ca).exists():
        raise CliError(f"CA certificate not found: {ca}")
    context = ssl.create_default_context(cafile=str(ca))
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - https:// checked above
        str(endpoint).rstrip("/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data is not None else {},
    )
    try:
        # S310: the scheme was checked to be https:// above
        with urllib.request.urlopen(request, context=context, timeout=30) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            detail = json.loads(raw)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            detail = raw.decode("utf-8", "replace")
        raise CliError(f"emulator answered {exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        raise CliError(f"cannot reach the emulator at {endpoint}: {exc.reason}") from None


def _fault(args: argparse.Namespace) -> int:
    rule = {
        "stream": args.stream,
        "dcr": args.dcr,
        "status": args.status,
        "retry_after": args.retry_after,
        "code": args.code,
        "message": args.message,
        "delay": args.delay,
        "close": args.close,
        "count": args.count,
        "fraction": args.fraction,
        "seed": args.seed,
    }
    rule = {k: v for k, v in rule.items() if v is not None}
    try:
        FaultRule.from_mapping(rule)  # a bad rule is a usage error; say so before contacting the server
    except FaultError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _status, created = _remote(args, "POST", "/_emulator/faults", rule)
    print(json.dumps(created))
    return 0


def _clear_faults(args: argparse.Namespace) -> int:
    _remote(args, "DELETE", "/_emulator/faults")
    print("faults cleared")
    return 0


def _reset(args: argparse.Namespace) -> int:
    _remote(args, "POST", "/_emulator/reset")
    print("emulator reset")
    return 0


_COMMANDS = {
    "serve": _serve,
    "rows": _rows,
    "drops": _log,
    "requests": _log,
    "tables": _tables,
    "fault": _fault,
    "clear-faults": _clear_faults,
    "reset": _reset,
}
