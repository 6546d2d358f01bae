"""Benchmark of issue 12: webhook JSON arrays with ``+00:00`` times through the HTTP path, CPU only.

100,000 events shaped like
``{"id": "b-1", "kind": "acc", "count": 1, "score": 0.33, "ok": true, "payload": {"n": 1, "tags":
["a", "b"]}, "note": "note 1", "ts": "2026-12-03T04:20:53.123456+00:00"}`` (times as Python's
``isoformat`` writes them), posted as 5,000-event JSON arrays. Same bytes, same run:

* relay       - what the HTTP trigger does per body: ``decode_http_body`` then ``Engine.run`` with
                ``items(...)``, on a route with a ``map`` of 7 columns (one of them a dotted path),
                ``time_field: ts`` and ``extra``; an uploader that accepts every request unsent
                (ISA-L gzip still runs in the upload threads);
* sdk         - the SDK sample path: stdlib ``json.loads`` of each body, a dict -> columns map
                (rename only), the SDK's own ``_create_gzip_requests`` (under Python's default GC
                thresholds, as an SDK user's process has them);
* passthrough - ``orjson.loads`` + ``orjson.dumps`` + ISA-L gzip level 1, in as many requests as the
                relay sends, no per-field work;
* relay_default_gc - the relay under Python's default GC thresholds (what ``shared/gctune.py`` is worth).

The route's stream is declared here (inline ``columns:``), not in the shipped DCR.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml
from isal import igzip

from bench.common import (
    PYTHON_DEFAULT_GC,
    ROOT,
    against_lines,
    bench_main,
    contender_lines,
    in_turns,
    interleaved,
    load_average,
    ratio_line,
    say,
    with_gc_thresholds,
)

EVENTS = 100_000
BODY_EVENTS = 5_000
BASE = datetime(2026, 12, 3, 4, 20, 53, 123456, tzinfo=UTC)
KINDS = ("acc", "dec", "ack", "nak")
COLUMNS = {"TimeGenerated": "datetime", "Key": "string", "Kind": "string", "Count": "int", "Score": "real",
           "Ok": "boolean", "N": "long", "Note": "string", "Properties": "dynamic"}
MAP = {"Key": "id", "Kind": "kind", "Count": "count", "Score": "score", "Ok": "ok", "N": "payload.n", "Note": "note"}


def build_route() -> Any:
    """The benchmark's route: inline columns, 7 mapped columns, ``time_field: ts``, ``extra``."""
    from shared.config import parse_config

    raw = {"name": "issue12", "source": "http", "match": "issue12", "endpoint": "https://127.0.0.1:1",
           "dcr": "dcr-" + "0" * 32, "stream": "Custom-Issue12",
           "columns": [{"name": name, "type": kind} for name, kind in COLUMNS.items()],
           "map": MAP, "time_field": "ts", "extra": "Properties"}
    return parse_config(yaml.safe_dump({"routes": [raw]}), {}, ROOT).routes[0]


def events(count: int) -> list[dict[str, Any]]:
    return [{"id": f"b-{n}", "kind": KINDS[n % 4], "count": n, "score": round((n % 100) / 3, 2), "ok": n % 3 != 0,
             "payload": {"n": n, "tags": ["a", "b"][: 1 + n % 2]}, "note": f"note {n}",
             "ts": (BASE + timedelta(microseconds=n * 1_003)).isoformat()}
            for n in range(count)]


def bodies(count: int = EVENTS, per_body: int = BODY_EVENTS) -> list[bytes]:
    generated = events(count)
    return [orjson.dumps(generated[first:first + per_body]) for first in range(0, count, per_body)]


#: the issue's second workload: 10 MB bulk posts, each upload call taking 50 ms
BULK_BYTES = 10 << 20
BULK_CALL_SECONDS = 0.05


