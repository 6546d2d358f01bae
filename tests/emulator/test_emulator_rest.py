"""The ingestion route answers like the Logs Ingestion API (DESIGN.md §4, §6), over raw HTTPS."""

from __future__ import annotations

import gzip
import json

import pytest
from emu_support import API, RELAY_DCR, RawClient, write_dcr

from emulator import immutable_id_for
from emulator.server import MAX_BODY, Emulator

LIMIT_MESSAGE = "Maximum allowed content length: 1048576 bytes"


def typed_row(**values):
    return {"TimeGenerated": "2024-05-01T10:00:00Z", **values}


def padded_array(total: int) -> bytes:
    """A valid JSON array of exactly ``total`` bytes (whitespace padding)."""
    head = b'[{"S": "x"}'
    return head + b" " * (total - len(head) - 1) + b"]"


# --------------------------------------------------------------------------- success


def test_valid_rows_are_stored_and_answered_204_without_body(emu, client):
    # GIVEN two rows that fit the Custom-Typed stream declaration
    rows = [
        typed_row(S="a", I=1, L=2**40, R=1.5, B=True, D={"k": [1, 2]}),
        typed_row(S="b", I=-(2**31), L=-1, R=3, B=False, D="text"),
    ]
    # WHEN they are posted
    reply = client.ingest("Custom-Typed", rows)
    # THEN the service contract holds: 204, no body
    assert reply.status == 204 and reply.body == b""
    # AND the rows landed in the output table (Custom- prefix removed), dynamic decoded back
    assert emu.rows("Typed_CL") == [
        {
            "TimeGenerated": "2024-05-01T10:00:00Z",
            "S": "a",
            "I": 1,
            "L": 2**40,
            "R": 1.5,
            "B": True,
            "D": {"k": [1, 2]},
        },
        {
            "TimeGenerated": "2024-05-01T10:00:00Z",
            "S": "b",
            "I": -(2**31),
            "L": -1,
            "R": 3.0,
            "B": False,
            "D": "text",
        },
    ]
    assert emu.drops() == []


def test_datetime_forms_are_normalised_to_utc(emu, client):
    # GIVEN ISO 8601 datetimes with Z, an offset, no zone, a space and 7 fractional digits
    stamps = [
        "2024-05-01T10:00:00Z",
        "2024-05-01T12:00:00+02:00",
        "2024-05-01T10:00:00",
        "2024-05-01 10:00:00",
        "2024-05-01T10:00:00.1234567Z",
    ]
    # WHEN they are posted
    assert client.ingest("Custom-Typed", [{"TimeGenerated": s} for s in stamps]).status == 204
    # THEN all land as UTC with Z (none is dropped)
    assert [r["TimeGenerated"] for r in emu.rows("Typed_CL")] == [
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00.123456Z",
    ]
    assert emu.drops() == []


def test_gzip_body_is_decompressed(emu, client):
    # GIVEN a gzip-compressed body with Content-Encoding: gzip
    reply = client.ingest("Custom-Typed", [typed_row(S="zipped")], gzipped=True)
    # THEN it is accepted and stored
    assert reply.status == 204
    assert [r["S"] for r in emu.rows("Typed_CL")] == ["zipped"]
    assert emu.requests()[-1]["content_encoding"] == "gzip"


def test_empty_array_is_accepted(emu, client):
    assert client.ingest("Custom-Typed", []).status == 204
    assert emu.rows("Typed_CL") == []


def test_request_log_records_the_client_request_id(emu, client):
    # GIVEN a request carrying x-ms-client-request-id
    reply = client.ingest("Custom-Typed", [typed_row()], headers={"x-ms-client-request-id": "req-123"})
    # THEN the answer echoes it and the request log records it with the outcome
    assert reply.headers["x-ms-client-request-id"] == "req-123"
    assert reply.headers["x-ms-request-id"]
    (entry,) = emu.requests()
    assert entry["client_request_id"] == "req-123"
    assert entry["status"] == 204 and entry["rows"] == 1 and entry["rows_written"] == 1
    assert entry["stream"] == "Custom-Typed" and entry["dcr"] == client.dcr_id


# --------------------------------------------------------------------------- drops


