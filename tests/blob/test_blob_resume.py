"""Resuming a blob never skips a row that did not land: a unit whose records span chunks (an envelope line
or array element ``{"records": [...]}`` larger than a chunk) is safe only once every chunk that held part of
it is, so a run that stops between those chunks sends the whole unit again on resume (its rows that had
landed carry the same EventId). And a unit an earlier run already rejected is not rejected, nor counted,
again. Real Azurite, real emulator.
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from shared.engine import Engine
from shared.sources.blob import DEFAULT_MAX_EVENT_BYTES
from tests.blob.conftest import APPLOGS_TABLE, BlobWorld, app_log, ndjson

pytestmark = pytest.mark.e2e

BEFORE, ENVELOPE, AFTER = 30, 250, 30  # plain units, records of the envelope unit between them, plain units
ENVELOPE_UNIT = BEFORE  # its 0-based position among the file's units
UNITS = BEFORE + 1 + AFTER
#: 100 records a chunk: chunk 1 holds the plain units and the envelope's first 70 records, chunks 2 and 3
#: the rest of the envelope, chunk 3 and 4 the plain units after it
CHUNKING = {"chunk_events": 100, "chunk_bytes": 1_000_000, "in_flight": 1}


def envelope_file(tag: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    """All the file's events, the envelope's records, and the file's units in order."""
    before = [app_log(n, tag) for n in range(BEFORE)]
    inside = [app_log(n, tag) for n in range(BEFORE, BEFORE + ENVELOPE)]
    after = [app_log(n, tag) for n in range(BEFORE + ENVELOPE, BEFORE + ENVELOPE + AFTER)]
    return before + inside + after, inside, [*before, {"records": inside}, *after]


def put_file(world: BlobWorld, shape: str, units: list[Any]) -> Any:
    if shape == "json-array":
        return world.put("applogs/resume-envelope.json", orjson.dumps(units))
    return world.put("applogs/resume-envelope.ndjson", ndjson(units))


