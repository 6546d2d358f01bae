"""Benchmark 2, upload path: the same rows into the emulator, relay vs the SDK's sequential upload.

The emulator runs in its own process (its Python must not share the GIL with the client
being measured) and every ingestion call is slowed by an injected 50 ms delay, standing in
for the service's round trip. Two modes:

* ``latency``: after the delay the emulator answers 204 without ingesting (fault with
  ``status=204``): the service is a pure 50 ms round trip, so this measures the clients.
* ``ingest``: after the delay the emulator parses, checks and stores every row (fault with
  ``delay`` only). The emulator handles one request at a time in Python, so this mode is
  bound by the emulator, not by the client; it shows that every row lands.

Contenders, same process, same data:

* relay - ``Engine.run`` with the real ``LogsIngestionSink`` from the decoded events
          (normalizes, packs, gzips and uploads with ``RELAY_UPLOAD_CONCURRENCY`` requests in flight);
* sdk   - ``LogsIngestionClient.upload`` of the relay's already-normalized rows (as dicts):
          the SDK's chunking (``json.dumps`` per record and per chunk, zlib 6), one request after
          another. Static token credential, ``connection_verify`` = the emulator's CA.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import RELAY_DCR, ROOT, TOKEN, emulator_env, load_route, say
from bench.data import ndjson
from bench.emulator_process import EmulatorProcess

DELAY = 0.05
TABLE = "AppLogs_CL"


def _relay_engine(env: dict[str, str], concurrency: int) -> Any:
    from shared.credentials import StaticTokenCredential
    from shared.dispatch import Dispatcher
    from shared.engine import Engine
    from shared.gctune import tune_for_batches
    from shared.settings import Settings
    from shared.sink import LogsIngestionSink

    settings = Settings.from_env({**env, "RELAY_UPLOAD_CONCURRENCY": str(concurrency)})  # pool sized alike
    sink = LogsIngestionSink(settings, lambda: StaticTokenCredential(TOKEN))
    tune_for_batches()  # the worker's GC thresholds (runtime.get_relay() sets them once per process)
    return Engine(Dispatcher(sink, concurrency=settings.upload_concurrency), settings.max_request_bytes), sink


def _sdk_client(emulator: EmulatorProcess) -> Any:
    from azure.monitor.ingestion import LogsIngestionClient

    from shared.credentials import StaticTokenCredential

    return LogsIngestionClient(emulator.endpoint, StaticTokenCredential(TOKEN),
                               connection_verify=str(emulator.ca_path))


def _time_relay(emulator: EmulatorProcess, env: dict[str, str], route: Any, events: list[Any],
                concurrency: int) -> dict[str, Any]:
    from shared.records import items

    engine, sink = _relay_engine(env, concurrency)
    try:
        engine.run(route, items(events[:50]), batch_id="warm-up")  # TLS session, token, compiled route
        emulator.reset()
        _fault(emulator)
        started = time.perf_counter()
        outcome = engine.run(route, items(events), batch_id="bench")
        seconds = time.perf_counter() - started
    finally:
        engine.close()
        sink.close()
    return {"seconds": round(seconds, 3), "requests": outcome.requests, "landed": outcome.landed,
            "failed": outcome.failed + outcome.parked, "rejected": outcome.rejected,
            "requests_per_s": round(outcome.requests / seconds, 1), "rows_per_s": round(len(events) / seconds),
            "concurrency": concurrency}


def _time_sdk(emulator: EmulatorProcess, route: Any, rows: list[dict]) -> dict[str, Any]:
    client = _sdk_client(emulator)
    failures: list[Any] = []
    try:
        client.upload(route.dcr, route.stream, rows[:50])  # warm-up: TLS session and token
        emulator.reset()
        _fault(emulator)
        started = time.perf_counter()
        client.upload(route.dcr, route.stream, rows, on_error=failures.append)
        seconds = time.perf_counter() - started
    finally:
        client.close()
    requests = len(emulator.requests())
    failed = sum(len(f.failed_logs) for f in failures)
    statuses = sorted({getattr(f.error, "status_code", None) or type(f.error).__name__ for f in failures}, key=str)
    return {"seconds": round(seconds, 3), "requests": requests, "landed": len(rows) - failed, "failed": failed,
            "failure_statuses": statuses, "requests_per_s": round(requests / seconds, 1),
            "rows_per_s": round(len(rows) / seconds)}


_mode = {"name": "latency", "delay": DELAY}


def _fault(emulator: EmulatorProcess) -> None:
    if _mode["name"] == "ingest":
        emulator.add_fault(delay=_mode["delay"], count=10**9)
    else:
        emulator.add_fault(delay=_mode["delay"], status=204, count=10**9)


class _SleepTransport:
    """An azure-core transport that answers 204 after ``delay`` seconds: the service as a pure round
    trip, without TLS and without the emulator's CPU on this machine (``transport`` mode)."""

    def __new__(cls, delay: float) -> Any:
        import requests
        from azure.core.pipeline.transport import RequestsTransport, RequestsTransportResponse

        class SleepTransport(RequestsTransport):
            def __init__(self) -> None:
                super().__init__()
                self.calls = 0
                self._lock = threading.Lock()

            def send(self, request: Any, **kwargs: Any) -> Any:
                body = request.data if request.data is not None else request.content
                if hasattr(body, "read"):
                    body.read()
                time.sleep(delay)
                with self._lock:
                    self.calls += 1
                response = requests.Response()
                response.status_code = 204
                response._content = b""
                return RequestsTransportResponse(request, response)

        return SleepTransport()