def test_undeclared_column_is_dropped_and_reported_while_the_row_lands(emu, client):
    # GIVEN a row with one column the stream does not declare and one differing only in case
    reply = client.ingest("Custom-Typed", [typed_row(S="kept", Extra="gone", s="case")])
    # THEN the request succeeds (as the service would: 204) and the row lands without them
    assert reply.status == 204
    (row,) = emu.rows("Typed_CL")
    assert row["S"] == "kept" and "Extra" not in row
    # AND the drop report says which column of which row, and why
    drops = {d["column"]: d for d in emu.drops()}
    assert drops["Extra"]["reason"] == "undeclared column"
    assert drops["Extra"]["row"] == 0 and drops["Extra"]["value"] == "gone"
    assert drops["Extra"]["table"] == "Typed_CL" and drops["Extra"]["stream"] == "Custom-Typed"
    assert drops["s"]["reason"] == "undeclared column (did you mean 'S'?)"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("S", 5),  # string must be a JSON string
        ("I", 2**31),  # int is 32-bit signed
        ("I", "7"),  # numeric strings are not numbers
        ("I", 1.5),
        ("L", 2**63),  # long is 64-bit signed
        ("R", "1.5"),
        ("R", True),
        ("B", "true"),  # boolean must be a JSON bool
        ("B", 1),
        ("TimeGenerated", "yesterday"),  # datetime must be ISO 8601
        ("TimeGenerated", 1714557600),
    ],
)
def test_mistyped_value_is_nulled_and_reported_while_the_rest_of_the_row_lands(emu, client, column, value):
    # GIVEN a row where one value does not fit its declared type
    row = {"TimeGenerated": "2024-05-01T10:00:00Z", "S": "s", "I": 1, "L": 1, "R": 1.0, "B": True}
    row[column] = value
    # WHEN it is posted
    assert client.ingest("Custom-Typed", [row]).status == 204
    # THEN that value is null, the other columns landed
    (stored,) = emu.rows("Typed_CL")
    assert stored[column] is None
    assert all(stored[c] is not None for c in ("TimeGenerated", "S", "I", "L", "R", "B") if c != column)
    # AND the drop report names the column with a "mistyped" reason and the value
    (drop,) = emu.drops()
    assert drop["column"] == column and drop["reason"].startswith("mistyped")
    assert drop["row"] == 0 and drop["value"] == (value if isinstance(value, str) else json.dumps(value))


def test_real_accepts_integers_and_int_accepts_integral_numbers(emu, client):
    assert client.ingest("Custom-Typed", [typed_row(R=3, I=4.0, L=-2.0)]).status == 204
    (row,) = emu.rows("Typed_CL")
    assert (row["R"], row["I"], row["L"]) == (3.0, 4, -2)
    assert emu.drops() == []


def test_string_over_64kb_is_truncated_and_reported(emu, client):
    # GIVEN a value over the service's 64 KB field limit
    assert client.ingest("Custom-Typed", [typed_row(S="x" * 70_000)]).status == 204
    # THEN it is cut to 65,536 bytes, as the service does, and the cut is reported
    (row,) = emu.rows("Typed_CL")
    assert len(row["S"]) == 65_536
    (drop,) = emu.drops()
    assert drop["column"] == "S" and drop["reason"].startswith("truncated")


def test_drop_row_index_is_the_position_in_the_request(emu, client):
    rows = [typed_row(I=1), typed_row(I="two"), typed_row(I=3)]
    assert client.ingest("Custom-Typed", rows).status == 204
    assert [d["row"] for d in emu.drops()] == [1]
    assert [r["I"] for r in emu.rows("Typed_CL")] == [1, None, 3]


# --------------------------------------------------------------------------- 401 / 404 / 400


def test_missing_bearer_token_is_401(emu, client):
    reply = client.ingest("Custom-Typed", [typed_row()], token=None)
    assert reply.status == 401 and reply.error_code == "InvalidToken"
    basic = client.ingest("Custom-Typed", [typed_row()], token=None, headers={"Authorization": "Basic eDp5"})
    assert basic.status == 401
    assert emu.rows("Typed_CL") == []
    assert [r["status"] for r in emu.requests()] == [401, 401]


