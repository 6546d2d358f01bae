"""NDJSON blobs on the typed path: a blob route that decodes events itself gets the file's lines still
encoded, and the run gives the same rows, rejections, tallies and checkpoint as the dict path gives for
the same blob (with ``id_column``, the same but for the ids: a line handed on encoded is hashed as its
text, ``coercion.canonical_bytes``).

The dict path is the same run with ``Engine.takes_encoded`` answering no (what a run on a route without a
typed path does). Real Azurite, real emulator.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from shared.engine import Engine
from shared.normalize import Normalizer, event_id
from tests.blob.conftest import APPLOGS_TABLE, BlobWorld, app_log, ndjson
from tests.conftest import routes_file_without
from tests.routing_support import use_routes

pytestmark = pytest.mark.e2e

#: the shipped blob-applogs route on its own folder, the blob's name in Host (with or without its id_column)
TYPED_ROUTE = "blob-typed"


def use_typed_route(monkeypatch: pytest.MonkeyPatch, folder: Path, id_column: bool) -> None:
    shipped = yaml.safe_load((Path(__file__).resolve().parents[2] / "relay.yaml").read_text(encoding="utf-8"))
    route = next(dict(route) for route in shipped["routes"] if route["name"] == "blob-applogs")
    if not id_column:
        route.pop("id_column")
    route.update(name=TYPED_ROUTE, match="${RELAY_BLOB_CONTAINER}/typed/*", map={**route["map"], "Host": "_blob.name"})
    use_routes(monkeypatch, routes_file_without(folder, first=(route,)))


@pytest.fixture
def typed_blobs(blobs: BlobWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> BlobWorld:
    use_typed_route(monkeypatch, tmp_path, id_column=False)
    return blobs


class Encoded:
    """Counts the events a run decoded from their bytes on the typed path (``Normalizer.normalize_encoded``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.events = 0
        original = Normalizer.normalize_encoded

        def counted(normalizer: Normalizer, raws: Any, *args: Any, **kwargs: Any) -> Any:
            self.events += len(raws)
            return original(normalizer, raws, *args, **kwargs)

        monkeypatch.setattr(Normalizer, "normalize_encoded", counted)


def ingest_on_dicts(world: BlobWorld, client: Any, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Any:
    """The run of a route without a typed path: the engine says it does not take encoded events."""
    with monkeypatch.context() as patch:
        patch.setattr(Engine, "takes_encoded", lambda self, target: False)
        return world.ingest(client, **options)


def outcome(world: BlobWorld, result: Any, name: str) -> dict[str, Any]:
    """What a caller sees of a run: its result (less its own ids and time), checkpoint and landed rows."""
    summary = {key: value for key, value in result.summary().items() if key != "request_id"}
    tallies = {key: getattr(result, key) for key in ("status", "format", "compressed", "units", "skipped_units",
                                                     "events", "chunks", "resumed_from", "partial")}
    checkpoint = {key: value for key, value in world.checkpoint(name).items()
                  if key not in ("blob", "etag", "run_id", "updated")}
    rows = [{**{key: value for key, value in row.items() if key not in ("Host", "EventId")},
             "TimeGenerated": row["TimeGenerated"] if row["TimeGenerated"].startswith("2024") else "ingestion time"}
            for row in world.rows(APPLOGS_TABLE) if row["Host"] == name]
    return {"summary": summary, "tallies": tallies, "checkpoint": checkpoint,
            "rows": sorted(rows, key=lambda row: orjson.dumps(row, option=orjson.OPT_SORT_KEYS))}


def mixed_file(count: int) -> bytes:
    """App-log lines with, in their middle, every kind of line the dict path treats in its own way."""
    odd = [
        b'{"timestamp": "2024-05-01T10:00:00Z", "level": "warn", "message": "NaN", "duration_ms": NaN}',
        b'{"timestamp": "2024-05-01T10:00:00Z", "level": "warn", "message": "too big", "size": 1e400}',
        b'{"timestamp": "2024-05-01T10:00:00Z", "level": "warn", "message": "\\ud800 lone"}',
        b'{"timestamp": "2024-05-01T10:00:00Z", "level": "warn", "message": "caf\xe9 latin-1"}',
        b'{"timestamp": "2024-05-01T10:00:00Z", "level": "warn", "message": "cut short"',
        b'{"timestamp": "2024-05-01T10:00:00Z"} {"level": "two values"}',
        b'"just a string"',
        b"",
        b"   \r",
        b'{"timestamp": "2024-05-01T10:00:00Z", "level": "warn", "message": "a bad status", "status": "lots"}',
        b'{"records": [' + b",".join(orjson.dumps(app_log(n, "env")) for n in range(3)) + b"]}",
        b'{"r\\u0065cords": [' + orjson.dumps(app_log(7, "escaped-env")) + b"]}",
        b'{"records": "not an envelope", "message": "a records key"}',
        orjson.dumps(app_log(5, "coerced", status="201", ok=1, duration_ms="2.5")),
    ]
    lines = [orjson.dumps(app_log(n, "mixed", ok=n % 2 == 0, bytes=n * 10)) for n in range(count)]
    for number, line in enumerate(odd):
        lines.insert(count // 3 + number * 7, line)
    return b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n"


@pytest.mark.parametrize("id_column", [False, True], ids=["no-id", "id_column"])
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_a_blob_gives_the_same_rows_rejections_tallies_and_checkpoint_on_the_typed_path(
        blobs: BlobWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gzipped: bool, id_column: bool):
    world = blobs
    use_typed_route(monkeypatch, tmp_path, id_column)
    # GIVEN the same NDJSON file twice, with a byte order mark, CRLF lines, and bad lines, blank lines and
    # {"records": [...]} envelopes in its middle, on a route that has a typed path
    data = mixed_file(600)
    suffix = ".ndjson.gz" if gzipped else ".ndjson"
    typed_client = world.put(f"typed/a{suffix}", data, gzipped=gzipped)
    dicts_client = world.put(f"typed/b{suffix}", data, gzipped=gzipped)
    encoded = Encoded(monkeypatch)
    # WHEN one is ingested on the typed path and the other as a run that does not take encoded events,
    # in many small chunks
    typed = world.ingest(typed_client, chunk_bytes=20_000, in_flight=1)
    typed_encoded = encoded.events
    dicts = ingest_on_dicts(world, dicts_client, monkeypatch, chunk_bytes=20_000, in_flight=1)
    # THEN the typed run decoded the good lines from their bytes, the other none
    assert typed_encoded >= 600 and encoded.events == typed_encoded
    # AND both runs give the same result (rejection refs, reasons and their order), tallies, checkpoint, rows
    assert typed.status == "done" and typed.chunks > 5, typed.summary()
    assert outcome(world, typed, f"typed/a{suffix}") == outcome(world, dicts, f"typed/b{suffix}")
    # AND that is every good line, envelope record and line with a "records" key landed, each bad line rejected
    # naming its line (a string and a bad status are events the route rejects, the other bad lines none)
    assert typed.landed == 600 + 3 + 1 + 1 + 1 and typed.events == typed.landed + 2
    reasons = [rejection["reason"] for rejection in typed.rejections]
    assert len(reasons) == typed.rejected == 8
    assert any("field 'duration_ms' holds NaN" in reason for reason in reasons)
    assert any("field 'size' holds 1e400, a number beyond double range" in reason for reason in reasons)
    assert any("lone surrogate" in reason for reason in reasons)
    assert any("not valid UTF-8" in reason for reason in reasons)
    assert any("column 'StatusCode' (int)" in reason for reason in reasons)
    assert all(reason.startswith("line ") for reason in reasons)
    if id_column:  # AND a good line's id hashes its text on the typed path, its sorted keys on the dict path
        event = app_log(0, "mixed", ok=True, bytes=0)
        ids = {row["Host"]: row["EventId"] for row in world.rows(APPLOGS_TABLE) if row["Message"] == "mixed event 0"}
        assert ids == {f"typed/a{suffix}": event_id(TYPED_ROUTE, event, orjson.dumps(event)),
                       f"typed/b{suffix}": event_id(TYPED_ROUTE, event)}


def test_a_typed_run_that_dies_midway_is_resumed_with_every_unit_landed_once(typed_blobs: BlobWorld):
    world = typed_blobs
    # GIVEN a blob of many chunks with bad lines among its good ones, and a worker that dies after its 3rd chunk
    events = [app_log(n, "crash", detail="x" * 120) for n in range(3_000)]
    lines = [orjson.dumps(event) for event in events]
    for at in range(100, 3_000, 250):
        lines.insert(at, b'{"timestamp": "2024-05-01T10:00:00Z", "message": "bad", "duration_ms": NaN}')
    client = world.put("typed/crash.ndjson.gz", b"\n".join(lines), gzipped=True)

    def crash(number: int, outcome: Any) -> None:
        if number == 3:
            raise SystemExit("worker recycled")

    with pytest.raises(SystemExit):
        world.ingest(client, chunk_bytes=50_000, in_flight=1, checkpoint_every_seconds=0, on_chunk=crash)
    first = world.checkpoint("typed/crash.ndjson.gz")
    assert 0 < first["handled"] < len(lines) and first["status"] == "in_progress"
    # WHEN the host runs the blob again
    result = world.ingest(client, chunk_bytes=50_000, in_flight=1)
    # THEN it resumed after the units the dead run made safe, and every event landed exactly once
    assert result.status == "done" and result.resumed_from == first["handled"] == result.skipped_units
    landed = Counter(row["Message"] for row in world.rows(APPLOGS_TABLE))
    assert landed == Counter(event["message"] for event in events)
    # AND every bad line was rejected once, by one run or the other
    final = world.checkpoint("typed/crash.ndjson.gz")
    assert (final["status"], final["handled"], final["landed"], final["rejected"]) == (
        "done", len(lines), len(events), len(lines) - len(events))


def test_a_line_nested_deeper_than_the_typed_decoder_goes_is_handled_as_the_dict_path_does(
        typed_blobs: BlobWorld, monkeypatch: pytest.MonkeyPatch):
    world = typed_blobs
    # GIVEN a line nesting a value 1,010 levels deep (orjson reads it, msgspec stops short) among good lines
    deep = b'{"timestamp": "2024-05-01T10:00:00Z", "message": "deep", "v": ' + b"[" * 1010 + b"]" * 1010 + b"}"
    data = ndjson([app_log(0, "deep")]) + deep + b"\n" + ndjson([app_log(1, "deep")])
    typed_client, dicts_client = world.put("typed/a.jsonl", data), world.put("typed/b.jsonl", data)
    # WHEN the same file is ingested on both paths
    typed = world.ingest(typed_client)
    dicts = ingest_on_dicts(world, dicts_client, monkeypatch)
    # THEN nothing failed, and both runs give the same outcome
    assert typed.status == "done" and (typed.landed, typed.rejected) == (2, 1), typed.summary()
    assert outcome(world, typed, "typed/a.jsonl") == outcome(world, dicts, "typed/b.jsonl")


def test_a_typed_run_out_of_time_pauses_and_its_retry_lands_the_rest_once(typed_blobs: BlobWorld,
                                                                         monkeypatch: pytest.MonkeyPatch):
    world = typed_blobs
    # GIVEN a blob of many chunks, and a clock that moves a second each time the run reads it (no real waiting)
    events = [app_log(n, "paused", detail="x" * 120) for n in range(3_000)]
    client = world.put("typed/paused.ndjson.gz", ndjson(events), gzipped=True)
    import shared.blob_ingest as blob_ingest

    ticks = iter(range(10**9))
    with monkeypatch.context() as patch:
        patch.setattr(blob_ingest.time, "monotonic", lambda: float(next(ticks)))
        # WHEN it runs with a time budget of 12 of those seconds
        first = world.ingest(client, chunk_bytes=50_000, in_flight=1, time_budget_seconds=12)
    # THEN it paused part way (not safe: the host retries it), with what it took safe in the checkpoint
    assert (first.status, first.safe, first.failed) == ("paused", False, 0), first.summary()
    saved = world.checkpoint("typed/paused.ndjson.gz")
    assert 0 < saved["handled"] < len(events) and saved["landed"] == first.landed == saved["handled"]
    # AND the retry lands the rest: every event exactly once
    second = world.ingest(client, chunk_bytes=50_000, in_flight=1)
    assert second.status == "done" and second.resumed_from == saved["handled"]
    assert Counter(row["Message"] for row in world.rows(APPLOGS_TABLE)) == Counter(e["message"] for e in events)
