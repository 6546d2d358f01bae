"""The HTTP trigger end to end: real HttpRequest -> relay -> real SDK over HTTPS -> emulator rows.

Service facts exercised are those of DESIGN.md section 4 (1 MB per call, dropped
mistyped values, 403 = Monitoring Metrics Publisher missing, Retry-After on 429).
"""

from __future__ import annotations

import gzip

import orjson
import pytest

from shared.runtime import reset_relay
from shared.signatures import github_signature
from shared.sources.http import SLICE_BYTES, SLICE_LINES
from tests.conftest import EVENTS, GITHUB_SECRET

pytestmark = pytest.mark.e2e


def app_log(n: int, **fields: object) -> dict:
    return {"timestamp": f"2024-05-01T10:00:{n % 60:02d}Z", "level": "info", "message": f"event {n}",
            "service": "svc", "status": 200, "seq": n, **fields}


def messages(rows: list[dict]) -> list[str]:
    return sorted(row["Message"] for row in rows)


def test_json_object_lands_as_one_row(http, emulator):
    # GIVEN one JSON object for the applogs route
    # WHEN it is posted
    status, summary, _ = http.post("applogs", app_log(1, duration_ms="12.5", user={"id": "u1"}))
    # THEN it is answered 200 and the row holds typed, normalized columns
    assert status == 200, summary
    assert (summary["accepted"], summary["rejected"], summary["parked"]) == (1, 0, 0)
    rows = emulator.rows("AppLogs_CL")
    assert len(rows) == 1
    row = rows[0]
    assert row["Message"] == "event 1" and row["DurationMs"] == 12.5 and row["StatusCode"] == 200
    assert row["Properties"] == {"seq": 1, "user": {"id": "u1"}}
    assert row["TimeGenerated"].startswith("2024-05-01T10:00:01")
    assert len(row["EventId"]) == 32
    assert emulator.drops() == []


def test_json_array_ndjson_and_gzip_all_land(http, emulator):
    # GIVEN the same kind of events as a JSON array, as NDJSON and as gzip NDJSON
    array = [app_log(n) for n in range(3)]
    ndjson = b"\n".join(orjson.dumps(app_log(n)) for n in range(3, 6)) + b"\n"
    # WHEN each is posted
    answers = [
        http.post("applogs", array),
        http.post("applogs", ndjson, {"Content-Type": "application/x-ndjson"}),
        http.post("applogs", b"\n".join(orjson.dumps(app_log(n)) for n in range(6, 9)), gzipped=True),
    ]
    # THEN every one is accepted and all nine rows land once
    assert [(status, body["accepted"]) for status, body, _ in answers] == [(200, 3), (200, 3), (200, 3)]
    assert messages(emulator.rows("AppLogs_CL")) == sorted(f"event {n}" for n in range(9))


def test_sample_ndjson_file_lands_and_the_dcr_transform_filters_trace(http, emulator):
    # GIVEN the sample app log file: five events in five time formats, one at level trace
    body = (EVENTS / "applogs.ndjson").read_bytes()
    # WHEN it is posted gzip-compressed
    status, summary, _ = http.post("applogs", body, {"Content-Type": "application/x-ndjson"}, gzipped=True)
    # THEN all five are accepted, and the DCR's `where Level != "trace"` keeps four in the table
    assert status == 200 and summary["accepted"] == 5
    rows = emulator.rows("AppLogs_CL")
    assert sorted(r["Level"] for r in rows) == ["error", "info", "info", "warning"]
    assert {r["Bytes"] for r in rows} >= {70000000000}
    assert emulator.drops() == []


