"""One timed run of the relay's trigger core with the code of a given checkout: the child of ``--against``.

``bench/eventhub_diagnostics.py --against DIR`` and ``bench/big_blob.py`` start this script as a file of
*this* checkout, with ``PYTHONPATH`` and the working directory set to the checkout under test, so that
``shared`` is that tree's code while the harness is the same for every contender:

    PYTHONPATH=DIR python -P bench/tree_child.py eventhub --batches FILE.json --routes FILE [--repeat N]
    PYTHONPATH=DIR python -P bench/tree_child.py http --bodies FILE.json --routes FILE [--repeat N]
    PYTHONPATH=DIR python -P bench/tree_child.py blob --name BLOB [--sink null|emulator] [--upload-latency-ms MS]

Why a file of its own, importing nothing from ``bench``: the checkout under test may be older than the
benchmark (commit 430b7a8, say, where issue 12 was filed), and its ``bench/`` lacks this code or has a
child mode of another shape; its ``shared`` API differs too. So this script reads only what both eras
have: ``shared.runtime.Relay``, ``shared.settings.Settings``, ``shared.config``,
``shared.eventhub_ingest.handle_eventhub``, ``shared.blob_ingest.handle_blob`` and ``shared.sink.UploadResult``.
The relay is built as that tree's worker builds it, with a null uploader: ``Engine(Dispatcher(...))``
where ``shared.engine`` exists (the redesigned core), else ``Processor(...)`` (the core before it); the
tree's GC tuning (``shared.gctune.tune_for_batches``) is applied where it exists, as its runtime does.
``-P`` keeps this script's folder (``bench/``) off ``sys.path``, so no module in it shadows another.

Each invocation prints one JSON line on stdout: seconds (each timed pass), CPU seconds, rows landed and
rejected, requests, peak RSS, and ``tree``, the checkout ``shared`` came from (the parent checks it).
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

CONTAINER = "ingest"


class NullUploader:
    """Accepts every request (optionally after a delay, like a real round trip); counts them."""

    def __init__(self, latency_ms: float = 0.0) -> None:
        self._latency = latency_ms / 1000.0
        self.requests = 0

    def upload(self, endpoint: str, dcr: str, stream: str, gzipped_body: bytes, request_id: str) -> Any:
        from shared.sink import UploadResult

        if self._latency:
            time.sleep(self._latency)
        self.requests += 1
        return UploadResult(request_id, 1, status=204)


@dataclass(slots=True)
class HubEvent:
    """The parts of ``azure.functions.EventHubEvent`` the relay reads, in every era of ``shared``."""

    body: bytes
    sequence_number: int
    offset: str
    enqueued_time: datetime
    partition_key: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def get_body(self) -> bytes:
        return self.body


def peak_rss_mb() -> float:
    """VmHWM of this process (``bench.common.peak_rss_mb``, restated: this script imports nothing from bench)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def shared_tree() -> str:
    """The checkout ``shared`` was imported from, for the parent to check (an editable install of another
    checkout in the virtualenv must not be what answers ``import shared``)."""
    import shared

    return str(Path(shared.__file__).resolve().parent.parent)


def tune_gc() -> None:
    """The tree's batch GC thresholds, where it has them (its worker sets them once per process)."""
    try:
        from shared.gctune import tune_for_batches
    except ImportError:
        return
    tune_for_batches()


def build_relay(settings: Any, config: Any, uploader: NullUploader) -> Any:
    """The tree's ``Relay`` on a null uploader: the redesigned core (``shared.engine``) or the one before it."""
    from shared.runtime import Relay

    fields = list(inspect.signature(Relay).parameters)
    if "engine" in fields:
        from shared.dispatch import Dispatcher
        from shared.engine import Engine

        core = Engine(Dispatcher(uploader, concurrency=settings.upload_concurrency), settings.max_request_bytes)
    else:  # 430b7a8 and before: Relay(settings, config, sink, processor)
        from shared.pipeline import Processor

        core = Processor(uploader, settings.max_request_bytes, settings.upload_concurrency)
    return Relay(settings, config, uploader, core)


