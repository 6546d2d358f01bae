"""Normalization: events into rows of a DCR stream, catching what the service would drop silently.

DESIGN 4: values that do not fit the declared type and undeclared columns are dropped by the
service without an error, so the relay coerces only where lossless, otherwise rejects (with a
reason naming column and type) or moves the value to ``extra``, and counts what it did.
"""

from __future__ import annotations

import math
from collections import Counter
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

import shared.normalize as normalize_module
from shared.config import load_config
from shared.normalize import MAX_FIELD_BYTES, Normalizer, event_id

NOW = 1714560000.0  # 2024-05-01T10:40:00Z
NOW_TEXT = "2024-05-01T10:40:00Z"


def rows_of(batch) -> list[dict[str, Any]]:
    return [orjson.loads(row) for row in batch.rows]


def reasons_of(batch) -> list[tuple[int, str]]:
    return [(r.index, r.reason) for r in batch.rejections]


@pytest.fixture
def single(make_route):
    """Normalize one value into a stream with the single column V of the given type."""

    def run(kind: str, value: Any):
        route = make_route({"V": kind})
        return Normalizer(route).normalize([{"V": value}], now=NOW)

    return run


def coerced(single, kind: str, value: Any) -> Any:
    batch = single(kind, value)
    assert batch.rejections == [], reasons_of(batch)
    return rows_of(batch)[0]["V"]


def rejected(single, kind: str, value: Any) -> str:
    batch = single(kind, value)
    assert batch.rows == []
    (rejection,) = batch.rejections
    return rejection.reason


# --- the coercion table ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("text", "text"), (42, "42"), (1.5, "1.5"), (True, "true"), (False, "false"),
    ({"a": [1, None]}, '{"a":[1,null]}'), ([1, "x"], '[1,"x"]'),
])
def test_string_column_from_each_json_type(single, value, expected):
    """GIVEN a string column WHEN fed text, numbers, booleans or objects THEN they become their JSON text."""
    assert coerced(single, "string", value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (2**31 - 1, 2**31 - 1), (-(2**31), -(2**31)), (42.0, 42), ("42", 42), (" -7 ", -7), ("+5", 5), (0, 0),
])
def test_int_column_accepts_lossless_values(single, value, expected):
    """GIVEN an int (32-bit) column WHEN fed in-range ints, integral floats or integer text THEN kept exactly."""
    result = coerced(single, "int", value)

    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(("value", "reason"), [
    (2**31, "column 'V' (int): 2147483648 is out of range for a 32-bit int"),
    (-(2**31) - 1, "column 'V' (int): -2147483649 is out of range for a 32-bit int"),
    (1.5, "column 'V' (int): 1.5 is not a whole number (a 32-bit int)"),
    ("4.2", "column 'V' (int): '4.2' is not a 32-bit int"),
    ("forty", "column 'V' (int): 'forty' is not a 32-bit int"),
    (True, "column 'V' (int): boolean True is not a 32-bit int"),
    ([1], "column 'V' (int): [1] is not a 32-bit int"),
])
def test_int_column_rejects_what_would_be_lost(single, value, reason):
    """GIVEN an int column WHEN fed out-of-range, fractional, non-numeric or boolean values
    THEN the event is rejected and the reason names the column and the type."""
    assert rejected(single, "int", value) == reason


@pytest.mark.parametrize(("value", "expected"), [(2**63 - 1, 2**63 - 1), (-(2**63), -(2**63)), (2**31, 2**31),
                                                 ("70000000000", 70000000000), (1e15, 10**15)])
def test_long_column_accepts_64_bit_values(single, value, expected):
    """GIVEN a long column WHEN fed values within 64 bits THEN kept exactly."""
    assert coerced(single, "long", value) == expected


@pytest.mark.parametrize(("value", "reason"), [
    (2**63, "column 'V' (long): 9223372036854775808 is out of range for a 64-bit long"),
    (-(2**63) - 1, "column 'V' (long): -9223372036854775809 is out of range for a 64-bit long"),
    (0.5, "column 'V' (long): 0.5 is not a whole number (a 64-bit long)"),
    (False, "column 'V' (long): boolean False is not a 64-bit long"),
])
def test_long_column_rejects_out_of_range_and_fractions(single, value, reason):
    """GIVEN a long column WHEN fed 2**63, fractions or booleans THEN rejected with column and type."""
    assert rejected(single, "long", value) == reason


