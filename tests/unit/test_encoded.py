"""Events that stay encoded until their route decodes them: how the engine takes them.

A source hands the engine ``Encoded`` events (the bytes of each, split in C) when it can: a
plain JSON body, NDJSON slices. A single route with a typed path
decodes them straight into its columns; a router, or a route without one, gets them as records.
Either way refs, counts and chunk reports are those of the records they stand for.
"""

from __future__ import annotations

import zlib
from functools import partial
from typing import Any

import orjson
import yaml

from shared.config import parse_config
from shared.dispatch import Dispatcher
from shared.engine import Chunking, Engine
from shared.records import Encoded, Item
from shared.sink import UploadResult
from shared.sources.eventhub import EventRef
from shared.sources.http import encoded_events
from tests.unit.test_plan_equivalence import ROOT


class LandingUploader:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def upload(self, endpoint: str, dcr: str, stream: str, gzipped_body: bytes, request_id: str) -> UploadResult:
        self.rows += [dict(row, _stream=stream) for row in orjson.loads(zlib.decompress(gzipped_body, wbits=31))]
        return UploadResult(request_id, 1, status=204)


def config(*routes: dict[str, Any]) -> Any:
    base = {"source": "eventhub", "match": "*", "endpoint": "https://relay.example.com", "dcr": "dcr-" + "0" * 32,
            "columns": [{"name": "TimeGenerated", "type": "datetime"}, {"name": "Category", "type": "string"},
                        {"name": "DurationMs", "type": "long"}, {"name": "Properties", "type": "dynamic"}],
            "time_field": "time", "map": {"Category": "category", "DurationMs": "durationMs"}, "extra": "Properties"}
    return parse_config(yaml.safe_dump({"routes": [{**base, **route} for route in routes]}), {}, ROOT)


def envelope(count: int, bad: int | None = None) -> bytes:
    records = [{"time": "2024-05-01T10:00:00Z", "category": "Audit" if n % 2 else "Sign", "durationMs": n,
                "properties": {"n": n}} for n in range(count)]
    if bad is not None:
        records[bad]["durationMs"] = "slow"
    return orjson.dumps({"records": records})


def test_encoded_events_land_on_a_typed_route_with_the_refs_their_source_gives():
    # GIVEN a route with a typed path and 12 encoded records named as Event Hub records, one with a bad duration
    route = config({"name": "diag", "stream": "Custom-A"}).routes[0]
    raws = encoded_events(orjson.dumps(orjson.loads(envelope(12, bad=7))["records"]))
    encoded = Encoded(raws, None, 0, partial(EventRef, "4", 900, "8192"))
    uploader = LandingUploader()
    engine = Engine(Dispatcher(uploader, concurrency=1), 1 << 20)
    assert engine.normalizer(route).typed is not None
    # WHEN the engine runs it
    result = engine.run(route, [encoded], batch_id="b")
    # THEN 11 rows land and the bad record is named by partition, sequence and its place in the envelope
    assert (result.received, result.landed, result.rejected) == (12, 11, 1)
    assert result.rejections == [{"partition_id": "4", "sequence_number": 900, "offset": "8192", "record": 7,
                                  "reason": "partition 4 sequence 900 record 7: column 'DurationMs' (long): 'slow' "
                                            "is not a 64-bit long"}]
    assert [row["DurationMs"] for row in uploader.rows] == [n for n in range(12) if n != 7]
    assert uploader.rows[0]["Properties"] == {"properties": {"n": 0}}


def test_a_router_gets_the_records_of_encoded_events_and_routes_each():
    # GIVEN two routes splitting records by category, and a JSON array body
    routes = config({"name": "audit", "stream": "Custom-A", "where": {"category": "Audit"}},
                    {"name": "rest", "stream": "Custom-B"})
    router = routes.router("eventhub", "hub")
    body = orjson.dumps(orjson.loads(envelope(6))["records"])
    uploader = LandingUploader()
    engine = Engine(Dispatcher(uploader, concurrency=1), 1 << 20)
    # WHEN the engine runs the body's encoded events
    result = engine.run(router, [Encoded(encoded_events(body), None)], batch_id="b")
    # THEN each record went to its route, counted per route
    assert (result.received, result.landed) == (6, 6)
    assert {name: part.landed for name, part in result.routes.items()} == {"audit": 3, "rest": 3}
    assert sorted((row["_stream"], row["DurationMs"]) for row in uploader.rows) == [
        ("Custom-A", 1), ("Custom-A", 3), ("Custom-A", 5), ("Custom-B", 0), ("Custom-B", 2), ("Custom-B", 4)]