def close(relay: Any) -> None:
    """Stop the upload threads (``relay.close()`` would also close the sink, which is the null uploader)."""
    (getattr(relay, "engine", None) or relay.processor).close()


def takes_encoded(relay: Any, source: str, key: str) -> bool:
    """Whether the route takes events still encoded (the typed path); False in a tree without one."""
    engine = getattr(relay, "engine", None)
    check = getattr(engine, "takes_encoded", None)
    return bool(check and check(relay.config.router(source, key)))


def eventhub(args: argparse.Namespace) -> dict[str, Any]:
    """``handle_eventhub`` over every batch: ``--warmup`` untimed passes, then ``--repeat`` timed ones."""
    from shared.config import parse_config
    from shared.eventhub_ingest import handle_eventhub
    from shared.settings import Settings

    with open(args.batches, encoding="utf-8") as file:
        posted = json.load(file)
    hub = posted["hub"]
    batches = [[HubEvent(event["body"].encode(), event["sequence_number"], event["offset"],
                         datetime.fromisoformat(event["enqueued_time"]), event["partition_key"], event["metadata"])
                 for event in batch] for batch in posted["batches"]]
    routes = Path(args.routes)
    settings = Settings(config_path=routes)
    config = parse_config(routes.read_text(encoding="utf-8"), {}, Path.cwd())
    uploader = NullUploader()
    relay = build_relay(settings, config, uploader)
    tune_gc()

    def one_pass() -> tuple[int, int, int]:
        landed = rejected = rows = 0
        for batch in batches:
            result = handle_eventhub(batch, lambda: relay, hub)
            landed, rejected, rows = landed + result.landed, rejected + result.rejected, rows + result.rows
        return landed, rejected, rows

    for _ in range(args.warmup):
        one_pass()
    runs, cpu = [], []
    for _ in range(args.repeat):
        uploader.requests = 0
        gc.collect()  # garbage of an earlier pass is not charged to this one
        started, cpu_started = time.perf_counter(), time.process_time()
        landed, rejected, rows = one_pass()
        runs.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    close(relay)
    return {"runs_s": runs, "best_s": min(runs), "median_s": statistics.median(runs), "cpu_s": cpu,
            "landed": landed, "rejected": rejected, "rows": rows, "requests": uploader.requests,
            "core": "engine" if hasattr(relay, "engine") else "processor", "peak_rss_mb": peak_rss_mb()}


def http(args: argparse.Namespace) -> dict[str, Any]:
    """What the HTTP trigger does per body (``decode_http_body`` + ``Engine.run``) over every body of ``--bodies``,
    on the one route of ``--routes``: ``--warmup`` untimed passes, then ``--repeat`` timed ones. Only trees with
    the redesigned core (``shared.engine``): the one before it had no encoded events to hand on."""
    from shared.config import parse_config
    from shared.settings import Settings
    from shared.sources.http import decode_http_body

    with open(args.bodies, encoding="utf-8") as file:
        bodies = [body.encode() for body in json.load(file)]
    routes = Path(args.routes)
    settings = Settings(config_path=routes)
    config = parse_config(routes.read_text(encoding="utf-8"), {}, Path.cwd())
    (route,) = config.routes
    uploader = NullUploader()
    relay = build_relay(settings, config, uploader)
    engine = relay.engine
    tune_gc()
    headers = {"Content-Type": "application/json"}
    context = {"_http": {"headers": {"content-type": "application/json"}}}

    def one_pass() -> tuple[int, int]:
        landed = rejected = 0
        for body in bodies:  # as http_ingest asks the engine, per body
            decoded = decode_http_body(headers, body, settings.max_body_bytes, encoded=engine.takes_encoded(route))
            result = engine.run(route, decoded.records(context), batch_id="bench")
            landed, rejected = landed + result.landed, rejected + result.rejected
        return landed, rejected

    for _ in range(args.warmup):
        one_pass()
    runs, cpu = [], []
    for _ in range(args.repeat):
        uploader.requests = 0
        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        landed, rejected = one_pass()
        runs.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    close(relay)
    return {"runs_s": runs, "best_s": min(runs), "median_s": statistics.median(runs), "cpu_s": cpu,
            "landed": landed, "rejected": rejected, "rows": landed, "requests": uploader.requests,
            "core": "engine", "peak_rss_mb": peak_rss_mb()}