def run(count: int = EVENTS, repeat: int = 5, bulk_bodies: int = 2) -> dict[str, Any]:
    say(f"issue 12: {count:,} events as {BODY_EVENTS:,}-event JSON arrays")
    context = {"_http": {"headers": {"content-type": "application/json"}}}
    result = {**time_http_arrays("issue 12", build_route(), bodies(count), context, count, repeat),
              "body_events": BODY_EVENTS}
    if bulk_bodies:
        result["bulk"] = time_bulk_posts(build_route(), context, bulk_bodies, max(1, repeat // 2))
    return result


class SlowUploader:
    """Accepts every request after ``seconds`` (a service round trip), from as many threads as call it."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.requests = seconds, 0

    def upload(self, endpoint: str, dcr: str, stream: str, gzipped_body: bytes, request_id: str) -> Any:
        from shared.sink import UploadResult

        time.sleep(self.seconds)
        self.requests += 1
        return UploadResult(request_id, 1, status=204)


def time_bulk_posts(route: Any, context: Any, count: int, repeat: int) -> dict[str, Any]:
    """``count`` bodies of about 10 MB, each upload call taking 50 ms: the relay as the HTTP trigger runs
    (its upload pool, ``RELAY_UPLOAD_CONCURRENCY``) against the SDK sample path, whose ``upload()``
    sends its requests one after another (its chunks made by ``_create_gzip_requests``, each + 50 ms)."""
    from azure.monitor.ingestion._helpers import _create_gzip_requests

    from bench.cpu_path import dotted_mapper
    from shared.dispatch import Dispatcher
    from shared.engine import Engine
    from shared.settings import Settings
    from shared.sources.http import decode_http_body

    per_body = max(1, BULK_BYTES * 1000 // len(orjson.dumps(events(1000))))
    posted = bodies(per_body * count, per_body)
    say(f"issue 12 bulk: {count} bodies of {len(posted[0]) / 1e6:.1f} MB, {BULK_CALL_SECONDS * 1000:.0f} ms per call")
    settings = Settings(config_path=ROOT / "relay.yaml")
    uploader = SlowUploader(BULK_CALL_SECONDS)
    engine = Engine(Dispatcher(uploader, concurrency=settings.upload_concurrency), settings.max_request_bytes)
    headers = {"Content-Type": "application/json"}
    to_row = dotted_mapper(route)

    def relay() -> Any:
        landed = 0
        for body in posted:
            decoded = decode_http_body(headers, body, len(body) + 1, encoded=engine.takes_encoded(route))
            landed += engine.run(route, decoded.records(context), batch_id="bulk", hold=True).landed
        return landed

    def sdk() -> Any:
        sent = 0
        for body in posted:
            for _ in _create_gzip_requests(list(map(to_row, json.loads(body)))):
                time.sleep(BULK_CALL_SECONDS)
                sent += 1
        return sent

    timings, results = interleaved({"relay": relay, "sdk": with_gc_thresholds(PYTHON_DEFAULT_GC, sdk)}, repeat)
    engine.close()
    return {"bodies": count, "body_mb": round(len(posted[0]) / 1e6, 1), "events": per_body * count,
            "call_ms": BULK_CALL_SECONDS * 1000, "relay_s": round(timings["relay"].best, 3),
            "sdk_s": round(timings["sdk"].best, 3), "sdk_requests": results["sdk"], "relay_landed": results["relay"],
            "relay_vs_sdk": round(timings["sdk"].best / timings["relay"].best, 2)}


def time_http_arrays(label: str, route: Any, posted: list[bytes], context: Any, count: int,
                     repeat: int) -> dict[str, Any]:
    """The relay (what the HTTP trigger does per body), the SDK sample path (reading dotted paths too),
    the passthrough and the relay under default GC thresholds on the same JSON array bodies,
    interleaved: the fields every webhook-array benchmark reports."""
    import msgspec
    from azure.monitor.ingestion._helpers import _create_gzip_requests

    from bench.cpu_path import NullUploader, dotted_mapper, typed_decoder
    from shared.dispatch import Dispatcher
    from shared.engine import Engine
    from shared.gctune import tune_for_batches
    from shared.settings import Settings
    from shared.sources.http import decode_http_body

    headers = {"Content-Type": "application/json"}
    settings = Settings(config_path=ROOT / "relay.yaml")
    uploader = NullUploader()
    engine = Engine(Dispatcher(uploader, concurrency=settings.upload_concurrency), settings.max_request_bytes)
    limit = settings.max_body_bytes
    tune_for_batches()  # what the worker does once in runtime.get_relay()
    to_row = dotted_mapper(route)
    encoded = engine.takes_encoded(route)  # as http_ingest asks

    def relay() -> Any:
        uploader.requests = uploader.gzip_bytes = 0
        landed = rejected = 0
        for body in posted:
            decoded = decode_http_body(headers, body, limit, encoded=encoded)
            result = engine.run(route, decoded.records(context), batch_id="bench")
            landed, rejected = landed + result.landed, rejected + result.rejected
        return landed, rejected, uploader.requests

    def sdk() -> Any:
        return [gzipped for body in posted for gzipped, _ in _create_gzip_requests(list(map(to_row, json.loads(body))))]

    landed, rejected, requests = relay()
    per_request = max(1, -(-count // max(requests, 1)))

    def passthrough() -> Any:
        out = []
        for body in posted:
            decoded = orjson.loads(body)
            out += [igzip.compress(orjson.dumps(decoded[first:first + per_request]), 1)
                    for first in range(0, len(decoded), per_request)]
        return out

    floor_decoder = msgspec.json.Decoder(list[typed_decoder(route).type])  # the keys the route reads, as they are

    def typed_floor() -> Any:  # the fastest a typed relay could be: its decode and encode, no per-field work
        out = []
        for body in posted:
            decoded = floor_decoder.decode(body)
            out += [igzip.compress(msgspec.json.encode(decoded[first:first + per_request]), 1)
                    for first in range(0, len(decoded), per_request)]
        return out

    say(f"{label}: timing relay, sdk, passthrough, typed floor ({repeat} rounds)")
    timings, results = interleaved({"relay": relay, "sdk": with_gc_thresholds(PYTHON_DEFAULT_GC, sdk),
                                    "passthrough": passthrough, "typed_floor": typed_floor,
                                    "relay_default_gc": with_gc_thresholds(PYTHON_DEFAULT_GC, relay)}, repeat)
    engine.close()
    rates = {name: count / timing.best for name, timing in timings.items()}
    landed, rejected, requests = results["relay"]
    rates_gc = rates.get("relay_default_gc")
    input_bytes = sum(map(len, posted))
    return {
        "events": count, "bodies": len(posted), "input_bytes": input_bytes,
        "bytes_per_event": round(input_bytes / count, 1), "repeat": repeat, "typed_path": bool(encoded),
        **{name: {**timings[name].as_dict(), "rows_per_s": round(rates[name])} for name in timings},
        "relay_landed": landed, "relay_rejected": rejected, "relay_requests": requests,
        "sdk_requests": len(results["sdk"]), "passthrough_requests": len(results["passthrough"]),
        "relay_vs_sdk": round(rates["relay"] / rates["sdk"], 2),
        "relay_vs_passthrough": round(rates["relay"] / rates["passthrough"], 3),
        "relay_vs_typed_floor": round(rates["relay"] / rates["typed_floor"], 3),
        "relay_vs_default_gc": round(rates["relay"] / rates_gc, 3) if rates_gc else None,
    }


def lines(result: dict[str, Any]) -> list[str]:
    rows = [f"{result['events']:,} events of {result['bytes_per_event']} bytes as {result['body_events']:,}-event "
            f"JSON arrays, best of {result['repeat']} interleaved runs:", ""]
    rows += contender_lines(result, (
        ("relay", "relay: decode_http_body + Engine.run (typed path, ISA-L gzip)"),
        ("sdk", "SDK sample path: json.loads + map + _create_gzip_requests"),
        ("passthrough", "passthrough: orjson.loads + orjson.dumps + ISA-L gzip"),
        *((("typed_floor", "typed floor: msgspec decode of the keys the route reads + msgspec encode + ISA-L "
                            "gzip, no per-field work"),) if "typed_floor" in result else ()),
        ("relay_default_gc", "ablation: relay under Python's default GC thresholds")))
    rows += ["", ratio_line(result, f"{result['relay_requests']} requests")]
    if "relay_vs_typed_floor" in result:
        rows[-1] += (f"; relay / typed floor = {result['relay_vs_typed_floor'] * 100:.1f}% (no typed relay that "
                     f"converts times, keeps `extra` and checks values can pass the floor)")
    bulk = result.get("bulk")
    if bulk:
        rows += ["", f"Bulk posts: {bulk['bodies']} bodies of {bulk['body_mb']} MB ({bulk['events']:,} events), "
                     f"{bulk['call_ms']:.0f} ms per upload call: relay {bulk['relay_s']:.2f} s (upload pool), SDK "
                     f"sample path {bulk['sdk_s']:.2f} s ({bulk['sdk_requests']} requests one after another): "
                     f"**relay / SDK = {bulk['relay_vs_sdk']:.2f}x**"]
    return rows


def against(tree: Path, count: int = EVENTS, repeat: int = 5) -> list[str]:
    """``--against DIR``: the relay of this checkout and of ``tree`` (a tree with the redesigned core,
    ``shared.engine``) on the same 5,000-event bodies, in turns, a child process per round and tree."""
    say(f"issue 12 --against: {count:,} events as {BODY_EVENTS:,}-event JSON arrays; {repeat} rounds of this "
        f"checkout and {tree}")
    load = load_average()
    route = build_route()
    raw = {"name": route.name, "source": "http", "match": "issue12", "endpoint": "https://127.0.0.1:1",
           "dcr": route.dcr, "stream": route.stream, "columns": [{"name": n, "type": t} for n, t in COLUMNS.items()],
           "map": MAP, "time_field": "ts", "extra": "Properties"}
    with tempfile.TemporaryDirectory(prefix="bench-issue12-against-") as name:
        folder = Path(name)
        (folder / "bodies.json").write_text(json.dumps([body.decode() for body in bodies(count)]), encoding="utf-8")
        (folder / "routes.yaml").write_text(yaml.safe_dump({"routes": [raw]}), encoding="utf-8")
        trees, runs = in_turns(tree, repeat, count, ["http", "--bodies", str(folder / "bodies.json"),
                                                     "--routes", str(folder / "routes.yaml"), "--repeat", "3"])
    return against_lines(f"{count:,} events of the issue-12 shape as {BODY_EVENTS:,}-event JSON arrays, relay "
                         "(decode_http_body + Engine.run, null uploader) of each checkout in turns, "
                         f"{repeat} rounds (a child per round and tree: one untimed pass, best of three timed; "
                         f"load average at start {load}):", trees, runs, count)


if __name__ == "__main__":
    bench_main(__doc__ + "\n--against DIR: this checkout against DIR's core (one with shared.engine), in turns.",
               EVENTS, run, lines, against)