def test_cloudevents_structured_batch_and_binary(http, emulator):
    # GIVEN a structured CloudEvent, a batch of two and one in binary mode
    structured = (EVENTS / "cloudevent_structured.json").read_bytes()
    batch = (EVENTS / "cloudevents_batch.json").read_bytes()
    # WHEN each is posted with its content mode
    a = http.post("cloudevents", structured, {"Content-Type": "application/cloudevents+json"})
    b = http.post("cloudevents", batch, {"Content-Type": "application/cloudevents-batch+json"})
    c = http.post("cloudevents", b'{"orderId": 9}', {
        "ce-specversion": "1.0", "ce-id": "bin-1", "ce-source": "/contoso/orders", "ce-type": "com.contoso.x",
        "ce-time": "2024-05-01T18:00:00Z",
    })
    # THEN four rows land with the envelope mapped to columns
    assert [x[0] for x in (a, b, c)] == [200, 200, 200]
    rows = {r["EventId"]: r for r in emulator.rows("CloudEvents_CL")}
    assert set(rows) == {"A234-1234-1234", "9aeb0fdf-c01e-0131-0922-9eb54906e209", "A234-1234-1235", "bin-1"}
    assert rows["A234-1234-1234"]["Data"]["orderId"] == 4711
    assert rows["A234-1234-1235"]["TimeGenerated"].startswith("2024-05-01T19:05:00")
    assert rows["bin-1"]["Data"] == {"orderId": 9}


def test_event_grid_subscription_validation_is_answered_and_nothing_uploaded(http, emulator):
    # GIVEN Event Grid's subscription validation handshake
    body = (EVENTS / "eventgrid_subscription_validation.json").read_bytes()
    # WHEN it is posted
    status, answer, _ = http.post("eventgrid", body, {"aeg-event-type": "SubscriptionValidation"})
    # THEN the validation code is echoed and no request reached the service
    assert status == 200
    assert answer == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert emulator.requests() == []


def test_event_grid_events_land(http, emulator):
    status, summary, _ = http.post("eventgrid", (EVENTS / "eventgrid_blob_created.json").read_bytes(),
                                   {"aeg-event-type": "Notification"})
    assert status == 200 and summary["accepted"] == 2
    types = sorted(r["EventType"] for r in emulator.rows("CloudEvents_CL"))
    assert types == ["Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted"]


def test_cloudevents_webhook_options_handshake(http):
    status, _, headers = http.post("cloudevents", b"", {"WebHook-Request-Origin": "eventgrid.azure.net"},
                                   method="OPTIONS")
    assert status == 200
    assert headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def test_github_signed_delivery_lands_with_header_columns(http, emulator):
    # GIVEN a GitHub push delivery signed with the route's secret
    body = (EVENTS / "github_push.json").read_bytes()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "72d3162e",
               "X-Hub-Signature-256": github_signature(GITHUB_SECRET, body)}
    # WHEN it is posted
    status, summary, _ = http.post("github", body, headers)
    # THEN the row carries the event type and delivery id from the headers, and no signature
    assert status == 200, summary
    (row,) = emulator.rows("GitHubEvents_CL")
    assert (row["EventType"], row["Delivery"], row["Repo"], row["Sender"]) == (
        "push", "72d3162e", "Codertocat/Hello-World", "Codertocat")
    assert "X-Hub-Signature-256" not in orjson.dumps(row).decode()


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha1=abc"])
def test_github_unsigned_or_missigned_is_refused_with_401(http, emulator, signature):
    body = (EVENTS / "github_issues_opened.json").read_bytes()
    headers = {"X-GitHub-Event": "issues"}
    if signature:
        headers["X-Hub-Signature-256"] = signature
    status, answer, _ = http.post("github", body, headers)
    assert status == 401
    assert "X-Hub-Signature-256" in answer["error"]
    assert emulator.requests() == []