@pytest.mark.parametrize(("value", "expected"), [(3, 3), (1.5, 1.5), ("1.5", 1.5), (" 2 ", 2.0), (2**53, 2**53),
                                                 (-(2**53), -(2**53))])
def test_real_column_accepts_finite_numbers(single, value, expected):
    """GIVEN a real column WHEN fed ints up to 2**53, floats or numeric text THEN kept."""
    assert coerced(single, "real", value) == expected


@pytest.mark.parametrize(("value", "reason"), [
    (math.nan, "column 'V' (real): nan is not finite (JSON has no NaN or Infinity)"),
    (math.inf, "column 'V' (real): inf is not finite (JSON has no NaN or Infinity)"),
    (-math.inf, "column 'V' (real): -inf is not finite (JSON has no NaN or Infinity)"),
    ("1e400", "column 'V' (real): '1e400' is not a finite real number"),
    ("NaN", "column 'V' (real): 'NaN' is not a finite real number"),
    (2**53 + 1, "column 'V' (real): 9007199254740993 cannot be held exactly by a real column"),
    ("abc", "column 'V' (real): 'abc' is not a real number"),
    (True, "column 'V' (real): boolean True is not a real number"),
    ({"x": 1}, "column 'V' (real): {'x': 1} is not a real number"),
])
def test_real_column_rejects_non_finite_and_inexact(single, value, reason):
    """GIVEN a real column WHEN fed NaN/inf, '1e400', ints beyond 2**53 or non-numbers THEN rejected."""
    assert rejected(single, "real", value) == reason


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), ("TRUE", True), (" false ", False),
                                                 ("True", True), (0, False), (1, True)])
def test_boolean_column_accepts_booleans_their_text_and_0_1(single, value, expected):
    """GIVEN a boolean column WHEN fed true/'TRUE'/0/1 THEN a JSON boolean."""
    assert coerced(single, "boolean", value) is expected


@pytest.mark.parametrize(("value", "reason"), [
    (2, "column 'V' (boolean): 2 is not a boolean"),
    ("yes", "column 'V' (boolean): 'yes' is not a boolean"),
    (1.0, "column 'V' (boolean): 1.0 is not a boolean"),
])
def test_boolean_column_rejects_other_values(single, value, reason):
    """GIVEN a boolean column WHEN fed 2, 'yes' or 1.0 THEN rejected."""
    assert rejected(single, "boolean", value) == reason


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-05-01T17:31:00Z", "2024-05-01T17:31:00Z"),
    ("2019-05-15T15:20:30-05:00", "2019-05-15T20:20:30Z"),
    ("2024-05-01 10:00:04", "2024-05-01T10:00:04Z"),
    (1714557601, "2024-05-01T10:00:01Z"),
    (1714557602500, "2024-05-01T10:00:02.500000Z"),
    ("1714557601", "2024-05-01T10:00:01Z"),
    ("Wed, 01 May 2024 10:00:03 GMT", "2024-05-01T10:00:03Z"),
])
def test_datetime_column_from_each_time_form(single, value, expected):
    """GIVEN a datetime column WHEN fed ISO, epoch or RFC 1123 times THEN UTC ISO 8601 with 'Z'."""
    assert coerced(single, "datetime", value) == expected


def test_datetime_column_rejects_garbage(single):
    """GIVEN a datetime column WHEN fed 'soon' THEN rejected naming column and type."""
    assert rejected(single, "datetime", "soon") == "column 'V' (datetime): 'soon' is not ISO 8601, epoch or RFC 1123"


@pytest.mark.parametrize("value", [{"a": [1, {"b": None}]}, [1, 2], "s", 5, 1.5, False])
def test_dynamic_column_passes_values_through(single, value):
    """GIVEN a dynamic column WHEN fed any JSON value THEN it is kept as is."""
    assert coerced(single, "dynamic", value) == value


@pytest.mark.parametrize("event", [{"V": None}, {}], ids=["null", "missing"])
def test_null_or_missing_column_is_omitted(make_route, event):
    """GIVEN a declared column that is null or absent WHEN normalized THEN it is left out of the row (not null)."""
    batch = Normalizer(make_route({"V": "int", "W": "string"})).normalize([{**event, "W": "w"}], now=NOW)

    assert rows_of(batch) == [{"W": "w"}]


