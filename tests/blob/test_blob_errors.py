"""Bad input in a blob: the bad part is rejected with its line, the rest still lands; nothing is skipped silently."""

from __future__ import annotations

import gzip
import logging
from typing import Any

import orjson
import pytest

from tests.blob.conftest import APPLOGS_TABLE, BlobWorld, app_log, expected_ids, ndjson
from tests.conftest import user_function

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_a_malformed_line_in_the_middle_is_rejected_by_line_number_and_the_rest_lands(blobs: BlobWorld,
                                                                                       gzipped: bool):
    # GIVEN 100 NDJSON lines where line 50 is cut short and line 70 has a value the stream cannot hold
    events = [app_log(n, "mid") for n in range(100)]
    lines = ndjson(events).split(b"\n")
    lines[49] = lines[49][:25]
    lines[69] = orjson.dumps({**events[69], "status": "two hundred"})
    client = blobs.put("applogs/broken.ndjson" + (".gz" if gzipped else ""), b"\n".join(lines), gzipped=gzipped)
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN the two bad lines are rejected, named by line number, and the 98 others landed once
    assert result.safe and result.status == "done"
    assert (result.landed, result.rejected) == (98, 2), result.summary()
    reasons = [r["reason"] for r in result.rejections]
    assert reasons[0].startswith("line 50: not valid JSON")
    assert reasons[1].startswith("line 70: column 'StatusCode' (int)")
    good = [e for i, e in enumerate(events) if i not in (49, 69)]
    assert sorted(blobs.landed_ids()) == sorted(expected_ids(good, lines=True))


def test_a_csv_record_with_the_wrong_field_count_is_rejected_and_the_rest_lands(blobs: BlobWorld):
    # GIVEN a CSV file with one short record in the middle
    text = b"timestamp,level,message,status\n" + b"".join(
        b"2024-05-01T10:00:%02dZ,info,row %d,200\n" % (n, n) for n in range(10)
    )
    rows = text.split(b"\n")
    rows[5] = b"2024-05-01T10:00:04Z,info"
    client = blobs.put("applogs/short.csv", b"\n".join(rows))
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN that record is rejected with its line and field count; the others landed
    assert (result.landed, result.rejected) == (9, 1)
    assert result.rejections[0]["reason"] == "line 6: 2 fields, the header has 4"


def test_a_truncated_json_array_keeps_what_came_before_and_says_where_it_broke(blobs: BlobWorld):
    # GIVEN a JSON array cut off inside its 8th element
    events = [app_log(n, "arr") for n in range(10)]
    text = orjson.dumps(events)
    cut = text.index(b'"arr event 7"')
    client = blobs.put("applogs/cut.json", text[:cut])
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN the 7 complete elements landed and the rejection names element 8 and the rest of the file
    assert result.safe and (result.landed, result.rejected) == (7, 1)
    assert result.rejections[0]["reason"].startswith("element 8: not valid JSON")
    assert "the rest of the file cannot be read" in result.rejections[0]["reason"]


def test_a_truncated_gzip_file_lands_what_inflated_and_reports_the_corruption(blobs: BlobWorld):
    # GIVEN a gzip NDJSON blob that lost its last bytes in transfer
    events = [app_log(n, "trunc") for n in range(2000)]
    data = gzip.compress(ndjson(events))
    client = blobs.put("applogs/truncated.ndjson.gz", data[: len(data) - 200])
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN the complete lines landed once, and the file-level problem is a rejection, not a silent stop
    assert result.safe and result.landed > 0 and result.rejected >= 1
    assert any("gzip data is truncated" in r["reason"] for r in result.rejections)
    landed = blobs.landed_ids()
    assert len(landed) == len(set(landed)) == result.landed
    assert set(landed) <= set(expected_ids(events, lines=True))