def blob(args: argparse.Namespace) -> dict[str, Any]:
    """``handle_blob`` on one blob in Azurite (connection in ``BENCH_CONNECTION``), routes of ``RELAY_CONFIG``."""
    from azure.storage.blob import BlobClient

    import shared.blob_ingest as blob_ingest
    from shared.blob_ingest import BlobOptions, handle_blob
    from shared.config import load_config
    from shared.runtime import Relay
    from shared.settings import Settings

    env = dict(os.environ)
    tree = Path.cwd()
    client = BlobClient.from_connection_string(env["BENCH_CONNECTION"], CONTAINER, args.name)
    tune_gc()  # the worker's GC thresholds (its runtime sets them once per process)
    if args.sink == "emulator":
        relay = Relay.from_env(env)
    else:
        settings = Settings.from_env(env, tree)
        relay = build_relay(settings, load_config(settings.config_path, env, base=tree),
                            NullUploader(args.upload_latency_ms))
    store = blob_ingest.CheckpointStore.beside(client)
    before = peak_rss_mb()
    last = [time.monotonic()]

    def progress(number: int, chunk: Any) -> None:
        if time.monotonic() - last[0] > 15:
            last[0] = time.monotonic()
            print(f"    ... chunk {number}, peak RSS {peak_rss_mb():.0f} MB", file=sys.stderr, flush=True)

    started, cpu = time.perf_counter(), time.process_time()
    result = handle_blob(client, lambda: relay, BlobOptions(time_budget_seconds=24 * 3600, checkpoints=store,
                                                            on_chunk=progress))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    typed = takes_encoded(relay, "blob", f"{CONTAINER}/{args.name}")
    close(relay)
    return {"mode": "stream", "status": result.status, "rows": result.landed + result.rejected,
            "landed": result.landed, "rejected": result.rejected, "requests": result.requests,
            "chunks": result.chunks, "seconds": seconds, "cpu_seconds": cpu, "rss_before_mb": before,
            "peak_rss_mb": peak_rss_mb(), "typed": typed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/tree_child.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    hub = commands.add_parser("eventhub", help="handle_eventhub over pickled batches")
    hub.add_argument("--batches", required=True,
                     help='JSON {"hub": name, "batches": [[{"body": UTF-8 text, "sequence_number", ...}]]}')
    hub.add_argument("--routes", required=True, help="routes file (inline columns)")
    hub.add_argument("--repeat", type=int, default=1, help="timed passes")
    hub.add_argument("--warmup", type=int, default=1, help="untimed passes first")
    web = commands.add_parser("http", help="decode_http_body + Engine.run over JSON array bodies")
    web.add_argument("--bodies", required=True, help="JSON list of the bodies, each as UTF-8 text")
    web.add_argument("--routes", required=True, help="routes file with one route (inline columns)")
    web.add_argument("--repeat", type=int, default=1, help="timed passes")
    web.add_argument("--warmup", type=int, default=1, help="untimed passes first")
    stream = commands.add_parser("blob", help="handle_blob on one blob in Azurite")
    stream.add_argument("--name", required=True)
    stream.add_argument("--sink", choices=("null", "emulator"), default="null")
    stream.add_argument("--upload-latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    measured = {"eventhub": eventhub, "http": http, "blob": blob}[args.command](args)
    print(json.dumps({**measured, "tree": shared_tree()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