# --- on_type_error and extra -------------------------------------------------------------------------


def test_on_type_error_extra_moves_the_bad_value_into_extra(make_route):
    """GIVEN on_type_error: extra WHEN a value does not fit its column THEN the row is kept, the raw value
    goes to extra under the column name, and moved_to_extra counts it."""
    route = make_route({"Count": "int", "Level": "string", "Props": "dynamic"}, extra="Props",
                       on_type_error="extra")

    batch = Normalizer(route).normalize([{"Count": "many", "Level": "info"}, {"Count": 1.5}], now=NOW)

    assert rows_of(batch) == [{"Level": "info", "Props": {"Count": "many"}}, {"Props": {"Count": 1.5}}]
    assert batch.rejections == []
    assert batch.moved_to_extra == Counter({"Count": 2})


def test_on_type_error_reject_is_the_default(make_route):
    """GIVEN an extra column but the default policy WHEN a value does not fit THEN the event is rejected."""
    route = make_route({"Count": "int", "Props": "dynamic"}, extra="Props")

    batch = Normalizer(route).normalize([{"Count": "many"}], now=NOW)

    assert (batch.rows, reasons_of(batch)) == ([], [(0, "column 'Count' (int): 'many' is not a 32-bit int")])
    assert batch.moved_to_extra == Counter()


def test_extra_collects_unmapped_and_not_consumed_keys(make_route):
    """GIVEN extra and a map from a dotted path WHEN normalized THEN extra keeps every top-level key no
    column consumed whole (here 'message', read only through message.text, and 'level')."""
    route = make_route({"Msg": "string", "Props": "dynamic"}, extra="Props", map={"Msg": "message.text"})

    batch = Normalizer(route).normalize([{"message": {"text": "hi"}, "level": "x"}], now=NOW)

    assert rows_of(batch) == [{"Msg": "hi", "Props": {"message": {"text": "hi"}, "level": "x"}}]
    assert batch.dropped_fields == Counter()


def test_extra_is_omitted_when_nothing_is_left_over(make_route):
    """GIVEN extra WHEN every key was consumed THEN no extra column is written."""
    route = make_route({"Msg": "string", "Props": "dynamic"}, extra="Props")

    assert rows_of(Normalizer(route).normalize([{"Msg": "hi"}], now=NOW)) == [{"Msg": "hi"}]


def test_string_extra_holds_json_text(make_route):
    """GIVEN extra on a string column WHEN normalized THEN it holds the leftovers as compact JSON text."""
    route = make_route({"Msg": "string", "Raw": "string"}, extra="Raw")

    batch = Normalizer(route).normalize([{"Msg": "hi", "level": "x", "n": [1, 2]}], now=NOW)

    assert rows_of(batch) == [{"Msg": "hi", "Raw": '{"level":"x","n":[1,2]}'}]


def test_without_extra_unmapped_fields_are_counted_as_dropped(make_route):
    """GIVEN no extra column WHEN events carry undeclared keys THEN dropped_fields counts each per event."""
    route = make_route({"Msg": "string"})

    batch = Normalizer(route).normalize([{"Msg": "a", "x": 1, "y": 2}, {"Msg": "b", "x": 3}], now=NOW)

    assert rows_of(batch) == [{"Msg": "a"}, {"Msg": "b"}]
    assert batch.dropped_fields == Counter({"x": 2, "y": 1})


# --- paths ----------------------------------------------------------------------------------------


def test_dotted_paths_and_list_indexes(make_route, events_dir):
    """GIVEN github_push.json and map entries with dotted paths and list indexes WHEN normalized
    THEN nested values are read; an index past the end or a key on a list is missing (omitted)."""
    route = make_route({"Repo": "string", "FirstCommit": "string", "Owner": "string", "Missing": "string",
                        "Bad": "string"},
                       map={"Repo": "repository.full_name", "FirstCommit": "commits.0.id",
                            "Owner": "repository.owner.login", "Missing": "commits.5.id", "Bad": "commits.id"})
    event = orjson.loads((events_dir / "github_push.json").read_bytes())

    batch = Normalizer(route).normalize([event], now=NOW)

    assert rows_of(batch) == [{
        "Repo": "Codertocat/Hello-World",
        "FirstCommit": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
        "Owner": "Codertocat",
    }]


