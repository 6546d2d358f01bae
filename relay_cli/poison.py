"""``relay poison``: inspect, replay, redrive and purge parked and dead-lettered batches.

Exit codes (relay_cli.exit_codes, the same for every relay command): 0 ok; 1 a replay
dead-lettered rows, or storage failed; 2 usage or configuration (bad arguments, settings not
set, purge without --yes and without a terminal); 4 a replay parked its rows again (they
replay later); 5 nothing matched (empty store, unknown id, nothing to replay, redrive or
purge, or purge declined). When several apply the worst wins: 1, 4, 5, then 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError

from shared.poison.model import ParkedBatch
from shared.poison.storage import StorageConnection
from shared.poison.store import DeadLetter, PoisonStore
from shared.settings import Settings, SettingsError

from .console import describe, table
from .exit_codes import Exit, epilog, for_counts, worst
from .settings_file import load_settings_file

LANDED_STATUSES = ("landed", "duplicate", "missing")
#: Replays that left the batch parked (it replays later) or could not read it (kept aside: a failure).
REQUEUED_STATUSES = ("requeued", "partial", "busy", "stale")


def _env(args: argparse.Namespace) -> dict[str, str]:
    return load_settings_file(getattr(args, "settings", None))


def _store(env: Mapping[str, str]) -> PoisonStore:
    settings = Settings.from_env(env, Path.cwd())
    connection = StorageConnection.from_env(env)
    if connection is None:
        raise SettingsError("setting RelayStorage: not set (a storage connection string, or "
                            "RelayStorage__blobServiceUri and RelayStorage__queueServiceUri)")
    return PoisonStore(connection, settings.poison_queue, settings.poison_container, settings.deadletter_container)


def _err(command: str, message: str) -> None:
    print(f"relay poison {command}: {message}", file=sys.stderr)


def _run(command: str, body: Callable[[dict[str, str]], int], args: argparse.Namespace) -> int:
    try:
        return body(_env(args))
    except SettingsError as error:
        _err(command, str(error))
        return Exit.USAGE
    except AzureError as error:
        _err(command, f"storage failed: {describe(error)}")
        return Exit.FAILED


def _json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _short(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _parked_row(batch: ParkedBatch, max_replays: int) -> dict[str, Any]:
    return {"id": batch.id, "route": batch.route, "rows": batch.rows, "bytes": batch.bytes, "class": batch.failure,
            "status": batch.status, "attempt": batch.attempt, "max_replays": max_replays,
            "first_failure": batch.first_failure, "last_failure": batch.last_failure, "batch_id": batch.batch_id,
            "message": batch.message}


def _deadletter_row(entry: DeadLetter) -> dict[str, Any]:
    return {"id": entry.id, "route": entry.batch.route, "rows": entry.batch.rows, "class": entry.batch.failure,
            "status": entry.batch.status, "source": entry.reason.get("source", ""),
            "reason": entry.reason.get("reason", ""), "first_failure": entry.batch.first_failure,
            "batch_id": entry.batch.batch_id}


# ---------------------------------------------------------------------- list

def cmd_list(args: argparse.Namespace) -> int:
    def body(env: dict[str, str]) -> int:
        store = _store(env)
        settings = Settings.from_env(env, Path.cwd())
        if args.deadletter:
            entries = store.list_deadletter(args.route)
            if args.json:
                _json([_deadletter_row(e) for e in entries])
            else:
                print(f"dead-letter container {store.deadletter_name}: {len(entries)} entr"
                      f"{'y' if len(entries) == 1 else 'ies'}, {sum(e.batch.rows for e in entries)} row(s)")
                if entries:
                    table(("ID", "ROUTE", "ROWS", "CLASS", "SOURCE", "REASON"),
                          ([e.id, e.batch.route, e.batch.rows, e.batch.failure, e.reason.get("source", ""),
                            _short(e.reason.get("reason", ""), 60)] for e in entries), right=("ROWS",))
            return Exit.OK if entries else Exit.NOTHING
        parked = store.list_parked(args.route)
        waiting = store.queue_length()
        visible = store.peek()
        if args.json:
            _json({"parked": [_parked_row(b, settings.max_replays) for b in parked], "queue": {
                "name": store.queue_name, "approximate_messages": waiting,
                "visible": [v.id if isinstance(v, ParkedBatch) else v for v in visible]}})
        else:
            print(f"poison queue {store.queue_name}: ~{waiting} message(s), {len(visible)} visible now "
                  f"(the rest wait out their back-off)")
            for item in visible:
                if isinstance(item, ParkedBatch):
                    print(f"  message  {item.id}  route={item.route} attempt={item.attempt} rows={item.rows}")
                else:
                    print(f"  message  {item}")
            print(f"poison container {store.container_name}: {len(parked)} parked batch(es), "
                  f"{sum(b.rows for b in parked)} row(s)")
            if parked:
                table(("ID", "ROUTE", "ROWS", "CLASS", "ATTEMPT", "FIRST FAILURE"),
                      ([b.id, b.route, b.rows, b.failure, f"{b.attempt}/{settings.max_replays}", b.first_failure]
                       for b in parked), right=("ROWS",))
        return Exit.OK if parked or waiting else Exit.NOTHING

    return _run("list", body, args)


# ---------------------------------------------------------------------- show

def cmd_show(args: argparse.Namespace) -> int:
    def body(env: dict[str, str]) -> int:
        store = _store(env)
        batch = store.get_parked(args.id)
        if batch is not None:
            rows = store.read_rows(batch)
            where, record = "parked", _parked_row(batch, Settings.from_env(env, Path.cwd()).max_replays)
            record.update({"endpoint": batch.endpoint, "dcr": batch.dcr, "stream": batch.stream,
                           "request_id": batch.request_id, "blob": f"{store.container_name}/{batch.blob}"})
        else:
            entry = store.get_deadletter(args.id)
            if entry is None:
                _err("show", f"no parked or dead-lettered batch {args.id!r}")
                return Exit.NOTHING
            rows = store.read_rows(entry.batch, store.deadletters)
            where, record = "dead-lettered", dict(entry.reason)
            record["blob"] = f"{store.deadletter_name}/{entry.batch.blob}"
        first = [json.loads(r) for r in rows[: args.rows]]
        if args.json:
            _json({"state": where, **record, "first_rows": first})
            return Exit.OK
        print(f"{args.id}: {where}")
        for key, value in record.items():
            if value not in (None, ""):
                print(f"  {key:<16} {value}")
        print(f"first {len(first)} of {len(rows)} row(s):")
        for row in first:
            print("  " + json.dumps(row, ensure_ascii=False)[:2000])
        return Exit.OK

    return _run("show", body, args)


# ---------------------------------------------------------------------- replay

def cmd_replay(args: argparse.Namespace) -> int:
    from shared.config import ConfigError
    from shared.runtime import Relay

    def body(env: dict[str, str]) -> int:
        try:
            relay = Relay.from_env(env, Path.cwd())
        except ConfigError as error:
            _err("replay", f"the routes file is invalid (relay validate lists every problem): {error}")
            return Exit.USAGE
        try:
            if relay.replayer is None or relay.poison is None:
                raise SettingsError("setting RelayStorage: not set; nothing can be parked or replayed")
            store = relay.poison
            if args.ids:
                batches = []
                for identifier in args.ids:
                    found = store.get_parked(identifier)
                    if found is None:
                        _err("replay", f"no parked batch {identifier!r}")
                    else:
                        batches.append(found)
            else:
                batches = store.list_parked(args.route)
            if not batches:
                print("nothing to replay")
                return Exit.NOTHING
            codes = [Exit.NOTHING] if len(batches) < len(args.ids or []) else []
            totals: Counter[str] = Counter()
            for batch in batches:
                result = relay.replayer.replay(batch, force=True)
                totals.update({"landed": result.landed, "requeued": result.requeued,
                               "deadlettered": result.deadlettered})
                codes.append(replay_exit(result.status, result.requeued, result.deadlettered))
                detail = f"  {result.detail}" if result.detail else ""
                print(f"  {batch.id:<44} {result.status:<12} landed={result.landed} requeued={result.requeued} "
                      f"deadlettered={result.deadlettered}{detail}")
            print(f"replayed {len(batches)} batch(es): {totals['landed']} row(s) landed, {totals['requeued']} "
                  f"requeued, {totals['deadlettered']} dead-lettered")
            return worst(*codes)
        finally:
            relay.close()

    return _run("replay", body, args)


def replay_exit(status: str, requeued: int, deadlettered: int) -> Exit:
    """One replay's exit code: dead-lettered rows fail, rows parked again will replay, landed is ok."""
    if status in LANDED_STATUSES:
        return worst(for_counts(parked=requeued, deadlettered=deadlettered))
    if status in REQUEUED_STATUSES:
        return worst(Exit.PARKED, for_counts(deadlettered=deadlettered))
    return Exit.FAILED  # deadlettered, invalid, or a status this command does not know