def test_encoded_events_are_chunked_and_reported_like_records():
    # GIVEN 25 encoded events, chunks of 10 rows and a chunk hook
    route = config({"name": "diag", "stream": "Custom-A"}).routes[0]
    body = orjson.dumps(orjson.loads(envelope(25))["records"])
    reports = []
    engine = Engine(Dispatcher(LandingUploader(), concurrency=1), 1 << 20)
    # WHEN the engine runs them
    result = engine.run(route, [Encoded(encoded_events(body), None)], batch_id="b", chunking=Chunking(rows=10),
                        on_chunk=reports.append)
    # THEN three chunks went, each reporting the refs it spans and its rows
    assert result.landed == 25
    assert [(r.first, r.last, r.records, r.landed) for r in sorted(reports, key=lambda r: r.number)] == [
        (Item(0), Item(9), 10, 10), (Item(10), Item(19), 10, 10), (Item(20), Item(24), 5, 5)]


def test_an_encoded_event_json_cannot_carry_is_rejected_naming_its_field_when_made_a_record():
    # GIVEN encoded events for a router (so they become records), one holding a number beyond double range
    routes = config({"name": "audit", "stream": "Custom-A", "where": {"category": "Audit"}},
                    {"name": "rest", "stream": "Custom-B"})
    body = b'[{"category": "Audit", "durationMs": 1}, {"category": "Sign", "durationMs": 1e400}]'
    engine = Engine(Dispatcher(LandingUploader(), concurrency=1), 1 << 20)
    # WHEN the engine runs them
    result = engine.run(routes.router("eventhub", "hub"), [Encoded(encoded_events(body), None)], batch_id="b")
    # THEN the good one lands and the other is rejected at its index, naming the field, as a body read whole says
    assert (result.received, result.landed, result.rejected) == (2, 1, 1)
    assert result.rejections == [{"index": 1, "reason": "field 'durationMs' holds 1e400, a number beyond double range"}]


def test_an_encoded_event_holding_bytes_that_are_not_utf8_is_rejected_on_its_own_and_never_sent():
    # GIVEN a typed route and encoded events, one holding bytes that are not UTF-8 in a field the route keeps
    # raw (extra): msgspec does not look inside raw values, and the service would refuse the whole request
    route = config({"name": "diag", "stream": "Custom-A"}).routes[0]
    raws = [b'{"category": "Audit", "durationMs": 1}', b'{"category": "Sign", "note": "caf\xe9"}',
            b'{"category": "Sign", "durationMs": 3}']
    uploader = LandingUploader()
    engine = Engine(Dispatcher(uploader, concurrency=1), 1 << 20)
    # WHEN the engine runs them
    result = engine.run(route, [Encoded(raws, None)], batch_id="b")
    # THEN the other two land, and that one is rejected at its index, saying why (nothing raised)
    assert (result.received, result.landed, result.rejected) == (3, 2, 1)
    assert result.rejections == [
        {"index": 1, "reason": "not valid JSON at column 1: str is not valid UTF-8: surrogates not allowed"}]
    assert [row["DurationMs"] for row in uploader.rows] == [1, 3]


def test_an_encoded_event_nested_deeper_than_msgspec_goes_takes_the_general_path():
    # GIVEN a typed route and an encoded event nesting a value 1,010 levels deep (orjson reads it)
    route = config({"name": "diag", "stream": "Custom-A"}).routes[0]
    deep = b'{"category": "Deep", "v": ' + b"[" * 1010 + b"]" * 1010 + b"}"
    engine = Engine(Dispatcher(LandingUploader(), concurrency=1), 1 << 20)
    # WHEN the engine runs it with a good one
    result = engine.run(route, [Encoded([b'{"category": "Ok"}', deep], None)], batch_id="b")
    # THEN nothing raised: the good one lands and the deep one gets the general path's answer
    assert (result.received, result.landed, result.rejected) == (2, 1, 1)
    assert result.rejections == [{"index": 1, "reason": "cannot be encoded as JSON: Recursion limit reached"}]


def test_a_webhook_body_nested_deeper_than_msgspec_splits_is_read_whole_instead_of_raising():
    from shared.sources.http import decode_http_body

    # GIVEN a JSON array and an NDJSON body whose one event holds a value nested 1,000 levels deep
    deep = b'{"category": "Audit", "d": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    for content_type, body in (("application/json", b"[" + deep + b"]"), ("application/x-ndjson", deep + b"\n")):
        # WHEN the HTTP source splits it for a route that decodes encoded events
        decoded = decode_http_body({"Content-Type": content_type}, body, 1 << 20, encoded=True)
        # THEN it does not raise: the body is read as a decoder reads it whole, and its one event is there
        records = list(decoded.records(None))
        assert len(records) == 1, content_type