def test_http_header_context_shared_by_all_events(make_route):
    """GIVEN `_http.headers.x-github-event` paths and one context mapping WHEN normalized THEN every
    row reads the request's headers."""
    route = make_route({"EventType": "string", "Delivery": "string", "Action": "string"},
                       map={"EventType": "_http.headers.x-github-event", "Delivery": "_http.headers.x-github-delivery",
                            "Action": "action"})
    context = {"_http": {"headers": {"x-github-event": "issues", "x-github-delivery": "d-1"}}}

    batch = Normalizer(route).normalize([{"action": "opened"}, {"action": "closed"}], now=NOW, context=context)

    assert rows_of(batch) == [
        {"EventType": "issues", "Delivery": "d-1", "Action": "opened"},
        {"EventType": "issues", "Delivery": "d-1", "Action": "closed"},
    ]


def test_per_event_context_list(make_route):
    """GIVEN one context mapping per event WHEN normalized THEN each row reads its own context."""
    route = make_route({"Partition": "string", "Body": "string"}, map={"Partition": "_eventhub.partition"})
    contexts = [{"_eventhub": {"partition": "0"}}, {"_eventhub": {"partition": "3"}}]

    batch = Normalizer(route).normalize([{"Body": "a"}, {"Body": "b"}], now=NOW, context=contexts)

    assert rows_of(batch) == [{"Partition": "0", "Body": "a"}, {"Partition": "3", "Body": "b"}]


def test_context_path_without_context_is_missing(make_route):
    """GIVEN an `_http.` path and no context WHEN normalized THEN the column is omitted, not an error."""
    route = make_route({"EventType": "string", "Body": "string"}, map={"EventType": "_http.headers.x-github-event"})

    assert rows_of(Normalizer(route).normalize([{"Body": "a"}], now=NOW)) == [{"Body": "a"}]


# --- TimeGenerated --------------------------------------------------------------------------------


def test_time_generated_from_time_field(make_route):
    """GIVEN time_field WHEN normalized THEN TimeGenerated is that value in UTC and times hold its epoch."""
    route = make_route({"TimeGenerated": "datetime", "Msg": "string"}, time_field="meta.ts")

    batch = Normalizer(route).normalize([{"meta": {"ts": "2024-05-01T12:00:00+02:00"}, "Msg": "a"}], now=NOW)

    assert rows_of(batch) == [{"TimeGenerated": "2024-05-01T10:00:00Z", "Msg": "a"}]
    assert (batch.times, batch.time_defaulted) == ([1714557600.0], 0)


@pytest.mark.parametrize("event", [{"Msg": "a"}, {"Msg": "a", "ts": None}], ids=["missing", "null"])
def test_missing_time_defaults_to_now_and_is_counted(make_route, event):
    """GIVEN time_field and an event without it WHEN normalized THEN TimeGenerated is `now` and counted."""
    route = make_route({"TimeGenerated": "datetime", "Msg": "string"}, time_field="ts")

    batch = Normalizer(route).normalize([event], now=NOW)

    assert rows_of(batch) == [{"Msg": "a", "TimeGenerated": NOW_TEXT}]
    assert (batch.times, batch.time_defaulted) == ([NOW], 1)


def test_unparseable_time_rejects_the_event(make_route):
    """GIVEN time_field and an unparseable time WHEN normalized THEN that event is rejected with the field named."""
    route = make_route({"TimeGenerated": "datetime", "Msg": "string"}, time_field="ts")

    batch = Normalizer(route).normalize([{"ts": "yesterday"}, {"ts": 1714557601, "Msg": "ok"}], now=NOW)

    assert reasons_of(batch) == [(0, "time_field 'ts': 'yesterday' is not ISO 8601, epoch or RFC 1123")]
    assert rows_of(batch) == [{"TimeGenerated": "2024-05-01T10:00:01Z", "Msg": "ok"}]
    assert batch.indexes == [1]


def test_time_generated_is_stamped_when_the_stream_declares_it(make_route):
    """GIVEN a stream with TimeGenerated and no time_field WHEN the event lacks it THEN `now` is stamped
    (not counted as defaulted: no time_field was promised)."""
    route = make_route({"TimeGenerated": "datetime", "Msg": "string"})

    batch = Normalizer(route).normalize([{"Msg": "a"}], now=NOW)

    assert rows_of(batch) == [{"Msg": "a", "TimeGenerated": NOW_TEXT}]
    assert (batch.times, batch.time_defaulted) == ([NOW], 0)