def test_wrong_token_is_401_when_the_emulator_expects_one(tmp_path):
    # GIVEN an emulator started with an expected token
    with Emulator([write_dcr(tmp_path)], tmp_path / "state", token="right") as emu:
        client = RawClient(emu)
        # WHEN a different token is used THEN 401; the right one gets 204
        wrong = client.ingest("Custom-Typed", [typed_row()], token="wrong")
        assert wrong.status == 401 and wrong.error_code == "InvalidToken"
        assert client.ingest("Custom-Typed", [typed_row()], token="right").status == 204
        assert len(emu.rows("Typed_CL")) == 1


def test_unknown_dcr_is_404(emu, client):
    reply = client.ingest("Custom-Typed", [typed_row()], dcr="dcr-00000000000000000000000000000000")
    assert reply.status == 404 and reply.error_code == "InvalidDataCollectionRule"


def test_unknown_stream_is_404_naming_the_declared_streams(emu, client):
    reply = client.ingest("Custom-Nope", [typed_row()])
    assert reply.status == 404 and reply.error_code == "InvalidStream"
    assert "Custom-Typed" in reply.json["error"]["message"]


def test_unknown_path_is_404(client):
    assert client.request("POST", "/somewhere", b"[]", {"Authorization": "Bearer t"}).status == 404


@pytest.mark.parametrize("query", ["", "api-version=2020-01-01"])
def test_missing_or_unsupported_api_version_is_400(emu, client, query):
    reply = client.ingest("Custom-Typed", [typed_row()], query=query)
    assert reply.status == 400
    assert reply.error_code in ("MissingApiVersionParameter", "InvalidApiVersionParameter")


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        (b'{"S": "object, not array"}', "JSON array"),
        (b'"text"', "JSON array"),
        (b"[{]", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[NaN]", "not valid JSON"),
        (b'[{"S": "ok"}, 5]', "Element 1"),
        (b'[{"S": "ok"}, ["x"]]', "Element 1"),
        (b'[{"S": "\xff"}]', "UTF-8"),
    ],
)
def test_body_that_is_not_a_utf8_json_array_of_objects_is_400(emu, client, body, message_part):
    reply = client.ingest("Custom-Typed", raw=body)
    assert reply.status == 400
    assert message_part in reply.json["error"]["message"]
    assert emu.rows("Typed_CL") == []  # nothing of a rejected request lands


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-ndjson", "application/json; charset=latin-1"]
)
def test_wrong_content_type_is_400(emu, client, content_type):
    reply = client.ingest("Custom-Typed", [typed_row()], content_type=content_type)
    assert reply.status == 400 and reply.error_code == "InvalidContentType"


def test_content_type_with_utf8_charset_is_accepted(client):
    reply = client.ingest("Custom-Typed", [typed_row()], content_type="application/json; charset=UTF-8")
    assert reply.status == 204


