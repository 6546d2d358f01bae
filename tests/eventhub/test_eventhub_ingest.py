"""Event Hub batches from diagnostic settings and apps land one row per record; bad events are
reported by partition and sequence number; upload failures are parked, never raised away."""

from __future__ import annotations

import gzip
import json
import logging
from itertools import pairwise

import orjson
import pytest

from shared.eventhub_ingest import EventHubNotSafe
from shared.normalize import event_id
from tests.conftest import user_function
from tests.eventhub.conftest import (
    DIAGNOSTIC_SAMPLES,
    HUB,
    RESOURCE_STREAM,
    HubWorld,
    make_batch,
    sample,
    sample_records,
)

pytestmark = pytest.mark.e2e
ROUTE = "eventhub-diagnostics"


def test_diagnostic_settings_batches_from_several_resource_types_land_one_row_per_record(hub: HubWorld):
    # GIVEN one batch with the {"records": [...]} events diagnostic settings send for Key Vault, App Service,
    # Azure SQL, Storage and the Activity Log
    batch = make_batch([sample(name) for name in DIAGNOSTIC_SAMPLES], partition="3", first_sequence=1000)
    records = [r for name in DIAGNOSTIC_SAMPLES for r in sample_records(name)]
    # WHEN the decorated function runs on it
    user_function("eventhub_ingest")(batch)
    # THEN every record is one row of the resource-logs stream, with its columns filled and typed
    rows = hub.rows()
    assert len(rows) == len(records) == 11
    assert sorted(r["EventId"] for r in rows) == sorted(event_id(ROUTE, r) for r in records)
    by_operation = {(r["Category"], r.get("OperationName")): r for r in rows}
    vault = by_operation[("AuditEvent", "VaultGet")]
    assert vault["DurationMs"] == 21 and vault["CallerIpAddress"] == "40.74.28.9"
    assert vault["TimeGenerated"] == "2024-05-01T10:00:02.551387Z"
    assert vault["Properties"]["properties"]["httpStatusCode"] == 200  # unmapped fields kept, not dropped
    activity = by_operation[("Administrative", "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE")]
    assert activity["Level"] == "Information" and activity["Location"] == "global"
    sql = sorted(r["ResourceId"].rsplit("/", 1)[1] for r in rows if r["Category"] == "SQLSecurityAuditEvents")
    assert sql == ["MASTER", "ORDERS"]
    assert by_operation[("StorageRead", "GetBlob")]["DurationMs"] == 12
    web = next(r for r in rows if r["Category"] == "AppServiceHTTPLogs")
    assert web["Properties"]["properties"]["CsHost"] == "contoso-orders.azurewebsites.net"
    # AND _eventhub.* metadata (partition, sequence number, enqueued time, properties) is in the Source column
    source = vault["Source"]
    assert source["partition_id"] == "3" and source["event_hub"] == HUB and source["consumer_group"] == "$Default"
    assert source["sequence_number"] == 1000 and source["offset"] == str(4096 * 1000)
    assert source["enqueued_time"] == "2024-05-01T10:05:00Z" and source["partition_key"] == "pk-1"
    assert source["properties"] == {"producer": "diagnostic-settings"}
    assert hub.emulator.drops() == []


def test_a_large_batch_is_decoded_a_chunk_at_a_time_each_just_before_it_is_normalized(hub: HubWorld, monkeypatch):
    # GIVEN a batch of 200 diagnostic-settings bodies (~0.5 MB), and a count of the bodies decoded so far
    from shared import engine as engine_module
    from shared import eventhub_ingest

    bodies = [sample(name) for name in DIAGNOSTIC_SAMPLES] * 40
    decoded, seen_at_each_chunk = [0], []
    decode = eventhub_ingest.decode_event_body
    normalize = engine_module.Engine.normalize

    def counting_decode(body, limit):
        decoded[0] += 1
        return decode(body, limit)

    def watching_normalize(self, lane, records, chunk):
        seen_at_each_chunk.append(decoded[0])
        return normalize(self, lane, records, chunk)

    monkeypatch.setattr(eventhub_ingest, "decode_event_body", counting_decode)
    monkeypatch.setattr(engine_module.Engine, "normalize", watching_normalize)
    # WHEN the batch is handled
    result = hub.ingest(make_batch(bodies))
    # THEN it lands whole, normalized in chunks of about CHUNKING.size bytes of bodies, each decoded only when the
    # engine takes it (its dicts still in the CPU's caches), not the whole batch before the first chunk
    assert result.landed == result.rows == 11 * 40 and result.safe
    assert len(seen_at_each_chunk) >= sum(map(len, bodies)) // eventhub_ingest.CHUNKING.size
    assert seen_at_each_chunk == sorted(seen_at_each_chunk) and seen_at_each_chunk[0] < len(bodies) // 4
    most_per_chunk = eventhub_ingest.CHUNKING.size // min(map(len, bodies)) + 1
    assert all(later - earlier <= most_per_chunk for earlier, later in pairwise(seen_at_each_chunk))