# ---------------------------------------------------------------------- redrive

def cmd_redrive(args: argparse.Namespace) -> int:
    if not (args.ids or args.all or args.route):
        _err("redrive", "name the entries to redrive: IDs, --route ROUTE or --all")
        return Exit.USAGE

    def body(env: dict[str, str]) -> int:
        store = _store(env)
        identifiers = list(args.ids) if args.ids else [e.id for e in store.list_deadletter(args.route)]
        if not identifiers:
            print("nothing to redrive")
            return Exit.NOTHING
        moved = 0
        for identifier in identifiers:
            batch = store.redrive(identifier)
            if batch is None:
                _err("redrive", f"no dead-lettered batch {identifier!r}")
                continue
            moved += 1
            print(f"  {identifier} -> {batch.id}  route={batch.route} rows={batch.rows}")
        print(f"redrove {moved} batch(es) to queue {store.queue_name}; they replay now")
        return Exit.OK if moved == len(identifiers) else Exit.NOTHING

    return _run("redrive", body, args)


# ---------------------------------------------------------------------- purge

def _confirm(question: str, assume_yes: bool) -> bool | None:
    """True/False from the prompt; None when there is no terminal to ask (and no --yes)."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        return None
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def cmd_purge(args: argparse.Namespace) -> int:
    def body(env: dict[str, str]) -> int:
        store = _store(env)
        if args.deadletter:
            entries = [e for e in store.list_deadletter(args.route) if not args.ids or e.id in args.ids]
            targets = [(e.id, e.batch.rows) for e in entries]
            what = f"dead-lettered batch(es) from {store.deadletter_name}"
        else:
            parked = [b for b in store.list_parked(args.route) if not args.ids or b.id in args.ids]
            targets = [(b.id, b.rows) for b in parked]
            what = f"parked batch(es) from {store.container_name}"
        everything = not args.ids and not args.route and not args.deadletter
        waiting = store.queue_length() if everything else 0
        if not targets and not waiting:
            print("nothing to purge")
            return Exit.NOTHING
        rows = sum(r for _, r in targets)
        extra = f" and clear ~{waiting} message(s) of queue {store.queue_name}" if everything else ""
        answer = _confirm(f"Delete {len(targets)} {what} ({rows} row(s)){extra}? This cannot be undone.", args.yes)
        if answer is None:
            _err("purge", "refusing to purge without a terminal to confirm; pass --yes")
            return Exit.USAGE
        if not answer:
            print("nothing purged")
            return Exit.NOTHING
        for identifier, _ in targets:
            if args.deadletter:
                store.delete_deadletter(identifier)
            else:
                batch = store.get_parked(identifier)
                if batch is not None:
                    store.delete_parked(batch)
        if everything:
            store.clear_queue()
        print(f"purged {len(targets)} {what} ({rows} row(s)){' and cleared the queue' if everything else ''}")
        return Exit.OK

    return _run("purge", body, args)


# ---------------------------------------------------------------------- stats

def cmd_stats(args: argparse.Namespace) -> int:
    def body(env: dict[str, str]) -> int:
        store = _store(env)
        parked = store.list_parked()
        dead = store.list_deadletter()
        counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        for b in parked:
            cell = counts[("parked", b.route, b.failure)]
            cell[0] += 1
            cell[1] += b.rows
        for e in dead:
            cell = counts[("deadletter", e.batch.route, e.batch.failure)]
            cell[0] += 1
            cell[1] += e.batch.rows
        waiting = store.queue_length()
        lines = [{"state": s, "route": r, "class": c, "batches": n, "rows": rows}
                 for (s, r, c), (n, rows) in sorted(counts.items())]
        if args.json:
            _json({"queue": {"name": store.queue_name, "approximate_messages": waiting}, "by_route_class": lines,
                   "parked": {"batches": len(parked), "rows": sum(b.rows for b in parked)},
                   "deadletter": {"batches": len(dead), "rows": sum(e.batch.rows for e in dead)}})
        else:
            print(f"queue {store.queue_name}: ~{waiting} message(s)")
            print(f"parked: {len(parked)} batch(es), {sum(b.rows for b in parked)} row(s); "
                  f"dead-letter: {len(dead)} batch(es), {sum(e.batch.rows for e in dead)} row(s)")
            if lines:
                table(("STATE", "ROUTE", "CLASS", "BATCHES", "ROWS"),
                      ([line["state"], line["route"], line["class"], line["batches"], line["rows"]]
                       for line in lines), right=("BATCHES", "ROWS"))
        return Exit.OK if lines or waiting else Exit.NOTHING

    return _run("stats", body, args)


# ---------------------------------------------------------------------- parser

def add_poison_commands(sub: Any) -> None:
    """Register ``relay poison ...`` on the top-level subparsers."""
    poison = sub.add_parser("poison", help="inspect, replay, redrive and purge parked / dead-lettered batches",
                            description=__doc__, epilog=epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = poison.add_subparsers(dest="poison_command", required=True)

    def common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--settings", help="a local.settings.json whose Values are used as settings")
        return parser

    listing = common(commands.add_parser("list", help="parked batches and queue messages (or --deadletter)"))
    listing.add_argument("--deadletter", action="store_true", help="list the dead-letter container instead")
    listing.add_argument("--route", help="only this route")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=cmd_list)

    show = common(commands.add_parser("show", help="one parked or dead-lettered batch: reason and first rows"))
    show.add_argument("id")
    show.add_argument("--rows", type=int, default=5, help="rows to print (default 5)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_show)

    replay = common(commands.add_parser("replay", help="replay parked batches now (all, by id, or --route), "
                                                       "ignoring their back-off"))
    replay.add_argument("ids", nargs="*", metavar="ID")
    replay.add_argument("--route", help="only this route")
    replay.set_defaults(handler=cmd_replay)

    redrive = common(commands.add_parser("redrive", help="dead-letter -> poison queue after a fix"))
    redrive.add_argument("ids", nargs="*", metavar="ID")
    redrive.add_argument("--route", help="every dead-lettered batch of this route")
    redrive.add_argument("--all", action="store_true", help="every dead-lettered batch")
    redrive.set_defaults(handler=cmd_redrive)

    purge = common(commands.add_parser("purge", help="delete parked (or --deadletter) batches, after confirmation"))
    purge.add_argument("ids", nargs="*", metavar="ID")
    purge.add_argument("--deadletter", action="store_true", help="purge dead-lettered batches instead")
    purge.add_argument("--route", help="only this route")
    purge.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    purge.set_defaults(handler=cmd_purge)

    stats = common(commands.add_parser("stats", help="counts and rows by route and failure class"))
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(handler=cmd_stats)
