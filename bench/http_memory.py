"""Benchmark 4b, HTTP handler memory: peak RSS of one webhook body at the size limit.

An NDJSON body is decoded a slice of lines at a time, a long JSON array a slice of bytes at
a time, and each slice normalized before the next is decoded; each request is gzipped once full
and its rows let go, so gzip bodies are what stays.
The baseline, same events, same run: the NDJSON decoded whole into one list of dicts first
(as the HTTP trigger did before), then processed.
Each size and shape runs in a fresh process (the peak is the process's own high-water mark, VmHWM): the body is written to a file first, the child reads it, warms the relay up
on a small body, then makes one call of the decorated ``http_ingest`` with an uploader
that accepts without sending, and reports its peak RSS against its RSS before the call.

    python -m bench.http_memory            # 25 MB (RELAY_MAX_BODY_BYTES) and 12.5 MB
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import OFFLINE_ENV, ROOT, peak_rss_mb, say


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


#: body shapes measured: the content type each is posted with; "decoded whole" is the baseline:
#: the same NDJSON decoded into one list first (decode_json_events), then Engine.run on it
SHAPES = {"ndjson": "application/x-ndjson", "json array": "application/json", "decoded whole": "baseline"}


def _child(path: str, content_type: str) -> None:
    """Run in a fresh process: one call with the body in ``path``; print one JSON line."""
    import azure.functions as func

    from bench.cpu_path import NullUploader
    from bench.http_handler import _user_function, body_of_size
    from shared.runtime import get_relay, reset_relay

    os.environ.update(OFFLINE_ENV)
    reset_relay()
    http_ingest = _user_function("http_ingest")
    relay = get_relay()
    relay.engine.dispatcher.uploader = NullUploader()

    def request(body: bytes) -> Any:
        return func.HttpRequest("POST", "http://localhost/api/ingest/applogs", body=body,
                                headers={"Content-Type": content_type}, route_params={"route": "applogs"})

    def decoded_whole(request: Any) -> Any:  # the baseline: every event a dict before the first is normalized
        from shared.records import items
        from shared.sources.jsontext import decode_json_events

        outcome = relay.engine.run(relay.config.http_route("applogs"), items(decode_json_events(request.get_body())))
        return func.HttpResponse(json.dumps(outcome.summary()), status_code=200)

    call = decoded_whole if content_type == SHAPES["decoded whole"] else http_ingest

    warm_up = body_of_size(4096)[0]
    if content_type == SHAPES["json array"]:
        warm_up = as_array(warm_up)
    call(request(warm_up))  # imports, compiled route, upload pool
    body = Path(path).read_bytes()
    before = _rss_mb()
    started = time.perf_counter()
    response = call(request(body))
    seconds = time.perf_counter() - started
    summary = json.loads(response.get_body())
    print(json.dumps({"status": response.status_code, "body_bytes": len(body), "accepted": summary.get("accepted"),
                      "seconds": round(seconds, 3), "rss_before_mb": round(before, 1),
                      "peak_rss_mb": round(peak_rss_mb(), 1)}))


def _body(size: int) -> bytes:
    """NDJSON of benchmark events up to ``size`` bytes (whole events)."""
    from bench.data import ndjson

    per_event = 424  # bench.data's events average 424 bytes as NDJSON
    body = ndjson(size // per_event + 100)
    return body[: body.rfind(b"\n", 0, size) + 1]


def as_array(ndjson_body: bytes) -> bytes:
    """The same events as one JSON array (one byte longer)."""
    return b"[" + ndjson_body.rstrip(b"\n").replace(b"\n", b",") + b"]"


def run(sizes_mb: tuple[float, ...] = (12.5, 25.0)) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-http-memory-") as folder:
        for size_mb in sizes_mb:
            body = _body(int(size_mb * 2**20))
            for shape, content_type in SHAPES.items():
                path = Path(folder) / f"body-{size_mb}-{shape.replace(' ', '-')}"
                path.write_bytes(body if shape == "ndjson" else as_array(body))
                key = f"{shape} {size_mb}"
                say(f"http memory: one {size_mb} MB {shape} body in a fresh process")
                done = subprocess.run([sys.executable, "-m", "bench.http_memory", "--child", str(path), content_type],
                                      cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
                lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
                if done.returncode != 0 or not lines:
                    results[key] = {"size_mb": size_mb, "shape": shape,
                                    "error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
                    continue
                measured = json.loads(lines[-1])
                measured["growth_mb"] = round(measured["peak_rss_mb"] - measured["rss_before_mb"], 1)
                results[key] = {"size_mb": size_mb, "shape": shape, **measured}
    return results


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        print(json.dumps(run(), indent=2))