def _time_transport(route: Any, rows_route_: Any, events: list[Any], rows: list[dict], concurrency: int,
                    env: dict[str, str]) -> dict[str, Any]:
    """Relay (from events and from the rows) and SDK through the same fake 50 ms transport."""
    from azure.monitor.ingestion import LogsIngestionClient

    import shared.sink as sink_module
    from shared.credentials import StaticTokenCredential
    from shared.records import items as records_of

    out: dict[str, Any] = {}
    original = sink_module.upload_transport
    for key, which, items in (("relay", route, events), ("relay_rows", rows_route_, rows)):
        transport = _SleepTransport(DELAY)
        sink_module.upload_transport = lambda settings, ssl_context, transport=transport: transport
        try:
            say(f"upload path (transport, {key}): relay, concurrency {concurrency}")
            engine, sink = _relay_engine(env, concurrency)
            try:
                engine.run(which, records_of(items[:50]), batch_id="warm-up")
                started = time.perf_counter()
                outcome = engine.run(which, records_of(items), batch_id="bench")
                seconds = time.perf_counter() - started
            finally:
                engine.close()
                sink.close()
        finally:
            sink_module.upload_transport = original
        out[key] = {"seconds": round(seconds, 3), "requests": outcome.requests, "landed": outcome.landed,
                    "failed": outcome.failed + outcome.parked, "requests_per_s": round(outcome.requests / seconds, 1),
                    "concurrency": concurrency}
    say("upload path (transport): SDK upload (sequential)")
    transport = _SleepTransport(DELAY)
    client = LogsIngestionClient(route.endpoint, StaticTokenCredential(TOKEN), transport=transport)
    try:
        client.upload(route.dcr, route.stream, rows[:50])
        calls_before = transport.calls
        started = time.perf_counter()
        client.upload(route.dcr, route.stream, rows)
        seconds = time.perf_counter() - started
    finally:
        client.close()
    requests = transport.calls - calls_before
    out["sdk"] = {"seconds": round(seconds, 3), "requests": requests, "landed": len(rows), "failed": 0,
                  "requests_per_s": round(requests / seconds, 1)}
    out["speedup"] = round(seconds / out["relay"]["seconds"], 2)
    out["speedup_rows"] = round(seconds / out["relay_rows"]["seconds"], 2)
    return out