def test_bodies_in_every_json_shape_and_gzip_are_read(hub: HubWorld):
    # GIVEN events whose bodies are one object, an array, NDJSON, a gzip envelope, and an array of envelopes
    kv = sample_records("diag_keyvault_auditevent.json")
    st = sample_records("diag_storage_blob_logs.json")
    bodies = [
        orjson.dumps(kv[0]),
        orjson.dumps([kv[1], kv[2]]),
        b"\n".join(orjson.dumps(r) for r in st) + b"\n",
        gzip.compress(sample("activitylog_administrative.json")),
        orjson.dumps([{"records": [st[0]]}, {"records": [kv[0]]}]),
    ]
    # WHEN the batch is ingested
    result = hub.ingest(make_batch(bodies))
    # THEN each shape was unwrapped into its records (identical records share an EventId, as intended)
    assert result.safe and (result.events, result.rows, result.landed, result.rejected) == (5, 9, 9, 0)


def test_a_batch_with_bad_events_lands_the_good_ones_and_names_the_bad_by_partition_and_sequence(
        hub: HubWorld, caplog: pytest.LogCaptureFixture):
    # GIVEN a batch where some events are not JSON, empty, not objects, or carry a record the stream cannot hold
    kv = sample_records("diag_keyvault_auditevent.json")
    bad_time = {**kv[1], "time": "yesterday at noon"}
    bodies = [
        sample("diag_keyvault_auditevent.json"),  # seq 500: 3 good records
        b'{"records": [{"time": "2024-05-01T10:00:00Z", "category": ',  # seq 501: cut short
        b"",  # seq 502: empty
        b"42",  # seq 503: a number, not an object
        orjson.dumps({"records": [{**kv[0], "correlationId": "c-504"}, bad_time]}),  # seq 504: record 1's time is bad
        orjson.dumps({**kv[2], "correlationId": "c-505"}) + b"\n{not json}\n",  # seq 505: NDJSON, line 2 is bad
    ]
    caplog.set_level(logging.WARNING, logger="relay.eventhub")
    # WHEN the decorated function runs on it
    user_function("eventhub_ingest")(make_batch(bodies, partition="7", first_sequence=500))
    result = hub.ingest(make_batch(bodies, partition="7", first_sequence=500))
    # THEN it returned normally, the good records landed, and each bad one is reported with partition + sequence
    assert result.safe and result.landed == 5 and result.rejected == 5
    reasons = sorted(r["reason"] for r in result.rejections)
    assert any(r.startswith("partition 7 sequence 501: not valid JSON") for r in reasons)
    assert any(r.startswith("partition 7 sequence 502: empty body") for r in reasons)
    assert any(r.startswith("partition 7 sequence 503: the body holds no event objects: it is a number") for r in reasons)
    assert any(r.startswith("partition 7 sequence 504 record 1: time_field 'time'") for r in reasons)
    assert any(r.startswith("partition 7 sequence 505: line 2: not valid JSON") for r in reasons)
    assert {(r["partition_id"], r["sequence_number"]) for r in result.rejections} == {
        ("7", 501), ("7", 502), ("7", 503), ("7", 504), ("7", 505)}
    assert any("partition 7 sequence 501" in r.getMessage() for r in caplog.records)
    # (the function and the direct call each landed the 5 good rows; the EventIds are the same)
    rows = hub.rows()
    assert len(rows) == 10 and len({r["EventId"] for r in rows}) == 5