def test_mistyped_values_are_rejected_per_row_and_the_rest_lands(http, emulator):
    # GIVEN three events, one with a status that is no integer and one with a bad time
    events = [app_log(1), app_log(2, status="two hundred"), app_log(3, timestamp="yesterday")]
    # WHEN they are posted
    status, summary, _ = http.post("applogs", events)
    # THEN the good one lands, the two others are rejected with reasons naming the problem
    assert status == 200
    assert (summary["accepted"], summary["rejected"]) == (1, 2)
    reasons = {r["index"]: r["reason"] for r in summary["rejections"]}
    assert "column 'StatusCode' (int)" in reasons[1]
    assert "time_field 'timestamp'" in reasons[2]
    assert messages(emulator.rows("AppLogs_CL")) == ["event 1"]
    assert emulator.drops() == []  # nothing was sent for the service to drop silently


def test_row_over_the_request_limit_is_rejected_as_record_too_large(http, emulator):
    # GIVEN one event whose row alone is over the 1,000,000-byte request limit, beside a small one
    events = [app_log(1, blob="x" * 1_100_000), app_log(2)]
    # WHEN they are posted
    status, summary, _ = http.post("applogs", events)
    # THEN the big one is rejected with RecordTooLarge and the small one lands
    assert status == 200
    assert summary["rejections"][0]["index"] == 0
    assert summary["rejections"][0]["reason"].startswith("RecordTooLarge")
    assert messages(emulator.rows("AppLogs_CL")) == ["event 2"]


def test_big_batch_is_split_into_requests_under_the_limit(http, emulator):
    # GIVEN 3 MB of events
    events = [app_log(n, pad="p" * 3000) for n in range(1000)]
    # WHEN they are posted
    status, summary, _ = http.post("applogs", events, gzipped=True)
    # THEN several requests carried them, each under the limit, and every row landed once
    assert status == 200 and summary["accepted"] == 1000
    assert summary["requests"] >= 3
    assert all(r["status"] == 204 for r in emulator.requests())
    assert len(emulator.rows("AppLogs_CL")) == 1000


def test_throttling_with_retry_after_is_retried_then_lands(http, emulator):
    # GIVEN the service answers the first call with 429 and Retry-After: 1
    emulator.add_fault(stream="Custom-AppLogs", status=429, retry_after=1, count=1)
    # WHEN events are posted
    status, summary, _ = http.post("applogs", [app_log(1), app_log(2)])
    # THEN the relay waited, retried with the same request id, and the rows landed once
    assert status == 200 and summary["accepted"] == 2
    attempts = emulator.requests()
    assert [a["status"] for a in attempts] == [429, 204]
    assert attempts[0]["client_request_id"] == attempts[1]["client_request_id"]
    assert len(emulator.rows("AppLogs_CL")) == 2


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 500}, {"close": True}])
def test_transient_server_errors_are_retried(http, emulator, fault):
    emulator.add_fault(stream="Custom-AppLogs", count=2, **fault)
    status, summary, _ = http.post("applogs", [app_log(1)])
    assert status == 200 and summary["accepted"] == 1
    assert len(emulator.rows("AppLogs_CL")) == 1


def test_forbidden_names_the_missing_role_and_asks_the_sender_to_retry(http, emulator):
    # GIVEN the identity lacks the role on the DCR (the service answers 403)
    emulator.add_fault(stream="Custom-AppLogs", status=403, count=5)
    # WHEN events are posted (no poison store configured in this test)
    status, summary, headers = http.post("applogs", [app_log(1)])
    # THEN nothing is claimed as landed: 503 + Retry-After, and the reason names the role
    assert status == 503 and headers["Retry-After"]
    failure = summary["failures"][0]
    assert failure["class"] == "forbidden" and failure["permanent"] is False  # transient within the grace window
    assert "Monitoring Metrics Publisher" in failure["message"]
    assert len(emulator.requests()) == 1  # not retried in line: role propagation takes minutes, not seconds


def test_refused_token_is_retried_once_with_a_new_client(http, emulator, monkeypatch):
    # GIVEN a relay whose token the service refuses
    monkeypatch.setenv("RELAY_STATIC_TOKEN", "wrong-token")
    reset_relay()
    # WHEN events are posted
    status, summary, _ = http.post("applogs", [app_log(1)])
    # THEN it tried exactly twice (fresh token once), then asked the sender to retry
    assert status == 503
    assert summary["failures"][0]["class"] == "unauthorized"
    assert [r["status"] for r in emulator.requests()] == [401, 401]