def rows_route(env: dict[str, str]) -> Any:
    """A pass-through route onto the same stream: the normalized rows go in as they are."""
    import yaml

    from shared.config import parse_config

    raw = {"name": "rows", "source": "http", "match": "rows", "endpoint": env["LOGS_INGESTION_ENDPOINT"],
           "dcr": env["DCR_IMMUTABLE_ID"], "stream": "Custom-AppLogs", "schema": "infra/dcr/relay.json"}
    return parse_config(yaml.safe_dump({"routes": [raw]}), env, ROOT).routes[0]


def _sweep(emulator: EmulatorProcess, env: dict[str, str], route: Any, events: list[Any], concurrencies: list[int],
           label: str) -> dict[str, Any]:
    timings = {}
    for concurrency in concurrencies:
        say(f"upload path ({label}): relay, concurrency {concurrency}")
        timings[str(concurrency)] = _time_relay(emulator, env, route, events, concurrency)
    return timings


def _ratios(entry: dict[str, Any], key: str, default_concurrency: int, suffix: str = "") -> None:
    relay = entry[key]
    entry["speedup" + suffix] = round(entry["sdk"]["seconds"] / relay[str(default_concurrency)]["seconds"], 2)
    best = min(relay.values(), key=lambda r: r["seconds"])
    entry["best_concurrency" + suffix] = best["concurrency"]
    entry["best_speedup" + suffix] = round(entry["sdk"]["seconds"] / best["seconds"], 2)


def run(events: int, concurrencies: list[int], ingest_mode: bool = True, slow_delay: float | None = None,
        transport_mode: bool = True) -> dict[str, Any]:
    from shared.normalize import Normalizer
    from shared.settings import Settings
    from shared.sources.http import decode_http_body

    say(f"upload path: generating {events:,} events, starting the emulator in its own process")
    body = ndjson(events)
    decoded = decode_http_body({"Content-Type": "application/x-ndjson"}, body, len(body) + 1).all_events()
    default_concurrency = Settings(config_path=Path("relay.yaml")).upload_concurrency
    sweep = sorted({default_concurrency, *concurrencies})
    results: dict[str, Any] = {"events": events, "delay_s": DELAY, "default_concurrency": default_concurrency}
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as state, \
            EmulatorProcess([RELAY_DCR], Path(state), TOKEN) as emulator:
        env = emulator_env(emulator)
        route = load_route("applogs", env)
        rows = [orjson.loads(row) for row in Normalizer(route).normalize(decoded).rows]
        results["rows"] = len(rows)

        _mode.update(name="latency", delay=DELAY)
        latency: dict[str, Any] = {
            "relay": _sweep(emulator, env, route, decoded, sweep, "50 ms, from events"),
            "relay_rows": _sweep(emulator, env, rows_route(env), rows, sweep, "50 ms, same rows"),
        }
        say("upload path (50 ms): SDK upload (sequential)")
        latency["sdk"] = _time_sdk(emulator, route, rows)
        _ratios(latency, "relay", default_concurrency)
        _ratios(latency, "relay_rows", default_concurrency, "_rows")
        results["latency"] = latency

        if ingest_mode:
            _mode.update(name="ingest", delay=DELAY)
            ingest: dict[str, Any] = {"relay": _sweep(emulator, env, route, decoded, [default_concurrency],
                                                      "ingest, from events")}
            ingest["relay"][str(default_concurrency)]["rows_in_table"] = emulator.count(TABLE)
            say("upload path (ingest): SDK upload (sequential)")
            ingest["sdk"] = _time_sdk(emulator, route, rows)
            ingest["sdk"]["rows_in_table"] = emulator.count(TABLE)
            _ratios(ingest, "relay", default_concurrency)
            results["ingest"] = ingest

        if transport_mode:
            results["transport"] = _time_transport(route, rows_route(env), decoded, rows, default_concurrency, env)

        if slow_delay:  # the relay alone against a slower service: how many calls in flight pay off
            _mode.update(name="latency", delay=slow_delay)
            results["latency_200ms"] = {"delay_s": slow_delay, "relay": _sweep(
                emulator, env, route, decoded, sweep, f"{slow_delay * 1000:.0f} ms, from events")}
    return results