def test_bodies_holding_what_json_cannot_carry_reject_that_record_only_and_the_counts_add_up(hub: HubWorld):
    # GIVEN an envelope, an array and NDJSON (after a byte order mark), each with one record JSON cannot carry
    kv = sample_records("diag_keyvault_auditevent.json")
    good = [orjson.dumps({**record, "correlationId": f"c-{n}"}) for n, record in enumerate(kv[:3])]
    bad = good[0].replace(b'"correlationId"', b'"durationMs":NaN,"correlationId"', 1)
    bodies = [
        b'{"records": [' + good[0] + b"," + bad.replace(b"NaN", b"1e400") + b"]}",  # seq 600: record 1 out of range
        b"[" + good[1] + b"," + bad.replace(b"NaN", b'"\\ud800"') + b"]",  # seq 601: element 1 a lone surrogate
        b"\xef\xbb\xbf" + good[2] + b"\n" + bad.replace(b"NaN", b"-Infinity") + b"\n",  # seq 602: line 2 -Infinity
    ]
    # WHEN the batch is ingested
    result = hub.ingest(make_batch(bodies, partition="3", first_sequence=600))
    # THEN the three good records land, each bad one is rejected naming its field, and every record is counted
    assert result.safe and (result.landed, result.rejected) == (3, 3)
    assert result.received == result.landed + result.rejected + result.parked + result.deadlettered + result.failed
    assert sorted(r["reason"] for r in result.rejections) == [
        "partition 3 sequence 600: record 1: field 'durationMs' holds 1e400, a number beyond double range",
        "partition 3 sequence 601: element 1: field 'durationMs' holds an invalid Unicode escape (a lone surrogate)",
        "partition 3 sequence 602: line 2: field 'durationMs' holds -Infinity: JSON has no NaN or Infinity",
    ]
    assert len(hub.rows()) == 3


def test_an_upload_failure_is_parked_and_the_function_returns_normally(hub: HubWorld):
    # GIVEN the poison store on Azurite and a service that keeps answering 503
    hub.emulator.add_fault(stream=RESOURCE_STREAM, status=503, retry_after=0)
    batch = make_batch([sample("diag_keyvault_auditevent.json"), sample("activitylog_administrative.json")])
    # WHEN the function runs (the host will checkpoint the partition whatever happens)
    user_function("eventhub_ingest")(batch)  # no exception: nothing to retry, nothing lost
    result = hub.ingest(batch)
    # THEN every row is accounted for as parked (claim checks in the poison queue), none failed, none landed
    assert result.safe and (result.landed, result.parked, result.failed) == (0, 5, 0)
    assert hub.poison_messages() >= 2
    assert hub.rows() == []


def test_a_permanent_refusal_is_parked_as_dead_letter_and_the_batch_completes(hub: HubWorld):
    # GIVEN a service that refuses the stream for good (404: unknown stream)
    hub.emulator.add_fault(stream=RESOURCE_STREAM, status=404)
    # WHEN a batch arrives
    result = hub.ingest(make_batch([sample("diag_sql_security_audit.json")]))
    # THEN the rows are dead-lettered with the reason (safe, kept for an operator), not retried forever or lost
    assert result.safe and (result.deadlettered, result.parked, result.failed) == (2, 0, 0)
    assert result.failures[0]["class"] == "not_found" and result.failures[0]["parked"] is True


def test_a_403_is_parked_for_replay_while_the_role_propagates(hub: HubWorld):
    # GIVEN a service answering 403 (the publisher role is not effective yet: up to 30 minutes, DESIGN 4)
    hub.emulator.add_fault(stream=RESOURCE_STREAM, status=403)
    # WHEN a batch arrives
    result = hub.ingest(make_batch([sample("diag_sql_security_audit.json")]))
    # THEN the rows are parked for replay (safe, the batch completes), not dead-lettered
    assert result.safe and (result.deadlettered, result.parked, result.failed) == (0, 2, 0)
    assert result.failures[0]["class"] == "forbidden" and result.failures[0]["parked"] is True


