"""Large blobs: uploaded as they are read, in many requests, and resumed after a failure without
losing or duplicating a row (checked by EventId in the emulator's table)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from shared.blob_ingest import BlobNotSafe, Checkpoint, CheckpointConflict, CheckpointStore
from tests.blob.conftest import APPLOGS_TABLE, BlobWorld, app_log, expected_ids, ndjson
from tests.conftest import user_function

pytestmark = pytest.mark.e2e

STREAM = "Custom-AppLogs"


def big_events(count: int, tag: str) -> list[dict[str, Any]]:
    return [app_log(n, tag, detail="x" * 120) for n in range(count)]


def assert_exactly_once(world: BlobWorld, events: list[dict[str, Any]]) -> None:
    landed = Counter(world.landed_ids(APPLOGS_TABLE))
    duplicated = [i for i, c in landed.items() if c > 1]
    missing = set(expected_ids(events, lines=True)) - set(landed)
    extra = set(landed) - set(expected_ids(events, lines=True))
    assert (len(duplicated), len(missing), len(extra)) == (0, 0, 0), (duplicated[:3], list(missing)[:3])


def test_a_multi_megabyte_blob_goes_out_in_several_requests_with_no_row_lost_or_duplicated(blobs: BlobWorld):
    # GIVEN a gzip NDJSON blob of ~4 MB of events (larger than four Logs Ingestion requests)
    events = big_events(14_000, "big")
    data = ndjson(events)
    assert len(data) > 4_000_000
    client = blobs.put("applogs/big.ndjson.gz", data, gzipped=True)
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN it was uploaded as it was read, in several requests each within the 1 MB limit, every row once
    assert result.status == "done" and result.landed == 14_000, result.summary()
    requests = [r for r in blobs.emulator.requests() if r.get("stream") == STREAM]
    assert len(requests) == result.requests >= 5
    assert result.chunks >= 5
    assert_exactly_once(blobs, events)
    # AND the checkpoint says the whole blob version is done
    checkpoint = blobs.checkpoint("applogs/big.ndjson.gz")
    assert checkpoint["status"] == "done" and checkpoint["handled"] == 14_000 and checkpoint["landed"] == 14_000


def safe_units(checkpoint: dict[str, Any]) -> int:
    """Units a checkpoint records as safe: its prefix and the ranges that landed past a gap."""
    return checkpoint["handled"] + sum(end - start for start, end in checkpoint["done"])


def test_a_run_that_fails_midway_resumes_after_what_landed(blobs_without_poison: BlobWorld):
    world = blobs_without_poison
    # GIVEN a blob that takes many chunks, and a service that starts refusing requests after the 4th chunk
    # (two chunks are in flight, so chunk 1 may still be on the wire then and fail: the safe units are
    # then a range past a gap, not a prefix)
    events = big_events(6_000, "resume")
    client = world.put("applogs/resume.ndjson.gz", ndjson(events), gzipped=True)

    def fail_after_four(number: int, outcome: Any) -> None:
        if number == 4:
            world.emulator.add_fault(stream=STREAM, status=403)

    # WHEN the first run meets the failure (no poison store: the rows cannot be made safe)
    first = world.ingest(client, chunk_bytes=60_000, in_flight=2, on_chunk=fail_after_four)
    # THEN it stops, says which rows failed, and keeps what landed in the checkpoint
    assert first.status == "failed" and not first.safe and first.failed > 0
    assert 0 < first.landed < len(events)
    saved = world.checkpoint("applogs/resume.ndjson.gz")
    assert saved["status"] == "in_progress" and 0 < safe_units(saved) < len(events)
    assert saved["landed"] == first.landed  # the partial-chunk list stays empty: each chunk is one request
    assert saved["partial"] == []
    # AND the decorated function raises, so the host retries the blob (it resumes, not restarts)
    with pytest.raises(BlobNotSafe, match="resumes from the checkpoint"):
        user_function("blob_ingest")(client)
    # WHEN the service recovers and the host retries
    world.emulator.clear_faults()
    second = world.ingest(client, chunk_bytes=60_000, in_flight=2)
    # THEN the retry skipped exactly the units that had landed, and every event is in the table exactly once
    assert second.status == "done" and second.safe
    assert second.resumed_from == saved["handled"] and second.skipped_units == safe_units(saved)
    assert_exactly_once(world, events)


def test_a_run_that_dies_after_some_chunks_is_resumed_by_the_next_run(blobs: BlobWorld):
    # GIVEN a blob of many chunks and a worker that dies after the 3rd chunk completed
    events = big_events(4_000, "crash")
    client = blobs.put("applogs/crash.jsonl", ndjson(events))

    def crash(number: int, outcome: Any) -> None:
        if number == 3:
            raise SystemExit("worker recycled")

    with pytest.raises(SystemExit):
        blobs.ingest(client, chunk_bytes=50_000, in_flight=1, checkpoint_every_seconds=0, on_chunk=crash)
    landed_before = len(blobs.landed_ids())
    assert landed_before > 0
    # WHEN the host runs the blob again
    result = blobs.ingest(client, chunk_bytes=50_000, in_flight=1)
    # THEN it resumed where the dead run's checkpoint was, and nothing is missing or duplicated
    assert result.status == "done" and result.resumed_from >= landed_before - 1
    assert result.landed == len(events) - result.resumed_from
    assert_exactly_once(blobs, events)


def test_a_blob_overwritten_after_a_failed_run_is_ingested_from_the_start(blobs: BlobWorld):
    # GIVEN a run that stopped after two chunks of a blob's first version
    first_events = big_events(3_000, "v1")
    client = blobs.put("applogs/rewrite.ndjson", ndjson(first_events))

    def stop(number: int, outcome: Any) -> None:
        if number == 2:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        blobs.ingest(client, chunk_bytes=50_000, in_flight=1, on_chunk=stop)
    # WHEN the blob is overwritten (new ETag) and ingested
    second_events = big_events(1_000, "v2")
    blobs.put("applogs/rewrite.ndjson", ndjson(second_events))
    result = blobs.ingest(client)
    # THEN the new version was read from its first line
    assert result.resumed_from == 0 and result.landed == 1_000
    assert set(expected_ids(second_events, lines=True)) <= set(blobs.landed_ids())


def test_a_repeated_event_for_a_finished_blob_sends_nothing_again(blobs: BlobWorld):
    # GIVEN a blob already ingested
    events = [app_log(n, "dup") for n in range(50)]
    client = blobs.put("applogs/once.ndjson", ndjson(events))
    assert blobs.ingest(client).landed == 50
    # WHEN Event Grid delivers its BlobCreated event again
    again = blobs.ingest(client)
    # THEN the run recognises the same ETag and skips it
    assert again.status == "skipped" and again.safe and again.landed == 0
    assert_exactly_once(blobs, events)


def test_refused_uploads_are_dead_lettered_and_the_blob_run_still_completes(blobs: BlobWorld):
    # GIVEN the poison store on Azurite and a service that refuses every request permanently (404: unknown stream;
    # a 403 is parked for replay instead, within its grace window for role propagation)
    events = [app_log(n, "park") for n in range(300)]
    client = blobs.put("applogs/parked.ndjson", ndjson(events))
    blobs.emulator.add_fault(stream=STREAM, status=404)
    # WHEN the blob is ingested
    result = blobs.ingest(client)
    # THEN nothing landed but everything was dead-lettered with the reason: the run is safe and done
    assert result.status == "done" and result.safe
    assert (result.landed, result.deadlettered, result.failed) == (0, 300, 0)
    assert blobs.checkpoint("applogs/parked.ndjson")["deadlettered"] == 300


def test_two_runs_of_the_same_blob_version_cannot_both_proceed(blobs: BlobWorld):
    # GIVEN two invocations that read the same checkpoint (a duplicate event delivered twice at once)
    client = blobs.service.get_blob_client(blobs.container_name, "applogs/race.ndjson")
    first, second = CheckpointStore.beside(client), CheckpointStore.beside(client)
    path = f"{blobs.container_name}/applogs/race.ndjson"
    assert first.load(path) is None and second.load(path) is None
    # WHEN both try to claim it
    first.save(Checkpoint(path, '"etag-1"', run_id="a"))
    # THEN the second is refused
    with pytest.raises(CheckpointConflict):
        second.save(Checkpoint(path, '"etag-1"', run_id="b"))
