"""``python -m bench``: run the benchmarks, print a table, write JSON and docs/benchmarks.md.

    python -m bench              # everything (make bench), rewrites docs/benchmarks.md
    python -m bench --quick      # smaller data and fewer rounds, leaves docs/benchmarks.md alone
    python -m bench --big        # the big-blob benchmark on a 1 GB blob
    python -m bench --only cpu,http
    python -m bench --only wide,ehdiag --quick   # issue 12's wide-webhook and Event Hub shapes

Benchmarks print numbers; no test asserts on time.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from typing import Any

from bench import report
from bench.common import ROOT, load_average, machine, say

BENCHMARKS = ("cpu", "issue12", "wide", "ehdiag", "upload", "blob", "http")


def _parse_big_blob(output: str) -> dict[str, Any]:
    """Rows of bench/big_blob.py's table (gzip MB, raw MB, rows, seconds, rows/s, peak RSS, RSS at start)."""
    runs = []
    for line in output.splitlines():
        cells = line.split()
        if len(cells) == 7 and all(re.fullmatch(r"[\d,.]+", c) for c in cells):
            gzip_mb, raw_mb, rows, seconds, rate, peak, start = (float(c.replace(",", "")) for c in cells)
            runs.append({"gzip_mb": gzip_mb, "raw_mb": raw_mb, "rows": int(rows), "seconds": seconds,
                         "rows_per_s": rate, "peak_rss_mb": peak, "rss_at_start_mb": start})
    baseline = re.search(r"read whole.*peak RSS (\d+) MB", output)
    return {"runs": runs, "baseline_peak_rss_mb": float(baseline.group(1)) if baseline else None}


def run_big_blob(size_mb: int) -> dict[str, Any]:
    """Call bench/big_blob.py (owned by the blob trigger's author) if it is there."""
    if not (ROOT / "bench" / "big_blob.py").exists():
        return {"skipped": "bench/big_blob.py does not exist yet"}
    say(f"big blob: {size_mb} MB gzip NDJSON blob through the blob core (bench/big_blob.py)")
    command = [sys.executable, "-m", "bench.big_blob", "--size-mb", str(size_mb), "--scales", "1"]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after an hour"}
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:] or ["exit " + str(done.returncode)]}
    parsed = _parse_big_blob(done.stdout)
    if not parsed["runs"]:
        return {"error": "could not read bench/big_blob.py's output", "output": done.stdout[-2000:]}
    return {"size_mb": size_mb, **parsed, "output": done.stdout}