def ingest(world: BlobWorld, client: Any, shape: str, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Any:
    """A run of the blob: NDJSON lines on the route's typed path, or (``dicts``) as a route without one."""
    with monkeypatch.context() as patch:
        if shape == "ndjson-dicts":
            patch.setattr(Engine, "takes_encoded", lambda self, target: False)
        return world.ingest(client, **options)


def landed_by_message(world: BlobWorld) -> dict[str, list[str]]:
    """The EventIds of the rows landed for each message (each event of a file has its own message)."""
    landed: dict[str, list[str]] = defaultdict(list)
    for row in world.rows(APPLOGS_TABLE):
        landed[row["Message"]].append(row["EventId"])
    return landed


def crash_after_chunk_2(world: BlobWorld) -> dict[str, Any]:
    """A worker that dies once chunk 2 (the middle of the envelope) is safe: the unit's rest is never sent."""

    def crash(number: int, outcome: Any) -> None:
        if number == 2:
            raise SystemExit("worker recycled")

    return {"on_chunk": crash, "checkpoint_every_seconds": 0}


def fail_from_chunk_2(world: BlobWorld) -> dict[str, Any]:
    """A service that refuses every request once chunk 1 is safe (no poison store: they fail)."""

    def refuse(number: int, outcome: Any) -> None:
        if number == 1:
            world.emulator.add_fault(stream="Custom-AppLogs", status=403)

    return {"on_chunk": refuse}


@pytest.mark.parametrize("shape", ["ndjson-typed", "ndjson-dicts", "json-array"])
@pytest.mark.parametrize("stop", ["crash", "failure"])
def test_an_envelope_whose_records_span_chunks_is_sent_again_whole_when_the_run_stops_between_them(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, shape: str, stop: str):
    world: BlobWorld = request.getfixturevalue("blobs" if stop == "crash" else "blobs_without_poison")
    # GIVEN a blob whose 31st unit is a {"records": [...]} envelope of 250 records between plain units, read
    # 100 records a chunk (so the envelope's records span chunks 1 to 3), and a run that stops after chunk 1
    # or 2 is safe: the worker dies, or the service refuses the next chunks
    events, inside, units = envelope_file(f"{shape}-{stop}")
    client = put_file(world, shape, units)
    if shape == "ndjson-typed":
        from shared.runtime import get_relay

        relay = get_relay()
        assert relay.engine.takes_encoded(relay.config.router("blob", f"{client.container_name}/{client.blob_name}"))
    stopping = crash_after_chunk_2(world) if stop == "crash" else fail_from_chunk_2(world)
    # WHEN the run stops part way through the envelope
    if stop == "crash":
        with pytest.raises(SystemExit):
            ingest(world, client, shape, monkeypatch, **CHUNKING, **stopping)
    else:
        first = ingest(world, client, shape, monkeypatch, **CHUNKING, **stopping)
        assert first.status == "failed" and first.failed > 0, first.summary()
        world.emulator.clear_faults()
    # THEN its checkpoint keeps the envelope unit pending, though some of its records landed
    saved = world.checkpoint(client.blob_name)
    assert saved["status"] == "in_progress"
    assert (saved["handled"], saved["done"]) == (ENVELOPE_UNIT, []), saved
    landed_before = landed_by_message(world)
    assert any(event["message"] in landed_before for event in inside)
    # WHEN the host retries the blob
    second = ingest(world, client, shape, monkeypatch, **CHUNKING)
    # THEN the retry resumed at the envelope and every event landed: none is missing
    assert second.status == "done" and second.safe and second.resumed_from == ENVELOPE_UNIT, second.summary()
    landed = landed_by_message(world)
    assert {event["message"] for event in events} == set(landed)
    # AND only the envelope's records that had landed came twice, each time with the same EventId
    twice = {message for message, ids in landed.items() if len(ids) > 1}
    assert twice and twice <= {event["message"] for event in inside} and twice <= set(landed_before)
    assert all(len(ids) <= 2 and len(set(ids)) == 1 for ids in landed.values())
    # AND the checkpoint says the blob is done and counts every row each time it landed
    done = world.checkpoint(client.blob_name)
    assert (done["status"], done["handled"], done["done"], done["rejected"]) == ("done", UNITS, [], 0)
    assert done["landed"] == sum(map(len, landed.values())) == len(events) + len(twice)


@pytest.mark.parametrize("shape", ["ndjson-typed", "ndjson-dicts", "json-array"])
def test_a_run_out_of_time_inside_an_envelope_pauses_after_it_and_its_retry_sends_nothing_twice(
        blobs: BlobWorld, monkeypatch: pytest.MonkeyPatch, shape: str):
    world = blobs
    # GIVEN the same blob, a clock read before every unit, and a time budget that runs out once chunk 1 is safe
    # (the middle of the envelope: a run stops only between units)
    import shared.blob_ingest as blob_ingest

    events, _, units = envelope_file(f"{shape}-pause")
    client = put_file(world, shape, units)
    now = [0.0]

    def out_of_time(number: int, outcome: Any) -> None:
        if number == 1:
            now[0] = 10_000.0

    monkeypatch.setattr(blob_ingest, "CLOCK_EVERY_UNITS", 1)
    with monkeypatch.context() as patch:
        patch.setattr(blob_ingest, "time", SimpleNamespace(monotonic=lambda: now[0]))
        # WHEN it runs
        first = ingest(world, client, shape, monkeypatch, **CHUNKING, on_chunk=out_of_time)
    # THEN it paused after the envelope, which it finished and marked safe
    assert (first.status, first.failed) == ("paused", 0), first.summary()
    saved = world.checkpoint(client.blob_name)
    assert (saved["handled"], saved["done"], saved["landed"]) == (ENVELOPE_UNIT + 1, [], BEFORE + ENVELOPE)
    # AND the retry lands the rest: every event exactly once
    second = ingest(world, client, shape, monkeypatch, **CHUNKING)
    assert second.status == "done" and second.resumed_from == ENVELOPE_UNIT + 1, second.summary()
    landed = landed_by_message(world)
    assert set(landed) == {event["message"] for event in events} and all(len(ids) == 1 for ids in landed.values())
    assert world.checkpoint(client.blob_name)["landed"] == len(events)


@pytest.mark.parametrize("shape", ["ndjson-typed", "ndjson-dicts"])
def test_a_line_over_the_size_limit_rejected_before_a_crash_is_not_rejected_again_on_resume(
        blobs: BlobWorld, monkeypatch: pytest.MonkeyPatch, shape: str):
    world = blobs
    # GIVEN a gzip NDJSON blob whose 51st line is over the size limit, among 300 good lines read 100 a chunk,
    # and a worker that dies once chunk 2 is safe (the long line was rejected in chunk 1)
    events = [app_log(n, f"long-{shape}") for n in range(300)]
    lines = [orjson.dumps(event) for event in events]
    lines.insert(50, b'{"message": "' + b"x" * DEFAULT_MAX_EVENT_BYTES + b'"}')
    client = world.put("applogs/long-line.ndjson.gz", gzip.compress(b"\n".join(lines)))
    with pytest.raises(SystemExit):
        ingest(world, client, shape, monkeypatch, **CHUNKING, **crash_after_chunk_2(world))
    saved = world.checkpoint(client.blob_name)
    assert saved["rejected"] == 1 and saved["handled"] > 50, saved
    # WHEN the host retries the blob
    second = ingest(world, client, shape, monkeypatch, **CHUNKING)
    # THEN the retry skipped the long line with the other safe units: it is rejected, and counted, once in all
    assert second.status == "done" and second.rejected == 0, second.summary()
    assert second.skipped_units == saved["handled"]
    done = world.checkpoint(client.blob_name)
    assert (done["status"], done["handled"], done["rejected"], done["landed"]) == ("done", 301, 1, 300)
