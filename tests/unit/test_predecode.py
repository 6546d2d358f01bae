"""A JSON array body a route's typed path decodes whole, before anything splits it (``TypedPath.predecode``).

The HTTP source offers a plain JSON array body to the route's typed path first; when every event decodes
strictly it hands the body on as one chunk (``records.Encoded.decoded``) whose elements are split only if
something asks for one (``records.LazyRaws``). Whatever happens after, the run must be the one the split
body gives: the same rows uploaded, the same rejections at the same indexes, the same counters.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
import pytest
import yaml

from shared import engine as engine_module
from shared import typed
from shared.config import parse_config
from shared.dispatch import Dispatcher
from shared.engine import Engine
from shared.records import LazyRaws
from shared.sink import UploadResult
from shared.sources.http import decode_http_body
from tests.unit.test_plan_equivalence import ROOT

HEADERS = {"Content-Type": "application/json"}
NOW = 1714557600.0  # 2024-05-01T10:00:00Z


@pytest.fixture(autouse=True)
def _one_ingestion_time(monkeypatch):
    """Both runs of a comparison stamp (and count the time window by) the same ingestion time."""
    monkeypatch.setattr(engine_module.time, "time", lambda: NOW)


class LandingUploader:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def upload(self, endpoint: str, dcr: str, stream: str, gzipped_body: bytes, request_id: str) -> UploadResult:
        self.bodies.append(zlib.decompress(gzipped_body, wbits=31))
        return UploadResult(request_id, 1, status=204)


def route(**keys: Any) -> Any:
    raw = {"name": "hook", "source": "http", "match": "hook", "endpoint": "https://relay.example.com",
           "dcr": "dcr-" + "0" * 32, "stream": "Custom-Hook",
           "columns": [{"name": "TimeGenerated", "type": "datetime"}, {"name": "Key", "type": "string"},
                       {"name": "N", "type": "long"}, {"name": "Tags", "type": "dynamic"},
                       {"name": "Properties", "type": "dynamic"}],
           "map": {"Key": "id", "N": "payload.n", "Tags": "tags"}, "time_field": "ts", "extra": "Properties", **keys}
    return parse_config(yaml.safe_dump({"routes": [raw]}), {}, ROOT).routes[0]


def event(n: int, **changes: Any) -> dict[str, Any]:
    return {"id": f"e-{n}", "ts": f"2024-05-01T10:00:{n % 60:02d}.5+02:00", "payload": {"n": n, "more": [n]},
            "tags": ["a", n], **changes}


def body_of(events: list[Any], *raw_tail: bytes) -> bytes:
    text = orjson.dumps(events)
    return text[:-1] + b"".join(b"," + raw for raw in raw_tail) + b"]" if raw_tail else text


def run(target: Any, body: bytes, predecode: bool) -> tuple[Any, list[bytes], Any]:
    uploader = LandingUploader()
    engine = Engine(Dispatcher(uploader, concurrency=1), 1 << 20)
    encoded = engine.takes_encoded(target) if predecode else True
    decoded = decode_http_body(HEADERS, body, 1 << 24, encoded=encoded)
    result = engine.run(target, decoded.records(None), batch_id="b")
    engine.close()
    return result, uploader.bodies, decoded


def outcome(result: Any, bodies: list[bytes]) -> tuple:
    rows = [row for body in bodies for row in orjson.loads(body)]
    return (rows, result.summary(), result.rejections)


DEEP = b"[" * 300 + b"]" * 300
CASES = {
    "all good": body_of([event(n) for n in range(50)]),
    "a time no reading takes": body_of([event(0), event(1, ts="yesterday-ish"), event(2)]),
    "an old time and a missing one": body_of([event(0, ts="2001-01-01T00:00:00Z"), event(1, ts=None), event(2)]),
    "a dynamic value nested 300 levels": body_of([event(0), event(1)], b'{"id": "deep", "tags": ' + DEEP + b"}"),
    "a number beyond double range kept raw": body_of([event(0)], b'{"id": "far", "tags": [1e400]}'),
    "bytes that are not UTF-8 kept raw": body_of([event(0)], b'{"id": "bad", "tags": ["caf\xe9"]}'),
    "a row over the field size limit": body_of([event(0), event(1, tags=["x" * 70_000])]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_body_decoded_whole_gives_the_run_the_split_body_gives(name):
    # GIVEN a typed route and a JSON array body every event of which a strict decode takes
    target, body = route(), CASES[name]
    # WHEN the HTTP source offers it to the route whole, and when it splits it as before
    whole, whole_bodies, decoded = run(target, body, predecode=True)
    split, split_bodies, _ = run(target, body, predecode=False)
    # THEN the body was decoded whole, and the same rows landed with the same rejections and counters
    assert decoded.decoded is not None and type(decoded.raws) is LazyRaws
    assert outcome(whole, whole_bodies) == outcome(split, split_bodies)


def test_a_body_whose_records_all_land_is_never_split():
    # GIVEN a typed route without id_column and a body of good events
    body = CASES["all good"]
    # WHEN it runs decoded whole
    result, bodies, decoded = run(route(), body, predecode=True)
    # THEN every row landed and nothing asked for an element's bytes
    assert result.landed == 50 and decoded.raws._raws is None
    assert [row["N"] for body in bodies for row in orjson.loads(body)] == list(range(50))


def test_id_column_hashes_the_same_bytes_when_the_body_was_decoded_whole():
    # GIVEN a route with id_column (it hashes each event's own bytes, so those are split on demand)
    target = route(id_column="EventId", columns=[
        {"name": "TimeGenerated", "type": "datetime"}, {"name": "Key", "type": "string"},
        {"name": "N", "type": "long"}, {"name": "Tags", "type": "dynamic"}, {"name": "Properties", "type": "dynamic"},
        {"name": "EventId", "type": "string"}])
    body = CASES["all good"]
    # WHEN it runs decoded whole and split
    whole, whole_bodies, decoded = run(target, body, predecode=True)
    split, split_bodies, _ = run(target, body, predecode=False)
    # THEN the ids (and everything else) are the same
    assert decoded.decoded is not None
    assert outcome(whole, whole_bodies) == outcome(split, split_bodies)
    assert len({row["EventId"] for body in whole_bodies for row in orjson.loads(body)}) == 50


@pytest.mark.parametrize("body", [
    body_of([event(0), event(1, id=7)]),  # a value of another type: the coercer converts it, a strict decode does not
    body_of([event(0), event(1, unread="x")]),  # a key the route does not read (it goes to extra)
    body_of([event(0)], b"42"),  # an element that is no object
    orjson.dumps(event(0)),  # one object, not an array
    b"[]",
], ids=["other type", "unknown key", "not an object", "one object", "empty"])
def test_a_body_a_strict_decode_does_not_take_is_split_as_before(body):
    # GIVEN bodies the route's strict Struct refuses somewhere (or that hold no array of events)
    whole, whole_bodies, decoded = run(route(), body, predecode=True)
    split, split_bodies, _ = run(route(), body, predecode=False)
    # THEN the source split it as before, and the run is the same
    assert decoded.decoded is None
    assert outcome(whole, whole_bodies) == outcome(split, split_bodies)


def test_a_body_larger_than_a_chunk_is_split(monkeypatch):
    # GIVEN a body over the size a body is decoded whole at (here made small)
    monkeypatch.setattr(typed, "PREDECODE_MAX_BYTES", 100)
    body = CASES["all good"]
    # WHEN the source offers it THEN it is split, and every row lands
    result, _, decoded = run(route(), body, predecode=True)
    assert decoded.decoded is None and result.landed == 50


def test_an_event_grid_body_is_still_told_apart_when_the_route_reads_its_keys():
    # GIVEN a route whose Struct reads eventType and dataVersion (so a strict decode would take Event Grid events)
    target = route(map={"Key": "eventType", "N": "payload.n", "Tags": "dataVersion"})
    handshake = [{"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "subject": "",
                  "data": {"validationCode": "code-1"}, "dataVersion": "1", "metadataVersion": "1",
                  "eventTime": "2024-05-01T10:00:00Z"}]
    engine = Engine(Dispatcher(LandingUploader(), concurrency=1), 1 << 20)
    assert engine.takes_encoded(target).reads_event_grid
    # WHEN a subscription validation body comes without the aeg-event-type header
    decoded = decode_http_body(HEADERS, orjson.dumps(handshake), 1 << 20, encoded=engine.takes_encoded(target))
    # THEN it is answered as Event Grid, not decoded as events
    assert decoded.kind == "eventgrid" and decoded.handshake == {"validationResponse": "code-1"}


def test_a_body_decoded_whole_is_cut_into_the_engines_chunks_without_being_split():
    # GIVEN a body of 50 good events and chunks of 20 rows
    from shared.engine import Chunking

    uploader = LandingUploader()
    engine = Engine(Dispatcher(uploader, concurrency=1), 1 << 20)
    target = route()
    decoded = decode_http_body(HEADERS, CASES["all good"], 1 << 24, encoded=engine.takes_encoded(target))
    reports = []
    # WHEN the engine runs it in chunks
    result = engine.run(target, decoded.records(None), batch_id="b", chunking=Chunking(rows=20),
                        on_chunk=reports.append)
    engine.close()
    # THEN three chunks landed every row in order, and the body was never split
    assert [report.records for report in sorted(reports, key=lambda r: r.number)] == [20, 20, 10]
    assert result.landed == 50 and decoded.raws._raws is None
    assert [row["N"] for body in uploader.bodies for row in orjson.loads(body)] == list(range(50))


@pytest.mark.parametrize("bad", [b'{"id": "bad", "tags": ["caf\xe9"]}', b'{"id": "far", "tags": [1e400]}'])
def test_a_chunk_of_a_body_decoded_whole_still_checks_its_raw_values_beside_a_record_nested_too_deep(bad):
    # GIVEN one chunk holding a record nested too deep and one whose raw value is not UTF-8 or beyond double range
    body = body_of([event(0)], b'{"id": "deep", "tags": ' + DEEP + b"}", bad)
    # WHEN it runs decoded whole and split
    whole, whole_bodies, decoded = run(route(), body, predecode=True)
    split, split_bodies, _ = run(route(), body, predecode=False)
    # THEN both reject the same two and land the same one
    assert decoded.decoded is not None and whole.rejected == 2
    assert outcome(whole, whole_bodies) == outcome(split, split_bodies)
