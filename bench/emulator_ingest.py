"""The emulator's ingest path in-process (no HTTP): rows/s of ~250-byte rows in ~1 MB gzip bodies.

    python -m bench.emulator_ingest                  # this tree only
    python -m bench.emulator_ingest --ref main       # this tree and emulator/ at REF, same run
    python -m bench.emulator_ingest --profile        # cProfile top entries of this tree's path
    python -m bench.emulator_ingest --clean          # no undeclared or mistyped values at all
    python -m bench.emulator_ingest --ref main --alternate 3   # trees take turns 3 times: fairer on a busy machine

Each request goes through what the server does after the HTTP checks: bounded gunzip,
``parse_body``, ``process`` (type checks, transformKql, output encoding, drop report) and
``Store.write_request`` (rows, request log, drops in one transaction), on the shipped
``Custom-AppLogs`` stream of ``infra/dcr/relay.json`` (``where`` + ``project``).
About 1% of rows carry an undeclared column or a mistyped value and 5% are ``trace``
(filtered), so the drop report and the filter are on the measured path. Best of 5 rounds.

``--ref`` extracts ``emulator/`` at that git revision into a temporary directory and runs
the same worker against it in a child process, so both numbers come from one run.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELAY_DCR = ROOT / "infra" / "dcr" / "relay.json"
STREAM = "Custom-AppLogs"
BODY_LIMIT = 1_048_576  # the service's limit on the decoded body
ROUNDS = 5

_LEVELS = ("info", "info", "info", "warning", "error", "debug")
_MESSAGES = ("handled", "cache miss", "slow", "signed in", "done")


def make_row(rng: random.Random, i: int, clean: bool = False) -> dict:
    """One AppLogs event of roughly 250 bytes of JSON, mixed types, two timestamp forms."""
    micro = rng.randrange(1_000_000)
    second = i % 60
    ts = (
        f"2026-03-01T12:{i // 60 % 60:02d}:{second:02d}.{micro:06d}Z"
        if i % 2
        else f"2026-03-01T12:{i // 60 % 60:02d}:{second:02d}.{micro:06d}+00:00"
    )
    row = {
        "TimeGenerated": ts,
        "EventId": f"e{i:07d}",
        "Level": "trace" if i % 20 == 7 else _LEVELS[i % len(_LEVELS)],
        "Message": f"{_MESSAGES[i % len(_MESSAGES)]} {rng.randrange(10**4)}",
        "Service": f"svc-{i % 7}",
        "Host": f"web-{i % 13:02d}",
        "DurationMs": round(rng.random() * 500, 3),
        "StatusCode": rng.choice((200, 200, 200, 201, 404, 500)),
        "Bytes": rng.randrange(10**9),
        "Success": i % 9 != 0,
        "Properties": {"route": f"/v1/{i % 50}", "n": i % 1000, "ok": [1, 2]},
    }
    if clean:
        return row
    if i % 200 == 3:
        row["Unexpected"] = "not in the stream declaration"
    if i % 200 == 5:
        row["StatusCode"] = "200"  # mistyped: a string in an int column
    return row


def make_bodies(count: int, seed: int = 12, clean: bool = False) -> list[tuple[bytes, int]]:
    """``count`` gzip bodies, each holding as many rows as fit in the 1 MB decoded limit."""
    rng = random.Random(seed)
    bodies = []
    i = 0
    for _ in range(count):
        parts: list[bytes] = []
        size = 2
        while True:
            encoded = json.dumps(make_row(rng, i, clean), separators=(",", ":")).encode()
            if size + len(encoded) + 1 > BODY_LIMIT - 1024:
                break
            parts.append(encoded)
            size += len(encoded) + 1
            i += 1
        raw = b"[" + b",".join(parts) + b"]"
        bodies.append((gzip.compress(raw, 6), len(parts)))
    return bodies


def _pipeline():
    """The ingest path of whatever ``emulator`` package is first on sys.path."""
    from emulator import ingest as ingest_module
    from emulator.dcr import load_dcr
    from emulator.ingest import parse_body, process
    from emulator.server import MAX_BODY, gunzip_bounded
    from emulator.store import RequestRecord, Store

    dcr = load_dcr(RELAY_DCR)
    # what the server calls: ingest_body, or before it existed parse_body then process
    ingest_body = getattr(ingest_module, "ingest_body", lambda dcr, stream, data: process(dcr, stream, parse_body(data)))

    def make_store(directory: str) -> Store:
        store = Store(Path(directory) / "emulator.sqlite3")
        for flow in dcr.data_flows:
            for transform in flow.transforms.values():
                store.ensure_table(flow.table, transform.output_columns)
        return store

    def ingest(store: Store, body: bytes, n: int) -> tuple[int, int]:
        record = RequestRecord(
            time="2026-03-01T12:00:00.000Z", dcr=dcr.immutable_id, stream=STREAM, status=None,
            request_id=f"r-{n}", content_encoding="gzip", bytes=len(body),
        )
        data = gunzip_bounded(body, MAX_BODY)
        record.bytes_decoded = len(data)
        result = ingest_body(dcr, STREAM, data)
        record.status = 204
        record.rows, record.rows_written = result.rows, result.rows_written
        record.dropped = len(result.drops)
        store.write_request(record, result.drops, result.rows_by_table)
        return result.rows_written, len(result.drops)

    return make_store, ingest


def worker(bodies: int, rounds: int, profile: bool, clean: bool) -> dict:
    make_store, ingest = _pipeline()
    data = make_bodies(bodies, clean=clean)
    rows = sum(n for _, n in data)
    raw_bytes = sum(len(gzip.decompress(b)) for b, _ in data)
    best = best_cpu = float("inf")
    written = drops = 0
    with tempfile.TemporaryDirectory(prefix="bench-emu-") as tmp:
        store = make_store(tmp)
        try:
            ingest(store, data[0][0], -1)  # warm-up: imports, first-use caches
            n = 0
            for _ in range(rounds):
                start, start_cpu = time.perf_counter(), time.process_time()
                written = drops = 0
                for body, _count in data:
                    w, d = ingest(store, body, n)
                    written += w
                    drops += d
                    n += 1
                best = min(best, time.perf_counter() - start)
                best_cpu = min(best_cpu, time.process_time() - start_cpu)
            if profile:
                prof = cProfile.Profile()
                prof.enable()
                for body, _count in data:
                    ingest(store, body, n)
                    n += 1
                prof.disable()
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
                print(out.getvalue(), file=sys.stderr)
        finally:
            store.close()
    return {
        "rows": rows, "rows_written": written, "drops": drops, "bodies": len(data),
        "row_bytes": raw_bytes / rows, "best_s": best, "rows_per_s": rows / best,
        "best_cpu_s": best_cpu, "rows_per_cpu_s": rows / best_cpu,
    }


def _run_child(pythonpath: str, bodies: int, rounds: int, profile: bool, clean: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    cmd = [sys.executable, "-m", "bench.emulator_ingest", "--worker", "--bodies", str(bodies),
           "--rounds", str(rounds)] + (["--profile"] if profile else []) + (["--clean"] if clean else [])
    # -m puts the working directory first on sys.path: make it the tree being measured
    cwd = pythonpath.split(os.pathsep)[0]
    out = subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True, text=True)
    if profile:
        print(out.stderr, file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="also measure emulator/ at this git revision, same run")
    parser.add_argument("--bodies", type=int, default=5, help="1 MB bodies per round (default 5)")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--profile", action="store_true", help="print cProfile top entries (tottime)")
    parser.add_argument("--clean", action="store_true", help="bodies without undeclared or mistyped values")
    parser.add_argument("--alternate", type=int, default=1,
                        help="run the trees in turn this many times, keep each one's best (default 1)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.bodies, args.rounds, args.profile, args.clean)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-emu-ref-") as tmp:
        trees = [("this tree", str(ROOT))]
        if args.ref:
            archive = subprocess.run(["git", "archive", args.ref, "emulator"], cwd=ROOT, check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            # the old emulator/ first, this tree (bench/, infra/) after it
            trees.insert(0, (args.ref, f"{tmp}{os.pathsep}{ROOT}"))
        best: dict[str, dict] = {}
        for _ in range(args.alternate):  # the trees take turns, so a busy spell hits both
            for label, path in trees:
                r = _run_child(path, args.bodies, args.rounds, args.profile, args.clean)
                if label not in best or r["rows_per_s"] > best[label]["rows_per_s"]:
                    best[label] = r
    results = [(label, best[label]) for label, _path in trees]
    first = results[0][1]
    print(f"emulator ingest, {STREAM}: {first['bodies']} gzip bodies/round of ~1 MB decoded, "
          f"{first['rows']} rows of {first['row_bytes']:.0f} B{' (clean)' if args.clean else ''}, "
          f"best of {args.rounds} rounds" + (f" x {args.alternate} turns" if args.alternate > 1 else ""))
    # CPU seconds too: on a shared machine wall time also counts waiting for a core
    print(f"{'emulator':<12} {'rows/s':>10} {'rows/CPU s':>11} {'best s':>8} {'written':>8} {'drops':>6}")
    for label, r in results:
        print(f"{label:<12} {r['rows_per_s']:>10,.0f} {r['rows_per_cpu_s']:>11,.0f} {r['best_s']:>8.3f} "
              f"{r['rows_written']:>8} {r['drops']:>6}")
    if len(results) == 2:
        old, new = results[0][1], results[1][1]
        print(f"speed-up: {new['rows_per_s'] / old['rows_per_s']:.2f}x wall, "
              f"{new['rows_per_cpu_s'] / old['rows_per_cpu_s']:.2f}x CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
