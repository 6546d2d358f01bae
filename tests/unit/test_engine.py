"""The engine: large batches are normalized a chunk at a time with uploads overlapping, bodies that
arrive in slices are held until they decode, and what is sent and counted never depends on either.

The engine sends a request as soon as it is full instead of after the whole batch is
normalized; what is uploaded, parked, rejected and counted must not change.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import Route, parse_config
from shared.dispatch import Dispatcher
from shared.engine import Chunking, ChunkReport, Engine
from shared.records import Encoded, Item, Record, Rejection, item_slices, items
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
        self.parked.append((tuple(row.body for row in rows), result.failure))


def engine_of(uploader: Any, limit: int, parker: Any = None, concurrency: int = 3) -> Engine:
    return Engine(Dispatcher(uploader, parker, concurrency), limit)


def run(route: Route, events: list[Any], limit: int, slice_events: int, context: Any = None,
        first: int = 7, arriving_in_slices: bool = False) -> tuple:
    uploader, parker = RecordingUploader(), RecordingParker()
    engine = engine_of(uploader, limit, parker)
    try:
        if arriving_in_slices:
            slices = (events[start:start + slice_events] for start in range(0, len(events), slice_events))
            result = engine.run(route, item_slices(slices, context), batch_id="b", hold=True,
                                chunking=Chunking(rows=slice_events))
        else:
            contexts = context if isinstance(context, list) else [context] * len(events)
            records = [Record(Item(first + n), event, contexts[n]) for n, event in enumerate(events)]
            result = engine.run(route, records, batch_id="b", chunking=Chunking(rows=slice_events))
    finally:
        engine.close()
    failures = sorted(({k: v for k, v in f.items() if k != "request_id"} for f in result.failures), key=repr)
    summary = {k: v for k, v in result.summary(max_reasons=10_000).items() if k not in ("failures", "rejections")}
    return summary, failures, sorted(result.rejections, key=lambda r: r["index"]), \
        sorted(uploader.bodies), sorted(parker.parked)


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


@settings(max_examples=100, deadline=None)
@given(events=events_strategy, limit=st.integers(300, 3000), slice_events=st.integers(1, 9),
       auxiliary=st.booleans())
def test_events_arriving_in_slices_are_sent_and_reported_as_one_batch(events, limit, slice_events, auxiliary):
    # GIVEN a batch whose events arrive a few at a time (a webhook body decoded as it is read)
    route = build_route(auxiliary=True) if auxiliary else build_route()
    # WHEN processed as slices arrive, and as one list
    sliced = run(route, events, limit, slice_events, first=0, arriving_in_slices=True)
    whole = run(route, events, limit, 10**9, first=0)
    # THEN the uploaded bodies, parked rows, rejections (with the events of rows too large), failures
    # and counts are identical
    assert sliced == whole


def test_each_decoded_slice_is_normalized_as_a_chunk_of_its_own_right_after_it_is_decoded(monkeypatch):
    # GIVEN events a source decodes 4 at a time (an NDJSON body's slices), room for 10 in a chunk, and a note of how
    # many slices were decoded when each chunk is normalized
    route = build_route()
    engine = engine_of(RecordingUploader(), 1000, concurrency=1)
    decoded: list[int] = []
    normalized: list[tuple[int, int]] = []
    normalize = Engine.normalize

    def noting(self: Engine, lane: Any, records: Any, chunk: Any) -> Any:
        normalized.append((len(records), len(decoded)))
        return normalize(self, lane, records, chunk)

    def slices() -> Any:
        for first in range(0, 10, 4):
            decoded.append(first)
            yield [{"t": "2024-05-01T10:00:00Z", "N": n} for n in range(first, min(first + 4, 10))]

    monkeypatch.setattr(Engine, "normalize", noting)
    # WHEN the engine runs on them
    try:
        result = engine.run(route, item_slices(slices()), chunking=Chunking(rows=10))
    finally:
        engine.close()
    # THEN a slice is not merged with the next one (whose decoding would push its events out of the CPU's caches):
    # each is a chunk, normalized before the next slice is decoded
    assert normalized == [(4, 1), (4, 2), (2, 3)] and result.received == 10


def test_a_slice_that_fails_to_decode_leaves_nothing_sent():
    # GIVEN slices whose third raises, as a bad NDJSON line does
    route = build_route()
    uploader = RecordingUploader()
    engine = engine_of(uploader, 1000, concurrency=2)

    def slices() -> Any:
        yield [{"t": "2024-05-01T10:00:00Z", "N": n} for n in range(50)]
        yield [{"t": "2024-05-01T10:00:00Z", "N": n} for n in range(50)]
        raise DecodeError("body line 101 is not valid JSON")

    # WHEN processed THEN the error reaches the caller and not one request went out
    try:
        with pytest.raises(DecodeError, match="line 101"):
            engine.run(route, item_slices(slices()), hold=True)
    finally:
        engine.close()
    assert uploader.bodies == []


def test_a_body_of_one_request_is_gzipped_and_sent_on_the_calling_thread():
    # GIVEN an uploader that notes the thread each upload runs on
    threads: list[str] = []

    class ThreadNoting(RecordingUploader):
        def upload(self, *args: Any) -> UploadResult:
            threads.append(threading.current_thread().name)
            return super().upload(*args)

    engine = engine_of(ThreadNoting(), 1_000_000, concurrency=4)
    # WHEN a small body arrives in slices (one request's worth)
    try:
        outcome = engine.run(build_route(), item_slices(iter([[{"t": "2024-05-01T10:00:00Z", "N": 1}]])), hold=True)
    finally:
        engine.close()
    # THEN it went out in one call made on this thread (no hop through the pool: webhook latency)
    assert outcome.requests == 1 and threads == [threading.current_thread().name]


def test_received_is_landed_plus_rejected_plus_parked_plus_deadlettered_plus_failed():
    # GIVEN source rejections, bad events, a row too large, and requests landed, parked, dead-lettered and lost
    class Unsafe(RecordingParker):
        def park(self, route: Route, rows: Any, result: UploadResult, batch_id: str) -> None:
            if len(rows) == 1:
                raise OSError("storage down")
            super().park(route, rows, result, batch_id)

    engine = engine_of(RecordingUploader(), 600, Unsafe())
    records: list[Any] = [Record(Item(n), {"t": "2024-05-01T10:00:00Z", "N": n, "Msg": "m" * (n % 7) * 20})
                          for n in range(60)]
    records += [Rejection(Item(60), "not valid JSON"), Record(Item(61), {"N": "x"}),
                Record(Item(62), {"Msg": "y" * 700})]
    # WHEN run
    try:
        result = engine.run(build_route(), records, chunking=Chunking(rows=7))
    finally:
        engine.close()
    # THEN every record is counted once, in exactly one outcome
    assert result.received == 63 and result.rejected == 3
    assert result.received == (result.landed + result.rejected + result.parked + result.deadlettered
                               + result.failed)
    assert {r["index"] for r in result.rejections} == {60, 61, 62}


def test_chunk_reports_come_once_per_chunk_with_the_refs_they_span():
    # GIVEN 10 records and chunks of 4
    reports: list[ChunkReport] = []
    engine = engine_of(RecordingUploader(), 1_000_000)
    try:
        result = engine.run(build_route(), items([{"t": "2024-05-01T10:00:00Z", "N": n} for n in range(10)]),
                            chunking=Chunking(rows=4), on_chunk=reports.append)
    finally:
        engine.close()
    # THEN three chunks are reported, each spanning its refs, and their counts add up to the result's
    assert sorted((r.number, r.first.index, r.last.index, r.records) for r in reports) == [
        (1, 0, 3, 4), (2, 4, 7, 4), (3, 8, 9, 2)]
    assert sum(r.landed + r.parked + r.deadlettered + r.failed + r.rejected for r in reports) == result.received


class LandingUploader:
    """Lands every request and keeps its rows."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []
        self._lock = threading.Lock()

    def upload(self, endpoint: str, dcr: str, stream: str, gzipped_body: bytes, request_id: str) -> UploadResult:
        rows = orjson.loads(zlib.decompress(gzipped_body, wbits=31))
        with self._lock:
            self.requests.append(rows)
        return UploadResult(request_id, 1, status=204)