def test_a_blob_no_route_matches_is_reported_left_in_place_and_recorded(blobs: BlobWorld,
                                                                          caplog: pytest.LogCaptureFixture):
    # GIVEN a blob under a path no blob route's glob matches
    client = blobs.put("unknown/team-x/data.ndjson", ndjson([app_log(1, "lost")]))
    # WHEN the decorated blob function runs on it
    caplog.set_level(logging.ERROR, logger="relay.blob")
    user_function("blob_ingest")(client)  # returns: retrying cannot route it
    result = blobs.ingest(client)
    # THEN it is an error in the log, an 'unrouted' result naming the globs, a marker checkpoint, and no rows
    assert result.status == "unrouted" and result.safe
    assert "no blob route matches" in result.message and "/applogs/*" in result.message
    assert any("unknown/team-x/data.ndjson" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert blobs.checkpoint("unknown/team-x/data.ndjson")["status"] == "unrouted"
    assert client.exists()  # left where it was
    assert blobs.rows(APPLOGS_TABLE) == []


def test_a_file_whose_format_cannot_be_told_is_rejected_whole_with_the_reason(blobs: BlobWorld):
    # GIVEN binary content with a name that says no format
    client = blobs.put("applogs/dump.bin", b"\x00\x01\x02 not text")
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN the whole file is rejected (no retry can help) with a reason that says how to fix it
    assert result.status == "unreadable" and result.safe and result.rejected == 1
    assert "set the route's format" in result.message
    assert blobs.checkpoint("applogs/dump.bin")["status"] == "unreadable"


def test_a_blob_deleted_before_the_trigger_ran_is_nothing_to_do(blobs: BlobWorld):
    # GIVEN a blob created and deleted before its event was handled
    client = blobs.put("applogs/gone.ndjson", ndjson([app_log(1)]))
    client.delete_blob()
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN the run says so and does not fail
    assert (result.status, result.safe) == ("gone", True)


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_ndjson_lines_json_cannot_carry_are_rejected_naming_the_field_and_the_rest_lands(blobs: BlobWorld,
                                                                                          gzipped: bool):
    # GIVEN an NDJSON file after a byte order mark whose lines 3, 5 and 7 hold NaN, 1e400 and a lone surrogate
    events = [app_log(n, "hostile") for n in range(10)]
    lines = ndjson(events).split(b"\n")
    for number, value in ((3, b"NaN"), (5, b"1e400"), (7, b'"\\ud800"')):
        lines[number - 1] = lines[number - 1].replace(b'"status":200', b'"status":' + value)
    client = blobs.put("applogs/hostile.ndjson" + (".gz" if gzipped else ""), b"\xef\xbb\xbf" + b"\n".join(lines),
                       gzipped=gzipped)
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN each of the three is rejected by line, naming the field; the seven others land; the counts add up
    assert result.safe and (result.landed, result.rejected) == (7, 3), result.summary()
    assert result.received == result.landed + result.rejected + result.parked + result.deadlettered + result.failed
    assert [r["reason"] for r in result.rejections] == [
        "line 3: field 'status' holds NaN: JSON has no NaN or Infinity",
        "line 5: field 'status' holds 1e400, a number beyond double range",
        "line 7: field 'status' holds an invalid Unicode escape (a lone surrogate)",
    ]
    good = [e for i, e in enumerate(events) if i not in (2, 4, 6)]
    assert sorted(blobs.landed_ids()) == sorted(expected_ids(good, lines=True))


@pytest.mark.parametrize("name, body", [
    ("applogs/bom.json", lambda events: orjson.dumps(events)),
    ("applogs/bom-records.json", lambda events: orjson.dumps({"records": events})),
    ("applogs/bom.csv", lambda events: b"timestamp,level,message,status\n" + b"".join(
        f"{e['timestamp']},info,{e['message']},200\n".encode() for e in events)),
], ids=["json-array", "records", "csv"])
def test_a_byte_order_mark_before_a_json_array_records_document_or_csv_is_skipped(blobs: BlobWorld, name, body):
    events = [app_log(n, "bom") for n in range(5)]
    client = blobs.put(name, b"\xef\xbb\xbf" + body(events))
    result = blobs.ingest(client)
    assert result.safe and (result.landed, result.rejected) == (5, 0), result.summary()


def test_a_lone_low_surrogate_in_a_json_array_is_a_rejection_not_a_crash(blobs: BlobWorld):
    # GIVEN a JSON array whose 3rd element holds "\udc00x" (the streaming parser raises UnicodeDecodeError on it)
    events = [app_log(n, "low") for n in range(5)]
    text = orjson.dumps(events).replace(b'"low event 2"', b'"\\udc00x"')
    result = blobs.ingest(blobs.put("applogs/low.json", text))
    # THEN the run completes: the element is rejected naming its field, the elements before and after it
    # landed (issue 14: one bad element no longer costs the rest of the file)
    assert result.safe and result.landed == 4 and result.rejected == 1, result.summary()
    assert result.rejections[0]["reason"] == "element 3: field 'message' holds an invalid Unicode escape (a lone surrogate)"
    assert sorted(blobs.landed_ids()) == sorted(expected_ids(events[:2] + events[3:]))


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_json_array_elements_json_cannot_carry_are_rejected_by_index_and_the_rest_lands(blobs: BlobWorld,
                                                                                        gzipped: bool):
    # GIVEN a JSON array (as Python's json.dumps writes NaN) whose elements 3, 5, 7, 9 and 10 hold NaN,
    # Infinity, 1e400, a lone high surrogate escape (which the streaming parser would read as "?") and -Infinity
    events = [app_log(n, "arrbad") for n in range(12)]
    elements = [orjson.dumps(event) for event in events]
    for number, value in ((3, b"NaN"), (5, b"Infinity"), (7, b"1e400"), (9, b'"\\ud800"'), (10, b"-Infinity")):
        elements[number - 1] = elements[number - 1].replace(b'"status":200', b'"status":' + value)
    client = blobs.put("applogs/hostile.json" + (".gz" if gzipped else ""), b"[" + b",".join(elements) + b"]",
                       gzipped=gzipped)
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN each is rejected by its element number, naming the field as the HTTP path does; the seven others,
    # before and after them, land once; the counts add up
    assert result.safe and result.status == "done" and result.format == "json", result.summary()
    assert (result.landed, result.rejected) == (7, 5), result.summary()
    assert result.received == result.landed + result.rejected + result.parked + result.deadlettered + result.failed
    assert result.rejections == [
        {"element": 3, "reason": "element 3: field 'status' holds NaN: JSON has no NaN or Infinity"},
        {"element": 5, "reason": "element 5: field 'status' holds Infinity: JSON has no NaN or Infinity"},
        {"element": 7, "reason": "element 7: field 'status' holds 1e400, a number beyond double range"},
        {"element": 9, "reason": "element 9: field 'status' holds an invalid Unicode escape (a lone surrogate)"},
        {"element": 10, "reason": "element 10: field 'status' holds -Infinity: JSON has no NaN or Infinity"},
    ]
    good = [e for i, e in enumerate(events) if i + 1 not in (3, 5, 7, 9, 10)]
    assert sorted(blobs.landed_ids()) == sorted(expected_ids(good))
    checkpoint = blobs.checkpoint("applogs/hostile.json" + (".gz" if gzipped else ""))
    assert (checkpoint["status"], checkpoint["handled"], checkpoint["landed"], checkpoint["rejected"]) == (
        "done", 12, 7, 5)


def test_a_big_json_array_with_bad_elements_resumes_after_a_crash_with_every_good_row_once(blobs: BlobWorld):
    # GIVEN a gzip JSON array of 4,000 events over many chunks, a NaN in every 500th element, and a worker
    # that dies after the 3rd chunk
    events = [app_log(n, "arrcrash", detail="x" * 120) for n in range(4_000)]
    bad = {n for n in range(4_000) if n % 500 == 250}
    elements = [orjson.dumps(e) for e in events]
    for n in bad:
        elements[n] = elements[n].replace(b'"status":200', b'"status":NaN')
    client = blobs.put("applogs/crash.json.gz", b"[" + b",".join(elements) + b"]", gzipped=True)

    def crash(number: int, outcome: Any) -> None:
        if number == 3:
            raise SystemExit("worker recycled")

    with pytest.raises(SystemExit):
        blobs.ingest(client, chunk_bytes=50_000, in_flight=1, checkpoint_every_seconds=0, on_chunk=crash)
    saved = blobs.checkpoint("applogs/crash.json.gz")
    assert saved["status"] == "in_progress" and 0 < saved["handled"] < 4_000
    # WHEN the host runs the blob again
    result = blobs.ingest(client, chunk_bytes=50_000, in_flight=1)
    # THEN it resumed after the dead run's checkpoint, every good event is in the table exactly once, and
    # the checkpoint counts every element once: landed or rejected by its number
    assert result.status == "done" and result.safe and result.resumed_from == saved["handled"], result.summary()
    assert result.received == result.landed + result.rejected + result.parked + result.deadlettered + result.failed
    landed = blobs.landed_ids()
    good = [e for n, e in enumerate(events) if n not in bad]
    assert len(landed) == len(set(landed)) and sorted(landed) == sorted(expected_ids(good))
    done = blobs.checkpoint("applogs/crash.json.gz")
    assert (done["status"], done["handled"], done["landed"], done["rejected"]) == (
        "done", 4_000, 4_000 - len(bad), len(bad))
    assert {r["element"] for r in result.rejections} == {n + 1 for n in bad if n >= saved["handled"]}


def test_a_csv_record_over_the_size_limit_is_rejected_by_line_not_dropped(blobs: BlobWorld):
    from shared.sources.blob import DEFAULT_MAX_EVENT_BYTES

    # GIVEN a CSV file whose fourth record is longer than the event size limit
    rows = [b"timestamp,level,message,status"] + [b"2024-05-01T10:00:%02dZ,info,row %d,200" % (n, n) for n in range(6)]
    rows[4] = b"2024-05-01T10:00:03Z,info," + b"x" * DEFAULT_MAX_EVENT_BYTES + b",200"
    client = blobs.put("applogs/long.csv", b"\n".join(rows) + b"\n")
    # WHEN it is ingested
    result = blobs.ingest(client)
    # THEN that record is rejected with its line number (it was dropped without a word before); the others landed
    assert (result.landed, result.rejected) == (5, 1)
    assert result.rejections[0]["reason"] == "line 5: longer than the event size limit"