def test_time_generated_from_a_mapped_column_drives_the_packing_times(make_route):
    """GIVEN TimeGenerated filled through map (no time_field) WHEN normalized THEN the epoch in `times`
    is that value, not the ingestion time (auxiliary routes split requests by these times)."""
    route = make_route({"TimeGenerated": "datetime", "Msg": "string"}, map={"TimeGenerated": "when"},
                       auxiliary=True)

    batch = Normalizer(route).normalize([{"when": "2024-05-01T09:00:00Z", "Msg": "a"}], now=NOW)

    assert rows_of(batch) == [{"TimeGenerated": "2024-05-01T09:00:00Z", "Msg": "a"}]
    assert batch.times == [1714554000.0]


# --- id column ------------------------------------------------------------------------------------


def test_id_column_is_deterministic_regardless_of_key_order(make_route):
    """GIVEN id_column WHEN the same event arrives with keys (and nested keys) in another order
    THEN it gets the same 32-hex id."""
    route = make_route({"EventId": "string", "Msg": "string"}, id_column="EventId")
    first = {"Msg": "a", "n": {"x": 1, "y": [1, {"p": 1, "q": 2}]}}
    second = {"n": {"y": [1, {"q": 2, "p": 1}], "x": 1}, "Msg": "a"}

    ids = [row["EventId"] for row in rows_of(Normalizer(route).normalize([first, second], now=NOW))]

    assert ids[0] == ids[1] == event_id("r1", first)
    assert len(ids[0]) == 32
    assert int(ids[0], 16) >= 0


def test_id_column_differs_per_route_and_per_event():
    """GIVEN the same event on two routes, and two events on one WHEN ids are made THEN all differ."""
    event = {"Msg": "a"}

    assert event_id("r1", event) != event_id("r2", event)
    assert event_id("r1", event) != event_id("r1", {"Msg": "b"})


# --- per-row failures, sizes, serialization -----------------------------------------------------------


def test_non_object_events_are_rejected_per_row(make_route):
    """GIVEN a batch mixing objects with a number, a string, a list and null WHEN normalized THEN those are
    rejected by index (offset by start_index) and the objects still become rows."""
    route = make_route({"Msg": "string"})

    batch = Normalizer(route).normalize([1, {"Msg": "a"}, "x", [1], None, {"Msg": "b"}], now=NOW, start_index=10)

    assert reasons_of(batch) == [
        (10, "event is a int, not a JSON object"),
        (12, "event is a str, not a JSON object"),
        (13, "event is a list, not a JSON object"),
        (14, "event is a NoneType, not a JSON object"),
    ]
    assert rows_of(batch) == [{"Msg": "a"}, {"Msg": "b"}]
    assert batch.indexes == [11, 15]


def test_a_rejection_keeps_the_original_event(make_route):
    """GIVEN a rejected event WHEN normalized THEN the rejection carries it (for the poison store) and
    summary() gives only index and reason."""
    route = make_route({"Count": "int"})
    event = {"Count": "x"}

    (rejection,) = Normalizer(route).normalize([event], now=NOW).rejections

    assert rejection.event is event
    assert rejection.summary() == {"index": 0, "reason": "column 'Count' (int): 'x' is not a 32-bit int"}


def test_a_value_json_cannot_encode_is_rejected_per_row(make_route):
    """GIVEN a dynamic value orjson cannot encode (an int over 64 bits) WHEN normalized THEN that event is
    rejected with the encoder's reason and the next event still lands."""
    route = make_route({"V": "dynamic"})

    batch = Normalizer(route).normalize([{"V": 2**70}, {"V": 1}], now=NOW)

    assert [(i, r.split(":")[0]) for i, r in reasons_of(batch)] == [(0, "cannot be encoded as JSON")]
    assert rows_of(batch) == [{"V": 1}]