def test_without_a_poison_store_an_upload_failure_raises_so_the_retry_policy_runs(hub_without_poison: HubWorld):
    # GIVEN no poison store and a service refusing every request
    hub_without_poison.emulator.add_fault(stream=RESOURCE_STREAM, status=403)
    batch = make_batch([sample("diag_storage_blob_logs.json")], partition="1", first_sequence=42)
    # WHEN the function runs
    # THEN it raises: the rows are neither landed nor parked, so @app.retry must re-run the batch before
    # the host moves the checkpoint
    with pytest.raises(EventHubNotSafe, match=r"partition 1 sequence 42-42: 2 row\(s\) could be neither uploaded"):
        user_function("eventhub_ingest")(batch)
    # AND once the service is back, the retried batch lands in full
    hub_without_poison.emulator.clear_faults()
    user_function("eventhub_ingest")(batch)
    assert len(hub_without_poison.rows()) == 2


def test_bad_events_alone_never_raise_even_without_a_poison_store(hub_without_poison: HubWorld):
    # GIVEN a batch of nothing but garbage
    batch = make_batch([b"\xff\xfe binary", b"[1, 2", b"null"])
    # WHEN the function runs
    user_function("eventhub_ingest")(batch)
    # THEN it returned (retrying bad data cannot help) and every event is reported
    result = hub_without_poison.ingest(batch)
    assert result.safe and result.rejected == 3 and result.landed == 0


def test_a_large_batch_is_uploaded_in_several_requests_without_loss(hub: HubWorld):
    # GIVEN 200 events of 50 resource-log records each (10,000 rows, several MB)
    template = sample_records("diag_keyvault_auditevent.json")[0]
    bodies = []
    for e in range(200):
        records = [{**template, "correlationId": f"{e:04d}-{i:04d}"} for i in range(50)]
        bodies.append(orjson.dumps({"records": records}))
    # WHEN the batch is ingested
    result = hub.ingest(make_batch(bodies, first_sequence=1))
    # THEN all rows landed once, in several requests under the size limit
    assert result.safe and result.landed == 10_000 and result.requests >= 4
    rows = hub.rows()
    assert len(rows) == len({r["EventId"] for r in rows}) == 10_000


def test_event_metadata_without_trigger_metadata_still_fills_what_the_event_knows(hub: HubWorld):
    # GIVEN events built without trigger metadata (cardinality one, or a test harness)
    import azure.functions as func

    event = func.EventHubEvent(body=orjson.dumps(sample_records("diag_keyvault_auditevent.json")[0]),
                               sequence_number=9, partition_key="k", offset="77", enqueued_time=None)
    # WHEN it is ingested
    result = hub.ingest([event])
    # THEN it lands on the hub named by the setting, with the event's own metadata
    assert result.safe and result.landed == 1 and result.event_hub == HUB
    source = hub.rows()[0]["Source"]
    assert (source["sequence_number"], source["offset"], source["partition_key"]) == (9, "77", "k")


def test_sample_files_are_the_envelope_azure_writes():
    # GIVEN the diagnostic-settings samples under tests/events
    for name in DIAGNOSTIC_SAMPLES:
        document = json.loads(sample(name))
        # THEN each is {"records": [...]} with the common resource-log fields
        assert list(document) == ["records"] and document["records"]
        for record in document["records"]:
            assert {"time", "resourceId", "category"} <= set(record), name


def test_a_bad_record_of_a_large_envelope_is_named_by_its_place(hub: HubWorld):
    # GIVEN an envelope of 12 records, the 6th with a duration that is no number
    records = [dict(sample_records("diag_keyvault_auditevent.json")[0], correlationId=f"c-{n}") for n in range(12)]
    records[5]["durationMs"] = "slow"
    batch = make_batch([orjson.dumps({"records": records})], partition="2", first_sequence=70)
    # WHEN the batch is ingested (the shipped route reads _eventhub: no typed path, the records are decoded)
    result = hub.ingest(batch)
    # THEN the other 11 land, and the bad one is rejected naming its partition, sequence and record
    assert (result.rows, result.landed, result.rejected) == (12, 11, 1)
    (rejection,) = result.rejections
    assert (rejection["partition_id"], rejection["sequence_number"], rejection["record"]) == ("2", 70, 5)
    assert "'DurationMs'" in rejection["reason"]
    assert sorted(r["CorrelationId"] for r in hub.rows()) == sorted(f"c-{n}" for n in range(12) if n != 5)