def adds_up(summary: dict) -> bool:
    """received = landed + rejected + parked + deadlettered + failed (DESIGN 2, issue 14)."""
    return summary["received"] == sum(summary[k] for k in ("accepted", "rejected", "parked", "deadlettered", "failed"))


def test_a_malformed_ndjson_line_is_rejected_naming_it_and_the_other_lines_land(http, emulator):
    # GIVEN NDJSON whose second line is not JSON, between two good lines
    body = orjson.dumps(app_log(1)) + b"\n" + b'{"level": "info", "message": oops}\n' + orjson.dumps(app_log(3)) + b"\n"
    # WHEN it is posted
    status, summary, _ = http.post("applogs", body, {"Content-Type": "application/x-ndjson"})
    # THEN 200: line 2 is rejected with its line number, the other two land, and the counts add up
    assert status == 200, summary
    assert (summary["received"], summary["accepted"], summary["rejected"]) == (3, 2, 1) and adds_up(summary)
    assert summary["rejections"] == [
        {"index": 1, "line": 2,
         "reason": "line 2: not valid JSON at column 30: unexpected character, expected a JSON value"}]
    assert messages(emulator.rows("AppLogs_CL")) == ["event 1", "event 3"]


@pytest.mark.parametrize("body, reason", [
    (b"", "body is empty"),
    (b"not json at all", "body is not valid JSON at line 1, column 1"),
    (b"nope\nnot json either\n", "body holds no valid JSON line: line 1"),
    (b"null", "the body holds no event objects: it is null"),
    (b"42", "the body holds no event objects: it is a number"),
    (b'"hello"', "the body holds no event objects: it is a string"),
    (b"true", "the body holds no event objects: it is true or false"),
    (b'{"a": "\xff\xfe"}', "body is not valid JSON"),
], ids=["empty", "not-json", "no-good-line", "null", "number", "string", "boolean", "invalid-utf8"])
def test_a_body_of_which_nothing_decodes_is_400_and_nothing_is_uploaded(http, emulator, body, reason):
    status, answer, _ = http.post("applogs", body, {"Content-Type": "application/json"})
    assert status == 400, answer
    assert answer["error"].startswith(reason)
    assert emulator.requests() == []


def test_bad_gzip_is_400_and_nothing_is_uploaded(http, emulator):
    truncated = gzip.compress(ndjson_of(20))[:-10]
    status, answer, _ = http.post("applogs", truncated, {"Content-Encoding": "gzip"})
    assert status == 400 and answer["error"] == "gzip body is truncated"
    assert emulator.requests() == []


@pytest.mark.parametrize("value, field_reason", [
    (b"NaN", "field 'duration_ms' holds NaN: JSON has no NaN or Infinity"),
    (b"Infinity", "field 'duration_ms' holds Infinity: JSON has no NaN or Infinity"),
    (b"-Infinity", "field 'duration_ms' holds -Infinity: JSON has no NaN or Infinity"),
    (b"1e400", "field 'duration_ms' holds 1e400, a number beyond double range"),
    (b'"\\ud800"', "field 'duration_ms' holds an invalid Unicode escape (a lone surrogate)"),
], ids=["nan", "infinity", "minus-infinity", "1e400", "lone-surrogate"])
def test_an_array_element_json_cannot_carry_is_rejected_naming_the_field_and_the_others_land(
        http, emulator, value, field_reason):
    # GIVEN an array (as Python's json.dumps writes NaN) whose middle element holds what JSON cannot carry
    bad = orjson.dumps(app_log(2)).replace(b'"seq":2', b'"seq":2,"duration_ms":' + value)
    body = b"[" + orjson.dumps(app_log(1)) + b"," + bad + b"," + orjson.dumps(app_log(3)) + b"]"
    # WHEN it is posted
    status, summary, _ = http.post("applogs", body, {"Content-Type": "application/json"})
    # THEN the element is rejected naming the field, its neighbours land, the counts add up
    assert status == 200, summary
    assert (summary["received"], summary["accepted"], summary["rejected"]) == (3, 2, 1) and adds_up(summary)
    assert summary["rejections"] == [{"index": 1, "reason": field_reason}]
    assert messages(emulator.rows("AppLogs_CL")) == ["event 1", "event 3"]
    assert emulator.drops() == []