def test_fields_over_64_kb_are_counted(make_route):
    """GIVEN a field one byte over 64 KB and one exactly at it WHEN normalized THEN only the first is
    counted in oversized_fields (the service truncates over 64 KB), and both rows are still sent."""
    route = make_route({"Big": "string", "Edge": "string", "Blob": "dynamic"})
    events = [{"Big": "x" * (MAX_FIELD_BYTES + 1), "Blob": {"k": "y" * MAX_FIELD_BYTES}},
              {"Edge": "é" * (MAX_FIELD_BYTES // 2)}]

    batch = Normalizer(route).normalize(events, now=NOW)

    assert batch.oversized_fields == Counter({"Big": 1, "Blob": 1})
    assert len(batch.rows) == 2


def test_multibyte_field_over_64_kb_in_utf8_is_counted(make_route):
    """GIVEN a field of 32,769 two-byte characters (65,538 bytes) WHEN normalized THEN counted as oversized."""
    route = make_route({"Text": "string"})

    batch = Normalizer(route).normalize([{"Text": "é" * (MAX_FIELD_BYTES // 2 + 1)}], now=NOW)

    assert batch.oversized_fields == Counter({"Text": 1})


def test_rows_are_json_bytes_that_load_back(make_route):
    """GIVEN events WHEN normalized THEN each row is compact JSON bytes of exactly the row dict."""
    route = make_route({"Msg": "string", "N": "long"})

    batch = Normalizer(route).normalize([{"Msg": "é\n\"", "N": "7"}], now=NOW)

    assert batch.rows == [b'{"Msg":"\xc3\xa9\\n\\"","N":7}']
    assert rows_of(batch) == [{"Msg": "é\n\"", "N": 7}]


def test_each_row_is_serialized_once(make_route, monkeypatch):
    """GIVEN a route whose columns need no JSON encoding to coerce WHEN three events are normalized
    THEN orjson.dumps runs exactly three times (once per row) and the packer gets those bytes."""
    calls: list[Any] = []

    def counting_dumps(value, *args, **kwargs):
        calls.append(value)
        return orjson.dumps(value, *args, **kwargs)

    fake = SimpleNamespace(dumps=counting_dumps, JSONEncodeError=orjson.JSONEncodeError,
                           OPT_SORT_KEYS=orjson.OPT_SORT_KEYS, OPT_NON_STR_KEYS=orjson.OPT_NON_STR_KEYS)
    monkeypatch.setattr(normalize_module, "orjson", fake)
    route = make_route({"Msg": "string", "N": "int"})

    batch = Normalizer(route).normalize([{"Msg": "a", "N": 1}, {"Msg": "b", "N": "2"}, {"Msg": "c"}], now=NOW)

    assert calls == [{"Msg": "a", "N": 1}, {"Msg": "b", "N": 2}, {"Msg": "c"}]
    assert batch.rows == [b'{"Msg":"a","N":1}', b'{"Msg":"b","N":2}', b'{"Msg":"c"}']


def test_events_may_be_any_iterable(make_route):
    """GIVEN a generator of events WHEN normalized THEN rows come out in order."""
    route = make_route({"N": "int"})

    batch = Normalizer(route).normalize(({"N": n} for n in range(3)), now=NOW)

    assert rows_of(batch) == [{"N": 0}, {"N": 1}, {"N": 2}]
    assert batch.indexes == [0, 1, 2]


# --- the real samples through the shipped routes ---------------------------------------------------------


@pytest.fixture
def shipped(repo_root, relay_env):
    return load_config(repo_root / "relay.yaml", relay_env, base=repo_root)


def test_applogs_sample_through_the_applogs_route(shipped, events_dir):
    """GIVEN tests/events/applogs.ndjson (mixed time forms, numbers as text, 'true' and 1 as booleans)
    WHEN normalized on the applogs route THEN every line is coerced losslessly, leftovers land in
    Properties, and every row has an EventId."""
    events = [orjson.loads(line) for line in (events_dir / "applogs.ndjson").read_bytes().splitlines() if line.strip()]

    batch = Normalizer(shipped.http_route("applogs")).normalize(events, now=NOW)

    rows = rows_of(batch)
    assert batch.rejections == []
    assert [r.pop("EventId") for r in rows] == [event_id("applogs", e) for e in events]
    assert rows == [
        {"TimeGenerated": "2024-05-01T10:00:00.123000Z", "Level": "info", "Message": "GET /orders 200",
         "Service": "orders-api", "Host": "web-1", "DurationMs": 12.5, "StatusCode": 200, "Bytes": 5120,
         "Success": True, "Properties": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}},
        {"TimeGenerated": "2024-05-01T10:00:01Z", "Level": "warning", "Message": "slow query",
         "Service": "orders-api", "Host": "web-2", "DurationMs": 830.0, "StatusCode": 200, "Bytes": 70000000000,
         "Success": True, "Properties": {"query": {"table": "orders", "rows": 12000}}},
        {"TimeGenerated": "2024-05-01T10:00:02.500000Z", "Level": "error", "Message": "payment declined",
         "Service": "payments", "Host": "web-1", "DurationMs": 95, "StatusCode": 402, "Bytes": 312,
         "Success": False, "Properties": {"user": {"id": "u-17", "tier": "gold"}}},
        {"TimeGenerated": "2024-05-01T10:00:03Z", "Level": "trace", "Message": "cache probe",
         "Service": "orders-api", "Host": "web-3", "DurationMs": 0.2, "StatusCode": 200, "Bytes": 0, "Success": True},
        {"TimeGenerated": "2024-05-01T10:00:04Z", "Level": "info", "Message": "POST /orders 201",
         "Service": "orders-api", "Host": "web-2", "DurationMs": 33, "StatusCode": 201, "Bytes": 2048,
         "Success": True},
    ]
    assert batch.times == [1714557600.123, 1714557601.0, 1714557602.5, 1714557603.0, 1714557604.0]


def test_github_sample_through_the_github_route(shipped, events_dir):
    """GIVEN github_issues_opened.json and the webhook's headers WHEN normalized on the github route
    THEN headers and nested fields fill the columns and the rest of the payload is kept in RawData."""
    event = orjson.loads((events_dir / "github_issues_opened.json").read_bytes())
    context = {"_http": {"headers": {"x-github-event": "issues", "x-github-delivery": "72d3162e"}}}

    batch = Normalizer(shipped.http_route("github")).normalize([event], now=NOW, context=context)

    (row,) = rows_of(batch)
    assert row == {
        "EventType": "issues", "Delivery": "72d3162e", "Action": "opened", "Repo": "Codertocat/Hello-World",
        "Sender": "Codertocat", "TimeGenerated": NOW_TEXT, "EventId": event_id("github", event),
        "RawData": {k: v for k, v in event.items() if k != "action"},
    }


def test_cloudevent_sample_through_the_cloudevents_route(shipped, events_dir):
    """GIVEN cloudevent_structured.json WHEN normalized on the cloudevents route THEN its attributes map to
    columns, time becomes TimeGenerated and data stays an object."""
    event = orjson.loads((events_dir / "cloudevent_structured.json").read_bytes())

    batch = Normalizer(shipped.http_route("cloudevents")).normalize([event], now=NOW)

    assert rows_of(batch) == [{
        "TimeGenerated": "2024-05-01T17:31:00Z", "EventId": "A234-1234-1234", "Source": "/contoso/orders",
        "EventType": "com.contoso.order.created", "Subject": "orders/4711", "SpecVersion": "1.0",
        "Data": {"orderId": 4711, "total": 129.5, "currency": "EUR", "items": [{"sku": "X-1", "qty": 2}]},
    }]
    assert batch.dropped_fields == Counter({"datacontenttype": 1})



@pytest.mark.parametrize("kind", ["float", "int", "datetime"])
def test_out_of_window_counts_times_too_old_or_too_far_ahead_in_any_form_a_normalizer_keeps(kind):
    # GIVEN row times as epochs (floats, or ints as an ingestion time may be) or aware datetimes: one in the
    # window, one three days old, one two days ahead, and two on the window's edges
    from datetime import UTC, datetime

    from shared.coercion import TIME_WINDOW_FUTURE_SECONDS, TIME_WINDOW_PAST_SECONDS, out_of_window

    now = 1_764_800_000
    epochs = [now, now - 3 * 86400, now + 2 * 86400, now - TIME_WINDOW_PAST_SECONDS, now + TIME_WINDOW_FUTURE_SECONDS]
    times: list[Any] = {"float": [float(t) for t in epochs], "int": epochs,
                        "datetime": [datetime.fromtimestamp(t, UTC) for t in epochs]}[kind]
    # WHEN they are counted THEN the two outside are, the edges are not
    assert out_of_window(times, now) == 2
    assert out_of_window(times[:1] + times[3:], now) == 0 and out_of_window([], now) == 0
