"""Large batches are normalized slice by slice with uploads overlapping: same requests, same Outcome.

The processor sends a request as soon as it is full instead of after the whole batch is
normalized; what is uploaded, parked, rejected and counted must not change.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import shared.pipeline as pipeline
from shared.config import Route, parse_config
from shared.pipeline import Processor
from shared.sink import UploadResult
from shared.sources.errors import DecodeError

ROOT = Path(__file__).resolve().parents[2]


def build_route(**keys: Any) -> Route:
    raw = {
        "name": "r1", "source": "http", "match": "r1", "endpoint": "https://relay.example.com",
        "dcr": "dcr-" + "0" * 32, "stream": "Custom-T", "time_field": "t", "extra": "Extra", "id_column": "Id",
        "columns": [{"name": "TimeGenerated", "type": "datetime"}, {"name": "N", "type": "int"},
                    {"name": "Msg", "type": "string"}, {"name": "Extra", "type": "dynamic"},
                    {"name": "Id", "type": "string"}],
        **keys,
    }
    return parse_config(yaml.safe_dump({"routes": [raw]}), {}, ROOT).routes[0]


class RecordingUploader:
    """Lands or refuses each request by a hash of its rows, so both runs get the same answers."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()

    def upload(self, endpoint: str, dcr: str, stream: str, gzipped_body: bytes, request_id: str) -> UploadResult:
        body = zlib.decompress(gzipped_body, wbits=31)
        with self._lock:
            self.bodies.append(body)
        verdict = hashlib.sha256(body).digest()[0] % 4
        if verdict == 0:
            return UploadResult(request_id, 1, status=503, failure="server_error", message="busy")
        if verdict == 1:
            return UploadResult(request_id, 1, status=400, failure="bad_request", permanent=True, message="no")
        return UploadResult(request_id, 1, status=204)


class RecordingParker:
    def __init__(self) -> None:
        self.parked: list[tuple[tuple[bytes, ...], str | None]] = []

    def park(self, route: Route, rows: Any, result: UploadResult, batch_id: str) -> None:
        if result.message == "busy" and len(rows) % 5 == 0:
            raise OSError("storage down")
        self.parked.append((tuple(rows), result.failure))


def run(route: Route, events: list[Any], limit: int, slice_events: int, context: Any = None,
        start_index: int = 7, arriving_in_slices: bool = False) -> tuple:
    uploader, parker = RecordingUploader(), RecordingParker()
    processor = Processor(uploader, limit, 3, parker)
    original = pipeline.STREAM_SLICE_EVENTS
    pipeline.STREAM_SLICE_EVENTS = slice_events
    try:
        if arriving_in_slices:
            slices = (events[first:first + slice_events] for first in range(0, len(events), slice_events))
            outcome = processor.process_slices(route, slices, batch_id="b", context=context)
        else:
            outcome = processor.process(route, events, batch_id="b", start_index=start_index, context=context)
    finally:
        pipeline.STREAM_SLICE_EVENTS = original
        processor.close()
    failures = [{k: v for k, v in f.items() if k != "request_id"} for f in outcome.failures]
    summary = {k: v for k, v in outcome.summary(max_reasons=10_000).items() if k != "failures"}
    return summary, failures, [(r.index, r.reason, r.event) for r in outcome.rejected], \
        sorted(uploader.bodies), parker.parked