@pytest.mark.parametrize("encoded", [False, True], ids=["records", "typed path"])
def test_an_auxiliary_routes_requests_each_span_less_than_30_minutes_of_timegenerated(encoded):
    # GIVEN an auxiliary route (the service refuses a call whose rows span 30 minutes or more) and events an hour
    # apart and ten minutes apart, in no time order, arriving as records or still encoded (the route's typed path)
    route = build_route(auxiliary=True, id_column=None,
                        columns=[{"name": "TimeGenerated", "type": "datetime"}, {"name": "N", "type": "int"},
                                 {"name": "Extra", "type": "dynamic"}])
    minutes = [0, 60, 10, 70, 20, 120, 5]
    events = [{"t": f"2024-05-01T{10 + m // 60:02d}:{m % 60:02d}:00Z", "N": n} for n, m in enumerate(minutes)]
    uploader = LandingUploader()
    engine = engine_of(uploader, 1000)
    try:
        if encoded:
            assert engine.takes_encoded(route) is not None
            posted = Encoded([orjson.dumps(event) for event in events])
            result = engine.run(route, [posted], batch_id="b")
        else:
            result = engine.run(route, [Record(Item(n), event) for n, event in enumerate(events)], batch_id="b")
    finally:
        engine.close()
    # WHEN the rows are packed THEN every row lands, in requests that each span less than 30 minutes
    assert result.landed == len(events)
    spans = [sorted(row["N"] for row in rows) for rows in uploader.requests]
    assert sorted(spans) == [[0, 2, 4, 6], [1, 3], [5]]
