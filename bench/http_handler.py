"""Benchmark 4, HTTP handler: latency of the decorated HTTP function for small and large bodies.

The function ``http_ingest`` of ``function_app.py`` is called directly with a real
``azure.functions.HttpRequest`` (as ``tests/e2e`` do), with the relay built from app
settings that point at the emulator (own process, HTTPS, every row parsed and stored).
Sinks:

* ``emulator`` - the real SDK sink over HTTPS into the emulator: what a sender waits for
  locally (the emulator's own parsing and SQLite writes are part of it);
* ``null``     - the same handler with an uploader that accepts without sending: the
  relay's own share of the latency (decode, normalize, pack, gzip, answer).

Bodies are NDJSON ``applogs`` events of the benchmark generator, cut to about 1 KB and
256 KB.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import RELAY_DCR, TOKEN, emulator_env, percentile, say
from bench.cpu_path import NullUploader
from bench.data import events as generate_events
from bench.emulator_process import EmulatorProcess

SIZES = {"1KB": 1024, "256KB": 256 * 1024}


def body_of_size(size: int, seed: int = 11) -> tuple[bytes, int]:
    """NDJSON of whole events, as many as fit in ``size`` bytes (at least one)."""
    lines: list[bytes] = []
    total = 0
    for event in generate_events(size // 100 + 10, seed):
        line = orjson.dumps(event) + b"\n"
        if lines and total + len(line) > size:
            break
        lines.append(line)
        total += len(line)
    return b"".join(lines), len(lines)


def _user_function(name: str) -> Any:
    import function_app

    function_app.app.functions_bindings = None
    for function in function_app.app.get_functions():
        if function.get_function_name() == name:
            return function.get_user_function()
    raise LookupError(name)


def _measure(call: Any, request: Any, calls: int, warm_up: int = 5) -> tuple[list[float], int]:
    for _ in range(warm_up):
        call(request)
    latencies: list[float] = []
    accepted = 0
    for _ in range(calls):
        started = time.perf_counter()
        response = call(request)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP function answered {response.status_code}: {response.get_body()[:300]!r}")
        accepted += int(orjson.loads(response.get_body())["accepted"])
    return latencies, accepted


def run(calls_small: int, calls_large: int) -> dict[str, Any]:
    import azure.functions as func

    from shared.runtime import get_relay, reset_relay

    say("http handler: starting the emulator in its own process")
    results: dict[str, Any] = {}
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as state, \
            EmulatorProcess([RELAY_DCR], Path(state), TOKEN) as emulator:
        try:
            for key in [k for k in os.environ if k.startswith(("RELAY_", "RelayStorage"))]:
                del os.environ[key]
            os.environ.update(emulator_env(emulator))
            reset_relay()
            call = _user_function("http_ingest")
            for sink in ("emulator", "null"):
                if sink == "null":
                    get_relay().engine.dispatcher.uploader = NullUploader()  # the relay's own share only
                for label, size in SIZES.items():
                    body, rows = body_of_size(size)
                    request = func.HttpRequest(
                        "POST", "http://localhost/api/ingest/applogs", body=body,
                        headers={"Content-Type": "application/x-ndjson"}, route_params={"route": "applogs"})
                    calls = calls_small if size <= 4096 else calls_large
                    say(f"http handler: {sink} sink, {label} body ({rows} events) x {calls}")
                    latencies, accepted = _measure(call, request, calls)
                    results[f"{sink}:{label}"] = {
                        "sink": sink, "body": label, "body_bytes": len(body), "events": rows, "calls": calls,
                        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
                        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
                        "mean_ms": round(sum(latencies) / len(latencies) * 1000, 2),
                        "rows_per_s": round(accepted / sum(latencies)),
                    }
        finally:
            reset_relay()
            os.environ.clear()
            os.environ.update(saved)
    return results