events_strategy = st.lists(
    st.one_of(
        st.fixed_dictionaries({"t": st.sampled_from(["2024-05-01T10:00:00Z", "nope", 1714557601]),
                               "N": st.one_of(st.integers(-5, 5), st.just("x")),
                               "Msg": st.text(max_size=40),
                               "pad": st.integers(0, 2500).map(lambda n: "x" * n)}),
        st.just(7),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(events=events_strategy, limit=st.integers(300, 3000), slice_events=st.integers(1, 9))
def test_sliced_processing_sends_and_reports_what_one_pass_does(events, limit, slice_events):
    # GIVEN a batch, a request limit (some rows too large for it) and a small slice size
    route = build_route()
    # WHEN processed sliced, and in one pass (slice larger than the batch)
    sliced = run(route, events, limit, slice_events)
    whole = run(route, events, limit, 10**9)
    # THEN the uploaded bodies, parked rows, rejections, failures and counts are identical
    assert sliced == whole


def test_per_event_context_is_sliced_with_the_events():
    # GIVEN a route reading a header per event, and more events than a slice
    route = build_route(map={"Msg": "_http.headers.x-msg"})
    events = [{"t": "2024-05-01T10:00:00Z", "N": n} for n in range(10)]
    contexts = [{"_http": {"headers": {"x-msg": f"m{n}"}}} for n in range(10)]
    # WHEN processed in slices of 3 and in one pass THEN both agree
    assert run(route, events, 1000, 3, contexts) == run(route, events, 1000, 10**9, contexts)


def test_too_short_per_event_context_raises_before_anything_is_sent():
    # GIVEN fewer contexts than events
    route = build_route(map={"Msg": "_http.headers.x-msg"})
    uploader = RecordingUploader()
    processor = Processor(uploader, 1000, 2)
    original, pipeline.STREAM_SLICE_EVENTS = pipeline.STREAM_SLICE_EVENTS, 2
    try:
        # WHEN processed THEN the programming error surfaces and no request went out
        with pytest.raises(IndexError):
            processor.process(route, [{"N": n} for n in range(6)], context=[{}] * 3)
    finally:
        pipeline.STREAM_SLICE_EVENTS = original
        processor.close()
    assert uploader.bodies == []


@settings(max_examples=100, deadline=None)
@given(events=events_strategy, limit=st.integers(300, 3000), slice_events=st.integers(1, 9),
       auxiliary=st.booleans())
def test_events_arriving_in_slices_are_sent_and_reported_as_one_batch(events, limit, slice_events, auxiliary):
    # GIVEN a batch whose events arrive a few at a time (a webhook body decoded as it is read)
    route = build_route(auxiliary=True) if auxiliary else build_route()
    # WHEN processed as slices arrive, and as one list
    sliced = run(route, events, limit, slice_events, start_index=0, arriving_in_slices=True)
    whole = run(route, events, limit, 10**9, start_index=0)
    # THEN the uploaded bodies, parked rows, rejections (with the events of rows too large), failures
    # and counts are identical
    assert sliced == whole


def test_a_slice_that_fails_to_decode_leaves_nothing_sent():
    # GIVEN slices whose third raises, as a bad NDJSON line does
    route = build_route()
    uploader = RecordingUploader()
    processor = Processor(uploader, 1000, 2)

    def slices() -> Any:
        yield [{"t": "2024-05-01T10:00:00Z", "N": n} for n in range(50)]
        yield [{"t": "2024-05-01T10:00:00Z", "N": n} for n in range(50)]
        raise DecodeError("body line 101 is not valid JSON")

    # WHEN processed THEN the error reaches the caller and not one request went out
    try:
        with pytest.raises(DecodeError, match="line 101"):
            processor.process_slices(route, slices())
    finally:
        processor.close()
    assert uploader.bodies == []


def test_a_body_of_one_request_is_gzipped_and_sent_on_the_calling_thread():
    # GIVEN an uploader that notes the thread each upload runs on
    threads: list[str] = []

    class ThreadNoting(RecordingUploader):
        def upload(self, *args: Any) -> UploadResult:
            threads.append(threading.current_thread().name)
            return super().upload(*args)

    processor = Processor(ThreadNoting(), 1_000_000, 4)
    # WHEN a small body arrives in slices (one request's worth)
    try:
        outcome = processor.process_slices(build_route(), iter([[{"t": "2024-05-01T10:00:00Z", "N": 1}]]))
    finally:
        processor.close()
    # THEN it went out in one call made on this thread (no hop through the pool: webhook latency)
    assert outcome.requests == 1 and threads == [threading.current_thread().name]