def test_a_leading_byte_order_mark_is_skipped_in_json_and_ndjson_bodies(http, emulator):
    bom = b"\xef\xbb\xbf"
    a = http.post("applogs", bom + orjson.dumps([app_log(1), app_log(2)]), {"Content-Type": "application/json"})
    b = http.post("applogs", bom + ndjson_of(2, first=3), {"Content-Type": "application/x-ndjson"})
    c = http.post("applogs", bom + orjson.dumps(app_log(5)), {"Content-Type": "application/json"}, gzipped=True)
    assert [(x[0], x[1]["accepted"], x[1]["rejected"]) for x in (a, b, c)] == [(200, 2, 0), (200, 2, 0), (200, 1, 0)]
    assert len(emulator.rows("AppLogs_CL")) == 5


def test_rejections_listed_are_capped_and_all_are_counted(http, emulator):
    # GIVEN 150 bad lines between 50 good ones
    lines = [orjson.dumps(app_log(n)) if n % 4 == 0 else b'{"broken": }' for n in range(200)]
    status, summary, _ = http.post("applogs", b"\n".join(lines), {"Content-Type": "application/x-ndjson"})
    # THEN all 150 are counted, the first 100 listed, the 50 good land
    assert status == 200 and (summary["accepted"], summary["rejected"]) == (50, 150) and adds_up(summary)
    assert len(summary["rejections"]) == 100 and summary["rejections"][0]["line"] == 2


def ndjson_of(count: int, first: int = 0, **fields: object) -> bytes:
    return b"".join(orjson.dumps(app_log(n, **fields)) + b"\n" for n in range(first, first + count))