def test_corrupt_gzip_is_400(client):
    reply = client.ingest("Custom-Typed", raw=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    assert reply.status == 400 and reply.error_code == "InvalidContentEncoding"


# --------------------------------------------------------------------------- 413


def test_body_of_exactly_the_limit_is_accepted(emu, client):
    # GIVEN a body of exactly 1,048,576 bytes (the documented limit)
    reply = client.ingest("Custom-Typed", raw=padded_array(MAX_BODY))
    assert reply.status == 204
    assert emu.requests()[-1]["bytes"] == MAX_BODY


def test_body_over_the_limit_is_413(emu, client):
    # GIVEN a body one byte over 1,048,576
    reply = client.ingest("Custom-Typed", raw=padded_array(MAX_BODY + 1))
    # THEN 413 ContentLengthLimitExceeded with the service's message; nothing stored
    assert reply.status == 413 and reply.error_code == "ContentLengthLimitExceeded"
    assert reply.json["error"]["message"] == LIMIT_MESSAGE
    assert emu.rows("Typed_CL") == []


def test_gzipped_body_over_the_limit_once_decompressed_is_413(emu, client):
    # GIVEN a small gzip body that inflates past the limit (the limit holds for uncompressed data too)
    body = padded_array(MAX_BODY + 1)
    reply = client.ingest("Custom-Typed", raw=body, gzipped=True)
    assert len(gzip.compress(body)) < 10_000
    assert reply.status == 413 and reply.json["error"]["message"] == LIMIT_MESSAGE


def test_gzipped_body_at_the_limit_once_decompressed_is_accepted(client):
    assert client.ingest("Custom-Typed", raw=padded_array(MAX_BODY), gzipped=True).status == 204


def test_wire_body_over_the_limit_is_413_even_if_gzipped(client):
    # GIVEN incompressible bytes over the limit sent as gzip: rejected on the wire size already
    import os

    noise = gzip.compress(os.urandom(MAX_BODY + 1024), compresslevel=0)
    reply = client.ingest("Custom-Typed", raw=noise, headers={"Content-Encoding": "gzip"})
    assert reply.status == 413 and reply.error_code == "ContentLengthLimitExceeded"


def test_connection_stays_usable_after_a_413(client):
    # GIVEN one keep-alive connection
    import http.client

    conn = http.client.HTTPSConnection("127.0.0.1", client.emu.port, context=client.context, timeout=10)
    headers = {"Authorization": "Bearer t", "Content-Type": "application/json"}
    path = f"/dataCollectionRules/{client.dcr_id}/streams/Custom-Typed?api-version=2023-01-01"
    try:
        # WHEN an oversized body is refused
        conn.request("POST", path, padded_array(MAX_BODY + 10), headers)
        first = conn.getresponse()
        first.read()
        # THEN the next request on the same connection is answered normally
        conn.request("POST", path, b"[]", headers)
        second = conn.getresponse()
        second.read()
    finally:
        conn.close()
    assert (first.status, second.status) == (413, 204)


# --------------------------------------------------------------------------- control endpoints


def test_control_endpoints_show_health_rows_drops_requests_and_reset(emu, client):
    client.ingest("Custom-Typed", [typed_row(S="a", Extra=1)], headers={"x-ms-client-request-id": "c1"})
    health = client.control("GET", "health")
    assert health.status == 200 and health.json["status"] == "ok"
    assert health.json["dcrs"] == emu.dcr_ids and "Typed_CL" in health.json["tables"]
    assert [r["S"] for r in client.control("GET", "rows?table=Typed_CL").json] == ["a"]
    assert client.control("GET", "rows?table=Nope_CL").status == 404
    assert [d["column"] for d in client.control("GET", "drops").json] == ["Extra"]
    assert [r["client_request_id"] for r in client.control("GET", "requests").json] == ["c1"]
    assert client.control("POST", "reset").status == 204
    assert emu.rows("Typed_CL") == [] and emu.drops() == [] and emu.requests() == []


def test_fault_rules_can_be_added_listed_and_cleared_over_http(emu, client):
    created = client.control("POST", "faults", {"stream": "Custom-Typed", "status": 503, "count": 1})
    assert created.status == 201 and created.json["id"]
    assert client.ingest("Custom-Typed", [typed_row()]).status == 503
    assert client.ingest("Custom-Typed", [typed_row()]).status == 204
    client.control("POST", "faults", {"stream": "*", "status": 500})
    assert len(client.control("GET", "faults").json) == 1
    assert client.control("DELETE", "faults").status == 204
    assert client.ingest("Custom-Typed", [typed_row()]).status == 204


def test_invalid_fault_rule_is_400(client):
    assert client.control("POST", "faults", {"stream": "x"}).status == 400  # no action
    assert client.control("POST", "faults", {"status": 429, "bogus": 1}).status == 400
    assert client.control("POST", "faults", {"status": 429, "fraction": 2}).status == 400


# --------------------------------------------------------------------------- DCR ids and the relay DCR


def test_dcr_served_under_an_explicit_immutable_id(tmp_path):
    dcr = write_dcr(tmp_path, "named")
    with Emulator([f"{dcr}=dcr-abc123"], tmp_path / "state") as emu:
        assert emu.dcr_ids == {"named": "dcr-abc123"}
        assert RawClient(emu).ingest("Custom-Typed", [typed_row()], dcr="dcr-abc123").status == 204


def test_relay_dcr_from_infra_is_served_and_its_transform_filters_trace(tmp_path):
    # GIVEN the DCR file infra/ deploys
    with Emulator([RELAY_DCR], tmp_path / "state") as emu:
        assert emu.dcr_ids == {"relay": immutable_id_for(RELAY_DCR)}
        client = RawClient(emu)
        rows = [
            {
                "TimeGenerated": "2024-05-01T10:00:00Z",
                "EventId": "1",
                "Level": "info",
                "Message": "kept",
                "StatusCode": 200,
                "Bytes": 10,
                "Success": True,
                "DurationMs": 1.5,
                "Properties": {"a": 1},
            },
            {
                "TimeGenerated": "2024-05-01T10:00:01Z",
                "EventId": "2",
                "Level": "trace",
                "Message": "filtered",
            },
            {"TimeGenerated": "2024-05-01T10:00:02Z", "EventId": "3", "Message": "no level is kept"},
        ]
        # WHEN AppLogs rows are posted
        assert client.ingest("Custom-AppLogs", rows).status == 204
        # THEN `where Level != "trace"` dropped the trace row (a string null reads as "" in KQL)
        stored = emu.rows("AppLogs_CL")
        assert [r["EventId"] for r in stored] == ["1", "3"]
        assert stored[0]["Properties"] == {"a": 1} and stored[0]["Success"] is True
        assert sorted(emu.tables()) == [
            "AppLogs_CL",
            "AzureResourceLogs_CL",
            "CloudEvents_CL",
            "GitHubEvents_CL",
            "KeyVaultAudit_CL",
            "ResourceLogsArchive_CL",
        ]
        for stream in ("Custom-GitHubEvents", "Custom-CloudEvents", "Custom-AzureResourceLogs"):
            assert (
                client.ingest(stream, [{"TimeGenerated": "2024-05-01T10:00:00Z", "EventId": "x"}]).status
                == 204
            )
        assert emu.drops() == []


def test_ca_is_reused_on_a_second_start(tmp_path):
    # GIVEN an emulator that ran once in a state dir
    dcr = write_dcr(tmp_path)
    with Emulator([dcr], tmp_path / "state") as first:
        ca_before = first.ca_path.read_bytes()
    # WHEN a new one starts on the same state dir
    with Emulator([dcr], tmp_path / "state") as second:
        # THEN it serves with the same CA, so clients trusting it keep working; earlier rows are still there
        assert second.ca_path.read_bytes() == ca_before
        assert RawClient(second).ingest("Custom-Typed", [typed_row()]).status == 204


# --------------------------------------------------------------------------- transport details


def test_chunked_body_is_accepted_and_bounded(emu, client):
    import http.client

    path = f"/dataCollectionRules/{client.dcr_id}/streams/Custom-Typed?{API}"
    headers = {"Authorization": "Bearer t", "Content-Type": "application/json"}

    def send_chunked(chunks):
        conn = http.client.HTTPSConnection("127.0.0.1", emu.port, context=client.context, timeout=10)
        try:
            conn.request("POST", path, body=iter(chunks), headers=headers, encode_chunked=True)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    # GIVEN a body sent with Transfer-Encoding: chunked THEN it is read like any other
    assert send_chunked([b'[{"S": "chu', b'nked"}]'])[0] == 204
    assert [r["S"] for r in emu.rows("Typed_CL")] == ["chunked"]
    # AND chunks adding up to more than the limit are refused with 413
    body = padded_array(MAX_BODY + 1)
    status, answer = send_chunked([body[i : i + 65536] for i in range(0, len(body), 65536)])
    assert status == 413 and json.loads(answer)["error"]["code"] == "ContentLengthLimitExceeded"


def test_get_on_the_ingestion_path_is_405(client):
    path = f"/dataCollectionRules/{client.dcr_id}/streams/Custom-Typed?{API}"
    assert client.request("GET", path).status == 405


def test_stop_ends_idle_keep_alive_connections(tmp_path):
    import http.client

    # GIVEN a client holding an idle keep-alive connection
    emu = Emulator([write_dcr(tmp_path)], tmp_path / "state").start()
    client = RawClient(emu)
    conn = http.client.HTTPSConnection("127.0.0.1", emu.port, context=client.context, timeout=10)
    conn.request("GET", "/_emulator/health")
    assert conn.getresponse().read()
    # WHEN the emulator stops THEN stop() returns and the connection is closed by the server
    emu.stop()
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.request("GET", "/_emulator/health")
        conn.getresponse()
    conn.close()
    emu.stop()  # a second stop is harmless