def notes(results: dict[str, Any]) -> list[str]:
    """What was changed for speed, with this run's own numbers where the run measures them."""
    cpu = results.get("cpu_path", {})
    lines = []

    def rate(name: str) -> str:
        return f"{cpu[name]['rows_per_s']:,} rows/s" if name in cpu else "not measured in this run"

    lines.append(
        "- **Route plans** (`shared/plan.py`, issue 12): each route's normalization rule is decided once (columns, "
        "paths, types, time source, `extra`, `id_column`, `on_type_error`); the general `Normalizer` walks it as "
        "the reference and the fast path (`shared/fastpath.py`) walks the same plan with per-column shortcuts "
        "laid out as tuples: a value that already has its column's type is stored as is, anything else goes "
        "through the same coercers (a hypothesis test checks both give the same bytes, reasons and counters). "
        "No generated source, no `exec`, no time caches. Rows are kept as right-sized copies: orjson's own "
        "output buffers grew the heap page by page (~1.4 page faults per row). "
        f"CPU path: relay {rate('relay')} vs {rate('relay_general_normalizer')} with the general normalizer.")
    typed = results.get("issue12") or {}
    wide = results.get("wide_webhook") or {}
    if typed and wide:
        lines.append(
            "- **Typed path** (`shared/typed.py`, issue 12 stage B): when a body's one route has a typed path, a "
            "plain JSON body, NDJSON slices and an NDJSON blob's lines stay encoded (`records.Encoded`), and a JSON "
            "array body of up to 320 KB is decoded whole before anything splits it (`TypedPath.predecode`; its "
            "elements are split only if a record is left to the general path or `id_column` hashes them). A chunk "
            "is decoded in one msgspec call into a per-route Struct laid out as the row: the steps put their values "
            "back into the events, which then take the class of a Struct named by the columns and are encoded in C; "
            "rows' epochs are taken only for auxiliary routes. A record the Struct refuses takes the general path "
            "in one call per chunk and keeps its place (Hypothesis equivalence test). Keys no column reads that two "
            "lax chunks in a row bring are learned: the route's next path declares them as raw fields, so its "
            "chunks decode strict and `extra` is a Struct of them made in a C-level map, instead of a key map per "
            "event with the consumed keys popped (wide webhooks: 68% of the passthrough before, in the last run; "
            "64 MB app-log blob, same run in turns: 1.24x the tree before). This run: issue-12 arrays "
            f"{typed['relay']['rows_per_s']:,} rows/s ({typed['relay_vs_sdk']:.2f}x the SDK path, "
            f"{typed['relay_vs_passthrough'] * 100:.0f}% of the passthrough; 1.73x the SDK path before, "
            f"104k rows/s in that run), wide webhooks {wide['relay']['rows_per_s']:,} rows/s "
            f"({wide['relay_vs_sdk']:.2f}x, {wide['relay_vs_passthrough'] * 100:.0f}% of the passthrough).")
    lines.append(
        "- **Times in C** (`shared/timeparse.py`, issue 12): every ISO 8601 / RFC 3339 form (`Z`, `+hh:mm`, "
        "0-9 fraction digits, space separator) is read by CPython's C `fromisoformat` and written by orjson "
        "(`OPT_UTC_Z`; the fast path keeps TimeGenerated as a UTC datetime in the row and orjson writes it "
        "with the row). `isoformat` of an aware datetime alone cost 1.3-1.5 us; a `+00:00` time now costs "
        "~1 us in all instead of ~3.7 us, and `...Z` no longer needs the per-minute caches. Same text, epoch "
        "and errors as the old reading on every form (hypothesis test against it). `msgspec.convert` was "
        "measured: 0.39 us against 0.12 us for `fromisoformat`, and it rounds 7+ fraction digits where the "
        "relay truncates.")
    lines.append(
        "- **NDJSON read line by line off a buffer** (`decode_ndjson`): no list of every line of the body; each "
        "line is parsed with its newline, and a body where that fails goes through the line-by-line reading, "
        "which names the bad line (0.49 s -> 0.42 s for the 200k events, a quarter fewer page faults).")
    lines.append(
        "- **GC thresholds for batches** (`shared/gctune.py`, set once by `runtime.get_relay()`): a decoded "
        "batch is hundreds of thousands of live dicts and the default thresholds made full collections walk them "
        f"again and again. Relay {rate('relay')} vs {rate('relay_default_gc')} under Python's defaults (the "
        f"SDK baseline gains too: {rate('baseline_relay_gc')} vs {rate('baseline')}; the table's baseline runs "
        "with the defaults its users have).")
    lines.append(
        "- **Uploads overlap normalization** (`Engine.run`): batches over 2,000 events are normalized in "
        "slices and each request goes to the upload pool as soon as it is full; cuts are computed by bisecting "
        "running row sizes (`packer.split_in_order`) and each body is built once, so the result is byte for byte "
        "what one pass gives (property test).")
    memory = results.get("http_memory") or {}
    sliced, array, whole = (memory.get(f"{shape} 25.0", {}) for shape in ("ndjson", "json array", "decoded whole"))
    if all("peak_rss_mb" in entry for entry in (sliced, array, whole)):
        lines.append(
            "- **Webhook bodies decoded in slices** (`ndjson_slices`, `json_array_slices` + "
            "`Engine.run` with `hold=True`): NDJSON is decoded 2,000 lines at a time; an array over 1 MiB is cut at "
            "the first `},{` past each MiB, a cut kept only when the text before it parses (one inside a string or "
            "a nested value cannot), and each slice is normalized before the next is decoded. Each request is "
            "gzipped as soon as it is full and its rows let go (cut back out of the body only to park it), so the "
            "dicts of one slice and the gzip bodies are what stays; nothing is sent before the whole body has "
            "decoded (bad JSON is still a 400 with nothing uploaded). One 25 MB body: "
            f"{sliced['peak_rss_mb']:.0f} MB peak RSS (+{sliced['growth_mb']:.0f} MB) as NDJSON, "
            f"{array['peak_rss_mb']:.0f} MB (+{array['growth_mb']:.0f} MB) as an array, vs "
            f"{whole['peak_rss_mb']:.0f} MB (+{whole['growth_mb']:.0f} MB) decoded whole.")
    upload = results.get("upload_path", {})
    sweeps = []
    for key, label in (("relay_rows", "50 ms, same rows"), ("relay", "50 ms, from events")):
        runs = upload.get("latency", {}).get(key)
        if runs:
            sweeps.append(label + ": " + ", ".join(f"{c}: {r['seconds']:.2f} s"
                                                   for c, r in sorted(runs.items(), key=lambda kv: int(kv[0]))))
    slow = upload.get("latency_200ms", {}).get("relay")
    if slow:
        sweeps.append("200 ms, from events: " + ", ".join(f"{c}: {r['seconds']:.2f} s"
                                                          for c, r in sorted(slow.items(), key=lambda kv: int(kv[0]))))
    if sweeps:
        lines.append("- **`RELAY_UPLOAD_CONCURRENCY` default 4 -> 16**, by requests in flight in this run ("
                     + "; ".join(sweeps) + "): 4 leaves the relay waiting on round trips, 16 gets most of the gain "
                     "at 200 ms (32 adds little), and 16 bodies of ~250 KB gzip in flight cost ~4 MB per worker.")
    lines.append(
        "- **A connection per call in flight** (`PooledRequestsTransport` in `shared/sink.py`): azure-core mounts "
        "requests' default adapter, which keeps 10 connections per host, so with 16 calls in flight 6 connections "
        "were dropped after every round and re-opened with a new TCP + TLS handshake (urllib3: \"Connection pool "
        "is full\"); seen here against the emulator at 200 ms per call, 15 connections for 50 calls at 16 in "
        "flight. The pool now holds `RELAY_UPLOAD_CONCURRENCY` connections (`tests/e2e/test_sink_connections.py`: "
        "48 calls, 16 at a time, at most 16 TLS connections). Against the loopback emulator a handshake costs "
        "no round trip, so wall time does not show it (A/B in one process, same rows, 16 in flight, 50 ms: "
        "2.01-2.36 s with 10 pooled connections, 2.07-2.42 s with 16); against a remote endpoint each saved "
        "handshake is a TCP and a TLS round trip.")
    lines += [
        "- Already right before this work and kept: orjson, ISA-L gzip level 1 (several times zlib 6), one "
        "serialization per row with size arithmetic in the packer, one SDK client per endpoint.",
        "- Measured and not adopted (2026-12-01, this machine, 200k `applogs` events): **column-by-column "
        "normalization** (each column read once per batch with `map`, types checked once per column with "
        "`set(map(type, ...))`, rows built with `map(dict, zip(...))`): 4.5 s vs 2.1 s for the compiled per-event "
        "normalizer on one 200k list, 2.5 s vs 2.1 s in 1,000-event slices. CPython 3.11's specialized bytecode "
        "reads a dict key as fast as `map(dict.get, ...)` (59 vs 66 ns) and builds a literal dict faster than "
        "`dict(zip(...))` (479 vs 1,146 ns per 10-key row), and every extra pass over 200k events misses the "
        "cache. **glibc heap retention** (`mallopt` M_TRIM_THRESHOLD / M_TOP_PAD): keeping the freed heap cuts "
        "`orjson.dumps` of 200k events kept in a list from ~0.7 s to ~0.2 s (its buffers otherwise cost a page "
        "fault per row), but the relay already keeps right-sized copies of its rows, and its run stayed within "
        "noise (3.1-3.5 s either way) while holding the batch's peak heap for good. **NDJSON parsed as one array** (newlines turned into "
        "commas, one `orjson.loads`): 0.98-1.13 s vs 0.65-0.80 s for `decode_ndjson`'s line-by-line reading.",
        "- Measured and not adopted (2026-12-03): **NDJSON blob lines decoded by the route's typed path itself**, "
        "each line into its Struct, in place of the source's per-line probe and the chunk's second decode: 10% "
        "fewer instructions a row (callgrind, 65.9k to 59.5k, the same simulated cache misses), but no faster "
        "(CPU time, the two alternated 24 times in one process: 0.99x, quartiles 0.91-1.06; `bench.big_blob "
        "--against` the tree before: even on medians) and 5 MB more peak RSS; reverted (5588acd, 89900e9). "
        "**Whole numbers in a `real` column stored without its coercer** on the fast path: 0.35% fewer "
        "instructions on diagnostic records.",
        "",
        "What is left (not done here, measured above):",
        "",
        "- **Decoding into dicts** is the largest single cost left on routes the typed path does not cover "
        "(text `extra`, several routes on one input, array indexes in paths; `relay validate` shows which). "
        "`id_column` is covered: the id hashes each event's own bytes as they came, where the sorted-keys JSON "
        "would have made the typed path decode every event twice (callgrind, `applogs`: +12% instructions per "
        "event) and compacting the text first still cost it ~10%.",
        "- `EventId` (sorted `orjson.dumps` + SHA-256 per event, ~1.5 us of the ~4.4 us per event the compiled "
        "normalizer spends) is exactly what the route asks for and must keep its values; SHA-256 through "
        "OpenSSL is ~0.47 us for 440 bytes (BLAKE2b is no faster here: 0.93 vs 0.87 us).",
        "- Young-generation collections still walk the batch's live events (~0.1 s of the relay's time); only "
        "a threshold above a batch's allocations avoids them, which is no setting for a long-running process.",
        "- The emulator ingests in one Python process: in `ingest` mode it, not the client, sets the pace.",
        "- **Typed path against its floor** (issue 12's 60% of the passthrough: 51-99% over five runs of "
        "2026-12-03, full and standalone, so this VM's noise spans it; 25.8k instructions per event against the "
        "passthrough's 14.8k, 57%, from 26.6k at the start of that day; the history of the session before "
        "follows): the webhook-array shapes also "
        "time a typed floor, msgspec decoding the keys the route reads and encoding them back with no per-field "
        "work, which runs faster than the passthrough; so no decoding cost holds the relay below 60%, its own "
        "per-field work does. Instructions per event on the issue-12 shape (callgrind, same events; the "
        "passthrough 14.8k): 31.4k before these changes; 26.9k after on these 820 KB bodies (55%), which are "
        "split, and 23.9k (62%) when such a body is decoded whole (smaller bodies only, see below): the event "
        "Struct as its row, no "
        "column transpose (-2%); epochs only for auxiliary routes, the window counted on datetimes (-7%); "
        "`all()` instead of `x in list` for FAIL, None and ABSENT (-2%); the body decoded whole before any split "
        "(-12%: the split alone was 2.2k); the ISO gate without sets (-1%). What is left: the decode (~5k), "
        "freeing per-event objects, the row encode (~3.3k), gzip (~1.4k) and a `setattr` per event for each "
        "slot a step fills (~2.5k). Wall clock does not follow the instructions all the way: the relay's "
        "objects leave the cache where the passthrough's dicts stay closer (a 5,000-event chunk cost ~30% more "
        "per event than a 2,000-event one, so a body decoded whole is still cut into the engine's chunks), and "
        "this VM moves the ratio between runs: 44-60% of the passthrough in this session's runs of "
        "`python -m bench.issue12` (best of 5 each), against 34-52% before. Against the tree these changes "
        "started from, same run, in turns (`python -m bench.issue12 --against <checkout>`): 0.98x on the "
        "issue-12 bodies (820 KB, split: instructions -15%, wall clock even) and 0.76x when they were decoded "
        "whole (instructions -24%), hence the 320 KB bound; bodies of 500-2,000 events ran 1.07-1.30x faster "
        "decoded whole.",
        "- **Chunk size and the cache** (2026-12-03): a chunk's events are walked once per step, so a chunk whose "
        "events no longer fit in the CPU's caches pays for it on every pass. Measured in turns (separate processes) "
        "or alternating in one process, same data: Event Hub records normalized ~64 KB of bodies at a time instead "
        "of 4 MB, 1.10-1.22x (next note); app-log NDJSON bodies on the typed path in 500-line slices instead of "
        "2,000, 1.08-1.16x (the CPU path above: 3.27x the SDK path in a run of it alone, 2.08-2.43x in the full "
        "runs before); the same 500-event chunks for the issue-12 JSON arrays 0.87-0.90x, and for blob app logs "
        "(strict Structs, learned keys) 300 rows 0.92x and 1,000 rows 0.99x, so those keep their sizes. Then "
        "NDJSON went to 250-line slices, each a chunk of its own (the engine merged a source's decoded slices into "
        "2,000-row chunks, so the dict path on NDJSON gained nothing from smaller slices): against 500-line "
        "slices, in turns, 1.14x best and 1.10x median on the typed path, 1.10x best and 1.19x median on dicts.",
        "- **The typed path a slice at a time, and the blob's line checks** (2026-12-04): blob chunks stay about one "
        "request of input (~1,800 app-log lines, ~5 MB once decoded), but `Normalizer.normalize_encoded` makes their "
        "rows 500 records at a time (`normalize.TYPED_SLICE_ROWS`), each slice decoded just before its steps walk "
        "it, and the blob source checks a piece's lines 256 at a time (`sources.blob.CHECK_LINES`) instead of all "
        "~3,900 of a 1 MB piece; with them, a chunk's ids hashed in one loop (`coercion.ids_of`: two Python calls "
        "per id were a quarter of its cost) and each slice's JSON array built with one copy of its lines "
        "(`jsontext.array_text`, as the packer built requests). Measured with callgrind and a simulated 1 MB "
        "last-level cache (this VM's L2), per pass over the same blob lines: cache misses 4.65M -> 2.47M, "
        "estimated cycles (instructions + 10 per L1 miss + 100 per L2 miss) 1.18x fewer (slices -7%, ids -2.3%, "
        "arrays -1.7%, checks -3.4%); main-thread CPU, alternating 40 times in one process: 1.11x for the slices "
        "(250 records: 1.08x); `bench.big_blob --against` the tree before, 6 rounds in turns: 1.15x best, 1.09x "
        "on the median of paired rounds. Issue-12 arrays (5,000-event bodies, split, 2,000-row chunks, now 500 "
        "at a time): even, 0.94-1.05x on the median of paired rounds over three runs of 8-12 rounds (callgrind: 1.08x "
        "fewer estimated cycles, 37% fewer cache misses).",
        "- **Rows as columns, refs named when read** (2026-12-04, later): a normalized part reaches the packer as "
        "`records.Rows` (refs, row bytes, their sizes once) instead of a `Row` per row, and the refs of encoded events "
        "are their positions (`records.Refs`), made into `Item`s only for a failure to report or rows to park; the "
        "packer keeps its pending rows as the same columns. Callgrind with a simulated 1 MB last-level cache, issue-12 "
        "arrays, 2 passes of 20k events: 1,405M -> 1,294M estimated cycles (7.9% fewer; 6.3% fewer instructions for "
        "the columns and lazy refs, 1.2% more for the sizes taken once). In turns with the tree before "
        "(`python -m bench.issue12 --against`, 10 rounds): 1.09x best, ~1.09x on the median of paired rounds; "
        "blob app logs (`bench.big_blob --against`, 64 MB, 4 rounds): 1.06x best, ~1.09x paired. Measured and not "
        "adopted the same day: the 5,000-event (820 KB) bodies decoded whole with the steps still 500 at a time "
        "(10% fewer instructions, 3.5% fewer estimated cycles, but 0.73x in main-thread CPU alternating 30 times in "
        "one process: the decode of the whole body leaves the first slices' Structs cold); rows encoded into one "
        "buffer per slice (`Encoder.encode_into`, ends read in a C-level map): even with per-row `encode` and the "
        "join (0.99x, 200 rounds alternating); 250 and 1,000-row slices against 500: 0.96x and 1.02x, within noise.",
        "- **Event Hub**: decoded into dicts (the typed path ran slower on 20-record envelopes, and on whole "
        "2,000-record batches too, same run; with learned keys it runs even with the dicts, 46-57k against "
        "52-67k records/s, same process, still not worth a second decode of every envelope). Its rows cost "
        "orjson's decode, the sorted-keys dump and SHA-256 of `EventId`, the `Properties` copy and the row dump; "
        "the passthrough does only the first and last. A same-run *required floor* does exactly the route's work "
        "with no check (map, UTC time, `Properties`, `EventId`, row dump); this VM puts it at 48-78% of the "
        "passthrough from run to run. Until 2026-12-03 the relay ran at ~47-56% of that floor though its "
        "instructions were within ~13% of the floor's (callgrind, per record: relay 163k, floor 145k, passthrough "
        "51k; software SHA-256 under valgrind weighs on the first two). The gap was the cache: the trigger "
        "normalized 4 MB of bodies at a time, so a whole 2.6 MB batch of records was decoded into dicts before the "
        "fast path walked the first of them, and by then they were cold; the floor walks each body's records "
        "right after decoding them. With chunks of ~64 KB of bodies (`shared/eventhub_ingest.py`) the relay runs "
        "at ~77% of the floor: same run, in turns, 1.10-1.13x the tree before (`python -m bench.eventhub_diagnostics "
        "--against <checkout>`, 6 rounds) and 1.17-1.22x alternating in one process (512 KB chunks: 1.08x less than "
        "64 KB); as many requests either way. Against the code as issue 12 found it (`--against <checkout of "
        "430b7a8>`): 1.26x (it was 1.0-1.1x: both trees ran the same fast path). What would move it further: "
        "`EventId` over each record's own text (split from the envelope) instead of its sorted-keys dump, ~3.5 us "
        "of ~20 us a record (the relay without `id_column` runs ~1.3x), which changes every Event Hub `EventId` "
        "(the README promises they are unchanged; not done).",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="50k events, fewer rounds; docs not rewritten")
    parser.add_argument("--big", action="store_true", help="big blob benchmark on a 1024 MB blob")
    parser.add_argument("--blob-mb", type=int, help="size of the big-blob benchmark's blob (default 64, quick 16)")
    parser.add_argument("--events", type=int, help="events for the CPU and upload paths (default 200,000)")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--docs", action=argparse.BooleanOptionalAction, default=None,
                        help="rewrite docs/benchmarks.md (default: yes, except with --quick or --only)")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(BENCHMARKS)
    unknown = only - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    events = args.events or (50_000 if args.quick else 200_000)
    blob_mb = args.blob_mb or (1024 if args.big else 16 if args.quick else 64)
    write_docs = args.docs if args.docs is not None else not (args.quick or args.only)

    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    results: dict[str, Any] = {"machine": machine(), "mode": mode, "events": events}
    if "cpu" in only:
        from bench import cpu_path

        results["cpu_path"] = cpu_path.run(events, repeat=2 if args.quick else 5, ablations=not args.quick)
    if "issue12" in only:
        from bench import issue12

        results["issue12"] = issue12.run(20_000 if args.quick else issue12.EVENTS, repeat=2 if args.quick else 5)
    if "wide" in only:
        from bench import wide_webhook

        results["wide_webhook"] = wide_webhook.run(2_000 if args.quick else wide_webhook.EVENTS,
                                                   repeat=2 if args.quick else 5)
    if "ehdiag" in only:
        from bench import eventhub_diagnostics

        results["eventhub_diagnostics"] = eventhub_diagnostics.run(
            8_000 if args.quick else eventhub_diagnostics.EVENTS, repeat=2 if args.quick else 5)
    if "upload" in only:
        from bench import upload_path

        results["upload_path"] = upload_path.run(
            events, concurrencies=[4] if args.quick else [4, 8, 16, 32], ingest_mode=True,
            slow_delay=None if args.quick else 0.2)
    if "http" in only:
        from bench import http_handler

        results["http_handler"] = http_handler.run(calls_small=100 if args.quick else 300,
                                                   calls_large=20 if args.quick else 60)
        from bench import http_memory

        results["http_memory"] = http_memory.run()
    if "blob" in only:
        results["big_blob"] = run_big_blob(blob_mb)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["load_average_at_end"] = load_average()
    results["notes"] = notes(results)
    print(report.console(results))
    # a part of the run (--only, --quick) keeps its numbers apart: latest.json stays the full run the docs come from
    partial = bool(args.only or args.quick)
    path = report.write_json(results, report.PARTIAL if partial else report.RESULTS)
    print(f"\nJSON: {path.relative_to(ROOT)}")
    if write_docs:
        print(f"docs: {report.write_docs(results).relative_to(ROOT)}")
    print(f"{results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