@pytest.mark.parametrize("shape", ["ndjson", "json array"])
def test_a_body_of_many_slices_lands_whole_in_requests_under_the_limit(http, emulator, shape):
    # GIVEN a body of several decoding slices (SLICE_LINES lines, SLICE_BYTES of an array) and several requests
    count = max(2 * SLICE_LINES, 2 * SLICE_BYTES // 600) + 123  # (an event is over 600 bytes)
    body = ndjson_of(count, pad="p" * 600)
    assert len(body) > 2 * SLICE_BYTES
    content_type = "application/x-ndjson"
    if shape == "json array":
        body, content_type = b"[" + body.rstrip(b"\n").replace(b"\n", b",") + b"]", "application/json"
    # WHEN it is posted, gzipped
    status, summary, _ = http.post("applogs", body, {"Content-Type": content_type}, gzipped=True)
    # THEN every event was accepted once, in requests each under the limit
    assert status == 200 and summary["accepted"] == count and summary["received"] == count, summary
    assert summary["requests"] >= 3 and all(r["status"] == 204 for r in emulator.requests())
    assert messages(emulator.rows("AppLogs_CL")) == sorted(f"event {n}" for n in range(count))


@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/json"])
def test_a_bad_line_past_the_first_slices_is_rejected_and_every_other_line_lands(http, emulator, content_type):
    # GIVEN NDJSON whose bad line comes after two full decoding slices of good events
    good = ndjson_of(2 * SLICE_LINES + 5)
    body = good + b'{"level": "info", "message": oops}\n' + ndjson_of(10, first=10_000)
    bad_line = 2 * SLICE_LINES + 6
    # WHEN it is posted
    status, summary, _ = http.post("applogs", body, {"Content-Type": content_type})
    # THEN that line alone is rejected, naming it; every other line landed once
    assert status == 200, summary
    assert (summary["accepted"], summary["rejected"]) == (2 * SLICE_LINES + 15, 1) and adds_up(summary)
    assert summary["rejections"][0]["line"] == bad_line
    assert summary["rejections"][0]["reason"].startswith(f"line {bad_line}: not valid JSON")
    assert len(emulator.rows("AppLogs_CL")) == 2 * SLICE_LINES + 15


def test_a_long_array_with_a_nan_past_its_first_slices_rejects_that_element_only(http, emulator):
    # GIVEN a JSON array of several slices whose 3000th element holds NaN
    elements = [orjson.dumps(app_log(n, pad="p" * 600)) for n in range(4000)]
    elements[2999] = elements[2999].replace(b'"seq":2999', b'"seq":2999,"duration_ms":NaN')
    body = b"[" + b",".join(elements) + b"]"
    assert len(body) > 2 * SLICE_BYTES
    # WHEN it is posted
    status, summary, _ = http.post("applogs", body, {"Content-Type": "application/json"})
    # THEN element 2999 is rejected naming the field and the 3999 others land
    assert status == 200, summary
    assert (summary["accepted"], summary["rejected"]) == (3999, 1) and adds_up(summary)
    assert summary["rejections"] == [{"index": 2999, "reason": "field 'duration_ms' holds NaN: JSON has no NaN or Infinity"}]
    assert len(emulator.rows("AppLogs_CL")) == 3999


def test_a_long_array_broken_past_its_first_slices_is_400_and_nothing_is_uploaded(http, emulator):
    # GIVEN a JSON array of several slices whose last element is cut short
    elements = [orjson.dumps(app_log(n, pad="p" * 600)) for n in range(4000)]
    body = b"[" + b",".join(elements) + b',{"level": "info", "message": }]'
    assert len(body) > 2 * SLICE_BYTES
    # WHEN it is posted
    status, answer, _ = http.post("applogs", body, {"Content-Type": "application/json"})
    # THEN the answer is 400 naming the position in the body, and not one request went out
    assert status == 400, answer
    assert answer["error"].startswith("body is not valid JSON at line 1, column") and "byte offset" in answer["error"]
    assert emulator.requests() == [] and emulator.rows("AppLogs_CL") == []


def test_unknown_route_is_404(http):
    status, answer, _ = http.post("nosuchroute", [app_log(1)])
    assert status == 404 and "nosuchroute" in answer["error"]


def test_body_over_the_size_limit_is_413_before_parsing(http, emulator, monkeypatch):
    monkeypatch.setenv("RELAY_MAX_BODY_BYTES", "2048")
    reset_relay()
    status, _, _ = http.post("applogs", b"[" + b" " * 4096 + b"]")
    assert status == 413
    bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
    status, answer, _ = http.post("applogs", bomb, {"Content-Encoding": "gzip"})
    assert status == 413 and "decompressed" in answer["error"]
    assert emulator.requests() == []


def test_health_reports_routes_without_secrets(http, relay_env):
    import azure.functions as func

    response = http.health(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    body = orjson.loads(response.get_body())
    assert response.status_code == 200
    assert body["status"] == "ok" and body["routes"] >= 4
    text = response.get_body().decode()
    assert GITHUB_SECRET not in text and relay_env["DCR_IMMUTABLE_ID"] not in text


def test_broken_configuration_is_503_with_the_problem_named(http, monkeypatch, tmp_path):
    broken = tmp_path / "relay.yaml"
    broken.write_text("routes:\n  - name: x\n    source: ftp\n")
    monkeypatch.setenv("RELAY_CONFIG", str(broken))
    reset_relay()
    status, answer, headers = http.post("applogs", [app_log(1)])
    assert status == 503 and headers["Retry-After"]
    assert "route 'x': source" in answer["error"]


# --- CloudEvents in full (issue 14): the spec's own examples ---------------------------------------------


def test_cloudevents_spec_batch_example_decodes_data_base64_by_its_datacontenttype(http, emulator):
    # GIVEN the JSON format spec's batch example (binary thrift data_base64 beside JSON data), plus JSON data_base64
    body = (EVENTS / "cloudevents_spec_batch.json").read_bytes()
    # WHEN it is posted as a batch
    status, summary, _ = http.post("cloudevents", body, {"Content-Type": "application/cloudevents-batch+json"})
    # THEN all three land: binary data kept as its base64 string, JSON data_base64 parsed, JSON data as is
    assert status == 200 and (summary["accepted"], summary["rejected"]) == (3, 0) and adds_up(summary)
    rows = {r["EventId"]: r for r in emulator.rows("CloudEvents_CL")}
    assert rows["B234-1234-1234"]["Data"] == "CwABAAAABWhlbGxvAA=="
    assert rows["C234-1234-1234"]["Data"] == {"appinfoA": "abc", "appinfoB": 123, "appinfoC": True}
    assert rows["D234-1234-1234"]["Data"] == {"appinfoA": "abc", "appinfoB": 123}


def test_cloudevents_spec_structured_example_with_text_data_lands(http, emulator):
    body = (EVENTS / "cloudevent_spec_structured_xml.json").read_bytes()
    status, summary, _ = http.post("cloudevents", body, {"Content-Type": "application/cloudevents+json"})
    assert status == 200 and summary["accepted"] == 1
    (row,) = emulator.rows("CloudEvents_CL")
    assert (row["EventId"], row["Data"], row["SpecVersion"]) == ("A234-1234-1234", '<much wow="xml"/>', "1.0")


def test_cloudevents_spec_binary_example_percent_decodes_ce_headers(http, emulator):
    # GIVEN the HTTP binding's binary mode example, its subject percent-encoded as the binding requires
    headers = {"ce-specversion": "1.0", "ce-type": "com.example.someevent", "ce-time": "2018-04-05T03:56:24Z",
               "ce-id": "1234-1234-1234", "ce-source": "/mycontext/subcontext", "ce-subject": "caf%C3%A9",
               "Content-Type": "application/json; charset=utf-8"}
    status, summary, _ = http.post("cloudevents", b'\xef\xbb\xbf{"appinfoA": "abc"}', headers)
    assert status == 200 and summary["accepted"] == 1, summary
    (row,) = emulator.rows("CloudEvents_CL")
    assert (row["Subject"], row["Source"], row["Data"]) == ("café", "/mycontext/subcontext", {"appinfoA": "abc"})


def test_cloudevents_binary_mode_keeps_binary_data_as_base64(http, emulator):
    headers = {"ce-specversion": "1.0", "ce-type": "t", "ce-id": "bin-2", "ce-source": "/s",
               "Content-Type": "application/vnd.apache.thrift.binary"}
    status, _, _ = http.post("cloudevents", b"\x0b\x00\x01\xff", headers)
    assert status == 200
    assert emulator.rows("CloudEvents_CL")[0]["Data"] == "CwAB/w=="


def test_a_bad_cloudevent_of_a_batch_is_rejected_and_the_others_land(http, emulator):
    events = orjson.loads((EVENTS / "cloudevents_spec_batch.json").read_bytes())
    events[0]["data_base64"] = "not base64!"
    del events[2]["source"]
    status, summary, _ = http.post("cloudevents", orjson.dumps(events),
                                   {"Content-Type": "application/cloudevents-batch+json"})
    assert status == 200 and (summary["accepted"], summary["rejected"]) == (1, 2) and adds_up(summary)
    assert summary["rejections"] == [
        {"index": 0, "reason": "CloudEvent #0: data_base64 is not base64 (RFC 4648)"},
        {"index": 2, "reason": "CloudEvent #2 lacks required attribute(s): source"}]
    assert [r["EventId"] for r in emulator.rows("CloudEvents_CL")] == ["C234-1234-1234"]
