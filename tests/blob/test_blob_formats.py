"""Every file format the blob trigger reads, plain and gzip, lands with the right columns."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from tests.blob.conftest import (
    APPLOGS_TABLE,
    RESOURCE_TABLE,
    BlobWorld,
    app_log,
    expected_ids,
    ndjson,
)
from tests.conftest import EVENTS, ROOT

pytestmark = pytest.mark.e2e

EVENTS_10 = [app_log(n, "fmt") for n in range(10)]


def _array(events: list[dict], pretty: bool) -> bytes:
    return orjson.dumps(events, option=orjson.OPT_INDENT_2 if pretty else 0)


FORMATS = {
    "ndjson": ("applogs/x.ndjson", lambda: ndjson(EVENTS_10), "ndjson"),
    "jsonl": ("applogs/x.jsonl", lambda: ndjson(EVENTS_10), "ndjson"),
    "ndjson-sniffed": ("applogs/x.json", lambda: ndjson(EVENTS_10), "ndjson"),
    "json-array": ("applogs/x.json", lambda: _array(EVENTS_10, False), "json"),
    "json-array-pretty": ("applogs/2024/05/01/x.json", lambda: _array(EVENTS_10, True), "json"),
    "records": ("applogs/x.json", lambda: orjson.dumps({"records": EVENTS_10}), "records"),
    "records-pretty": ("applogs/x.json", lambda: orjson.dumps({"records": EVENTS_10}, option=orjson.OPT_INDENT_2),
                       "records"),
}


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_each_json_format_lands_every_event_once(blobs: BlobWorld, kind: str, gzipped: bool):
    # GIVEN a file of 10 app-log events in one of the JSON shapes, plain or gzip (name ends in .gz)
    name, make, detected = FORMATS[kind]
    client = blobs.put(name + (".gz" if gzipped else ""), make(), gzipped=gzipped)
    # WHEN the blob trigger's core reads it
    result = blobs.ingest(client)
    # THEN it detected the format, and every event landed exactly once on the applogs stream
    assert result.status == "done" and result.safe, result.summary()
    assert (result.format, result.compressed) == (detected, gzipped)
    assert (result.landed, result.rejected, result.parked, result.failed) == (10, 0, 0, 0)
    assert sorted(blobs.landed_ids()) == sorted(expected_ids(EVENTS_10, lines=detected == "ndjson"))
    assert blobs.emulator.drops() == []


def test_gzip_is_recognised_by_its_magic_bytes_without_a_gz_suffix(blobs: BlobWorld):
    # GIVEN a gzip NDJSON blob whose name says nothing about compression
    client = blobs.put("applogs/export-0001.ndjson", ndjson(EVENTS_10), gzipped=True)
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN it was inflated and every event landed
    assert (result.compressed, result.format, result.landed) == (True, "ndjson", 10)


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_csv_with_a_header_is_typed_by_the_stream_schema(blobs: BlobWorld, gzipped: bool):
    # GIVEN the CSV sample: a header row, quoted fields with commas and quotes, empty cells
    client = blobs.put("applogs/applogs.csv" + (".gz" if gzipped else ""), (EVENTS / "applogs.csv").read_bytes(),
                       gzipped=gzipped)
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN every record landed, with text turned into the declared types (int, long, real, boolean, datetime)
    assert (result.format, result.landed, result.rejected) == ("csv", 4, 0), result.summary()
    rows = {row["Message"]: row for row in blobs.rows(APPLOGS_TABLE)}
    declined = rows['payment declined: "insufficient funds"']
    assert declined["StatusCode"] == 402 and declined["Success"] is False and declined["DurationMs"] == 48.25
    assert declined["TimeGenerated"].startswith("2024-05-01T11:00:02.5")
    slow = rows["slow query, 830 ms"]
    assert slow["Bytes"] == 70_000_000_000 and slow["DurationMs"] == 830
    posted = rows["POST /cart 201"]
    assert posted.get("DurationMs") is None and posted.get("Bytes") is None  # empty cells are absent, not ""
    assert declined["Properties"]["trace_id"] == "6df14b5799d56fc8c5e014b02020a958"
    assert blobs.emulator.drops() == []


def test_resource_logs_export_lands_one_row_per_record_with_blob_metadata(blobs: BlobWorld):
    # GIVEN resource logs archived by diagnostic settings (JSON Lines, one record per line) with blob metadata
    data = (EVENTS / "resourcelogs_PT1H.json").read_bytes()
    client = blobs.put("resourcelogs/resourceId=/SUBSCRIPTIONS/X/y=2024/m=05/d=01/h=10/m=00/PT1H.json", data,
                       metadata={"exporter": "diagnostic-settings"})
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN each record is a row of the resource-logs stream, and _blob.* filled the Source column
    assert (result.route, result.landed, result.rejected) == ("blob-resourcelogs", 5, 0), result.summary()
    rows = blobs.rows(RESOURCE_TABLE)
    assert sorted(r["OperationName"] for r in rows) == ["GetBlob", "PutBlob", "SecretGet", "SecretGet", "VaultGet"]
    vault = next(r for r in rows if r["OperationName"] == "VaultGet")
    assert vault["DurationMs"] == 21  # "21" in the record: coerced to real
    assert vault["ResourceId"].endswith("/VAULTS/KV-CONTOSO-PROD")
    assert vault["Properties"]["identity"]["claim"]["appid"] == "797f4846-ba00-4fd7-ba43-dac1f8f63013"
    source = vault["Source"]
    assert source["container"] == blobs.container_name
    assert source["name"].endswith("/PT1H.json") and source["path"] == f"{blobs.container_name}/{source['name']}"
    assert source["metadata"] == {"exporter": "diagnostic-settings"}
    assert source["size"] == len(data) and source["etag"] and source["last_modified"].endswith("Z")


def test_diagnostic_settings_envelope_file_is_streamed_record_by_record(blobs: BlobWorld):
    # GIVEN an Activity Log export written as one {"records": [...]} document, gzip
    client = blobs.put("resourcelogs/activity.json.gz", (EVENTS / "activitylog_administrative.json").read_bytes(),
                       gzipped=True)
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN it was read as records (streamed by ijson), one row per record
    assert (result.format, result.landed) == ("records", 2)
    rows = sorted(blobs.rows(RESOURCE_TABLE), key=lambda r: r["TimeGenerated"])
    assert [r["ResultType"] for r in rows] == ["Start", "Success"]
    assert rows[1]["DurationMs"] == 31864 and rows[1]["Level"] == "Information"


def test_route_format_forces_the_decoder_and_maps_blob_metadata(blobs: BlobWorld, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch):
    # GIVEN a route that says `format: csv` for .txt files and maps _blob.* paths into columns
    routes = tmp_path / "relay.yaml"
    routes.write_text(json.dumps({
        "defaults": {"endpoint": "${LOGS_INGESTION_ENDPOINT}", "dcr": "${DCR_IMMUTABLE_ID}",
                     "schema": str(ROOT / "infra" / "dcr" / "relay.json")},
        "routes": [{"name": "exports", "source": "blob", "match": "${RELAY_BLOB_CONTAINER}/exports/*.txt",
                    "format": "csv", "stream": "Custom-AppLogs", "time_field": "timestamp",
                    "map": {"Level": "level", "Message": "message", "Service": "_blob.metadata.team",
                            "Host": "_blob.name"}}],
    }))
    from shared.runtime import reset_relay

    monkeypatch.setenv("RELAY_CONFIG", str(routes))
    reset_relay()
    client = blobs.put("exports/day1.txt", b"timestamp,level,message\n2024-05-01T12:00:00Z,info,from a txt file\n",
                       metadata={"team": "payments"})
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN the route's format was used and the blob metadata filled the mapped columns
    assert (result.route, result.format, result.landed) == ("exports", "csv", 1), result.summary()
    row = blobs.rows(APPLOGS_TABLE)[0]
    assert (row["Message"], row["Service"], row["Host"]) == ("from a txt file", "payments", "exports/day1.txt")
